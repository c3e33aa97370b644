"""Trajectory matching: MTT (Cazenavette et al., CVPR 2022), its DATM-style additions and PAD's FIEM.

Each iteration picks an expert and a start epoch t, initialises a student at the expert's
weights theta*_t, trains it N SGD steps on the synthetic set with the learnable learning rate, and
minimises ||theta_N - theta*_{t+M}||^2 / ||theta*_t - theta*_{t+M}||^2 (over the unmasked share of
parameters when FIEM is on). DATM-style runs learn soft labels too and widen the range of start
epochs from ``max_start_epoch`` to ``max_start_epoch_final`` during distillation.

Memory: the reference implementation keeps the whole unrolled graph (every step's activations
and double-backward buffers), so memory grows by hundreds of MB per step. Here each step is a
custom autograd function that keeps only its input weights; backward recomputes that one step
with ``create_graph`` and back-propagates through it (per-step gradient checkpointing). Memory
grows by one parameter vector per step; compute rises by one extra first-order pass per step.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call

from engine.distill.augment import DSAParams, apply_dsa, sample_dsa
from engine.distill.base import ModelFactory, RealData, UpdateFn
from engine.distill.families import MatchSettings
from engine.distill.experts import Trajectories
from engine.distill.fiem import shallow_mask
from engine.distill.synthetic import SyntheticSet
from engine.distill.trajectory_config import TrajectoryConfig, fixed_start_range
from engine.train.loop import per_sample_loss

class FunctionalStudent:
    """A registered model evaluated at an explicit flat parameter vector (torch.func.functional_call)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names = [n for n, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        self.sizes = [p.numel() for _, p in model.named_parameters()]

    def forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        params = {n: t.reshape(s) for n, t, s in zip(self.names, theta.split(self.sizes), self.shapes, strict=True)}
        return functional_call(self.model, params, (x,))

    def loss(
        self, theta: torch.Tensor, images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, draw: DSAParams | None
    ) -> torch.Tensor:
        x = images[index]
        if draw is not None:
            x = apply_dsa(x, draw)
        y = labels[index]
        return per_sample_loss(self.forward(theta, x), y.softmax(1) if y.dim() == 2 else y).mean()


class _CheckpointedStep(torch.autograd.Function):
    """theta_next = theta - lr * grad L(theta; synthetic batch), storing only the inputs."""

    @staticmethod
    def forward(ctx, theta, images, labels, lr, student, index, draw):  # type: ignore[override]
        ctx.student, ctx.index, ctx.draw = student, index, draw
        ctx.save_for_backward(theta, images, labels, lr)
        with torch.enable_grad():
            t = theta.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(student.loss(t, images.detach(), labels.detach(), index, draw), t)
        return theta.detach() - lr.detach() * grad

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        theta, images, labels, lr = ctx.saved_tensors
        needs = ctx.needs_input_grad
        with torch.enable_grad():
            t = theta.detach().requires_grad_(True)
            x = images.detach().requires_grad_(needs[1])
            y = labels.detach().requires_grad_(needs[2] and labels.is_floating_point())
            step = lr.detach().requires_grad_(needs[3])
            (grad,) = torch.autograd.grad(ctx.student.loss(t, x, y, ctx.index, ctx.draw), t, create_graph=True)
            out = t - step * grad
            # The first step's input weights are the expert's (constants): no gradient is wanted there.
            inputs = [(i, v) for i, v in enumerate((t, x, y, step)) if v.requires_grad and needs[i]]
            grads = torch.autograd.grad(out, [v for _, v in inputs], grad_out, allow_unused=True)
        result: list[torch.Tensor | None] = [None] * 7
        for (i, _), g in zip(inputs, grads, strict=True):
            result[i] = g
        return tuple(result)


def _graph_step(student, theta, images, labels, lr, index, draw) -> torch.Tensor:
    (grad,) = torch.autograd.grad(student.loss(theta, images, labels, index, draw), theta, create_graph=True)
    return theta - lr * grad


class TrajectoryMatcher:
    def __init__(self, experts: Trajectories, model: nn.Module, config: TrajectoryConfig) -> None:
        if experts.epochs < config.expert_epochs + 1:
            raise ValueError(f"experts have {experts.epochs} epochs; need more than expert_epochs={config.expert_epochs}")
        self.experts = experts
        self.student = FunctionalStudent(model)
        self.config = config
        self.low, self.high = fixed_start_range(config)
        self.mask = shallow_mask(self.student.shapes, config.fiem_ratio) if config.fiem_ratio > 0 else None

    def param_groups(self, synthetic: SyntheticSet) -> list[dict]:
        cfg = self.config
        groups = [{"params": [synthetic.images], "lr": cfg.lr_images, "momentum": cfg.momentum}]
        if synthetic.lr is not None:
            groups.append({"params": [synthetic.lr], "lr": cfg.lr_lr, "momentum": cfg.momentum})
        if synthetic.soft:
            groups.append({"params": [synthetic.labels], "lr": cfg.lr_labels, "momentum": cfg.label_momentum})
        return groups

    def start_epoch_bound(self, iteration: int) -> int:
        """Upper bound of the start epoch at ``iteration``: fixed, or growing linearly from T to T+ (DATM)."""
        cfg = self.config
        last = self.experts.epochs - cfg.expert_epochs
        if cfg.max_start_epoch_final is None or cfg.widen_iterations <= 0:
            return min(self.high, last)
        grown = self.high + (cfg.max_start_epoch_final - self.high) * min(1.0, iteration / cfg.widen_iterations)
        return min(int(grown), last)

    def _batches(self, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        size = self.config.batch_syn or n
        out: list[torch.Tensor] = []
        while len(out) < self.config.syn_steps:
            out.extend(torch.randperm(n, generator=generator).split(size))
        return out[: self.config.syn_steps]

    def unroll(self, synthetic: SyntheticSet, theta: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The student's weights after ``syn_steps`` steps on the synthetic set, differentiable in its tensors."""
        cfg = self.config
        lr = synthetic.lr if synthetic.lr is not None else torch.tensor(cfg.lr_init, device=theta.device)
        for index in self._batches(len(synthetic.images), generator):
            draw = sample_dsa(cfg.dsa_groups, len(index), generator, siamese=False) if cfg.dsa_groups else None
            index = index.to(theta.device)
            if cfg.unroll == "checkpoint":
                theta = _CheckpointedStep.apply(theta, synthetic.images, synthetic.labels, lr, self.student, index, draw)
            else:
                theta = _graph_step(self.student, theta, synthetic.images, synthetic.labels, lr, index, draw)
        return theta

    def iterate(self, synthetic: SyntheticSet, update: UpdateFn, generator: torch.Generator, iteration: int) -> float:
        cfg = self.config
        expert = int(torch.randint(self.experts.params.shape[0], (1,), generator=generator))
        high = self.start_epoch_bound(iteration)
        start = int(torch.randint(self.low, max(high, self.low) + 1, (1,), generator=generator))
        device = synthetic.images.device
        theta_start = self.experts.params[expert, start].to(device)
        theta_target = self.experts.params[expert, start + cfg.expert_epochs].to(device)
        # The student starts AT the expert's weights: gradients flow into the synthetic tensors only.
        theta_end = self.unroll(synthetic, theta_start.clone().requires_grad_(cfg.unroll == "graph"), generator)
        mask = self.mask.to(device) if self.mask is not None else None
        diff_end, diff_start = theta_end - theta_target, theta_start - theta_target
        if mask is not None:
            diff_end, diff_start = diff_end * mask, diff_start * mask
        loss = diff_end.pow(2).sum() / diff_start.pow(2).sum()
        update(loss)
        return float(loss.detach())


def build(config: TrajectoryConfig, settings: MatchSettings, real: RealData, new_model: ModelFactory,
          experts: Trajectories | None) -> TrajectoryMatcher:
    """The trajectory family's matcher (``engine.distill.families``): the student starts from a fresh model on
    the real data's device and follows the experts the pipeline trained (or reused) first."""
    if experts is None:
        raise ValueError("trajectory matching needs expert trajectories")
    tm = replace(config, dsa_groups=settings.dsa_groups, fiem_ratio=settings.fiem_ratio,
                 min_start_epoch=settings.min_start_epoch, max_start_epoch=settings.max_start_epoch,
                 max_start_epoch_final=settings.max_start_epoch_final, widen_iterations=settings.widen_iterations)
    return TrajectoryMatcher(experts, new_model().to(real.x.device), tm)

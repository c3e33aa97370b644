"""Gradient matching: DC (Zhao, Mopuri & Bilen, ICLR 2021) and DSA (Zhao & Bilen, ICML 2021).

Each iteration initialises a fresh network. For ``outer_loop`` rounds, the per-class gradients of
the classification loss on a real batch and on the synthetic images are matched layer by layer
(DC's distance: per output unit, 1 - cosine similarity, summed; bias and normalisation vectors do
not count), the synthetic set takes one step, and the network then trains ``inner_loop`` steps on
the synthetic set so later rounds match gradients along a training trajectory. DSA applies the
same augmentation draw to the real and synthetic batch of a class before both forward passes.
FIEM masks the shallowest share of parameters out of the distance.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch.nn import functional as F

from engine.distill.augment import apply_dsa, sample_dsa
from engine.distill.base import ModelFactory, RealData, UpdateFn
from engine.distill.families import MatchSettings
from engine.distill.gradient_config import GradientConfig, loop_lengths
from engine.distill.fiem import per_parameter_masks
from engine.distill.synthetic import SyntheticSet
from engine.train.loop import per_sample_loss


def layer_distance(g_real: torch.Tensor, g_syn: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """DC's layer-wise distance: sum over output units of 1 - cos(g_real_unit, g_syn_unit)."""
    if mask is not None:
        g_real, g_syn = g_real * mask, g_syn * mask
    rows_real = g_real.reshape(g_real.shape[0], -1)
    rows_syn = g_syn.reshape(g_syn.shape[0], -1)
    dots = (rows_real * rows_syn).sum(1)
    norms = rows_real.norm(dim=1) * rows_syn.norm(dim=1) + 1e-6
    return (1 - dots / norms).sum()


class GradientMatcher:
    def __init__(self, real: RealData, new_model: ModelFactory, config: GradientConfig) -> None:
        self.real = real
        self.new_model = new_model
        self.config = config

    def param_groups(self, synthetic: SyntheticSet) -> list[dict]:
        return [{"params": [synthetic.images], "lr": self.config.lr_images, "momentum": self.config.momentum}]

    def _matched(self, model: torch.nn.Module) -> list[tuple[torch.nn.Parameter, torch.Tensor | None]]:
        masks = per_parameter_masks(model, self.config.fiem_ratio) if self.config.fiem_ratio > 0 else None
        out = []
        for i, p in enumerate(model.parameters()):
            mask = masks[i].to(p.device) if masks is not None else None
            # Vectors (biases, norm affine) carry no per-unit direction: DC leaves them out.
            if p.dim() > 1 and (mask is None or mask.any()):
                out.append((p, mask))
        return out

    def matching_loss(self, model: torch.nn.Module, synthetic: SyntheticSet, generator: torch.Generator) -> torch.Tensor:
        cfg = self.config
        matched = self._matched(model)
        params = [p for p, _ in matched]
        targets = synthetic.targets()
        loss = torch.zeros((), device=synthetic.images.device)
        for c in range(synthetic.num_classes):
            x_real = self.real.sample(c, cfg.batch_real, generator)
            rows = synthetic.class_slice(c)
            x_syn, y_syn = synthetic.images[rows], targets[rows]
            if cfg.dsa_groups:
                draw = sample_dsa(cfg.dsa_groups, 1, generator)
                x_real = apply_dsa(x_real, draw.select(torch.zeros(len(x_real), dtype=torch.long)))
                x_syn = apply_dsa(x_syn, draw.select(torch.zeros(len(x_syn), dtype=torch.long)))
            y_real = torch.full((len(x_real),), c, dtype=torch.long, device=x_real.device)
            g_real = torch.autograd.grad(F.cross_entropy(model(x_real), y_real), params)
            g_syn = torch.autograd.grad(per_sample_loss(model(x_syn), y_syn).mean(), params, create_graph=True)
            for (_, mask), gr, gs in zip(matched, g_real, g_syn, strict=True):
                loss = loss + layer_distance(gr.detach(), gs, mask)
        return loss

    def iterate(self, synthetic: SyntheticSet, update: UpdateFn, generator: torch.Generator, iteration: int) -> float:
        del iteration  # no schedule: every iteration is alike
        cfg = self.config
        default_outer, default_inner = loop_lengths(synthetic.ipc)
        outer, inner = cfg.outer_loop or default_outer, cfg.inner_loop or default_inner
        model = self.new_model().to(synthetic.images.device)
        model.train()
        net_opt = torch.optim.SGD(model.parameters(), lr=cfg.lr_net)
        total = 0.0
        for round_ in range(outer):
            loss = self.matching_loss(model, synthetic, generator)
            update(loss)
            total += float(loss.detach())
            if round_ == outer - 1:
                break
            x_syn, y_syn = synthetic.images.detach(), synthetic.targets()
            for _ in range(inner):
                x_in = x_syn
                if cfg.dsa_groups:
                    x_in = apply_dsa(x_syn, sample_dsa(cfg.dsa_groups, len(x_syn), generator, siamese=False))
                net_opt.zero_grad(set_to_none=True)
                per_sample_loss(model(x_in), y_syn).mean().backward()
                net_opt.step()
        return total / outer


def build(config: GradientConfig, settings: MatchSettings, real: RealData, new_model: ModelFactory,
          experts: object) -> GradientMatcher:
    """The gradient family's matcher (``engine.distill.families``)."""
    return GradientMatcher(real, new_model, replace(config, dsa_groups=settings.dsa_groups, fiem_ratio=settings.fiem_ratio))

"""The one training loop: seeded SGD + cosine schedule, CUDA/AMP when present, observers for dynamics.

Observers see every training batch's logits (already computed for the loss, so recording costs
almost nothing) and, at the epochs they ask for, an in-order evaluation pass over the whole
training set. That is what lets every dynamics-based score come from one proxy run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

from engine.atomic import atomic_path
from engine.device import resolve_device
from engine.progress import Tracker
from engine.seed import seed_everything
from engine.train.augment import crop_flip
from engine.train.config import TrainConfig


class TrainObserver(Protocol):
    """Receives per-sample training signals; must keep bounded state (no epochs x N x C history)."""

    eval_epochs: frozenset[int]

    def on_batch(self, epoch: int, index: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None: ...

    def on_epoch_end(self, epoch: int) -> None: ...

    def on_eval(self, epoch: int, logits: torch.Tensor, features: torch.Tensor) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class TrainResult:
    model: nn.Module
    epochs_run: int
    resumed_from_epoch: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def autocast_for(device: torch.device, enabled: bool):
    # bf16 autocast needs no gradient scaler; CPU autocast is slower than fp32 on most CPUs, so only CUDA uses it.
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def iterate_minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def per_sample_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for hard labels (N,) or soft labels (N, C) given as probabilities."""
    if targets.dim() == 2:
        return -(targets * F.log_softmax(logits, dim=1)).sum(1)
    return F.cross_entropy(logits, targets, reduction="none")


@torch.no_grad()
def predict(
    model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 512, amp: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """In-order logits and penultimate features for all of ``x`` (eval mode), returned on ``device``."""
    was_training = model.training
    model.eval()
    logits, feats = [], []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device, non_blocking=True)
        with autocast_for(device, amp):
            h = model.forward_features(xb)
            out = model.head(h)
        logits.append(out.float())
        feats.append(h.float())
    model.train(was_training)
    return torch.cat(logits), torch.cat(feats)


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    observers: Sequence[TrainObserver] = (),
    sample_weights: torch.Tensor | None = None,
    tracker: Tracker | None = None,
    stage: str = "train",
    checkpoint: Path | None = None,
    stop_after: int | None = None,
    augment_fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``model`` on in-memory tensors.

    Args:
        model: a registered model (has ``forward_features`` and ``head``).
        x: (N, C, H, W) normalised images.
        y: (N,) int64 labels or (N, C) soft labels.
        config: hyper-parameters and seed.
        observers: dynamics recorders; their state is checkpointed with the model.
        sample_weights: optional (N,) weights for importance-aware coreset training.
        tracker: progress and cancellation; cancellation is checked between steps.
        stage: the stage name reported to the tracker.
        checkpoint: file to save after every epoch; if it exists, training resumes from it.
        stop_after: end after this epoch while keeping the schedule of the full ``config.epochs``
            (an "early epoch" snapshot such as EL2N's, without training the rest).
        augment_fn: batch augmentation ``(x, generator) -> x`` used instead of ``config.augment``'s
            crop-and-flip (e.g. DSA when training on a distilled set).
    """
    start_time = time.perf_counter()
    device = resolve_device(config.device)
    generator = seed_everything(config.seed)
    model.to(device)
    x_dev, y_dev = x.to(device), y.to(device)
    w_dev = sample_weights.to(device) if sample_weights is not None else None
    n = len(x)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = max(steps_per_epoch * config.epochs, 1)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    first_epoch = 1
    history: list[dict[str, float]] = []
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        for obs, obs_state in zip(observers, state["observers"], strict=True):
            obs.load_state_dict(obs_state)
        history = state["history"]
        first_epoch = int(state["epoch"]) + 1
    resumed_from = first_epoch - 1

    model.train()
    last_epoch = min(config.epochs, stop_after or config.epochs)
    for epoch in range(first_epoch, last_epoch + 1):
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for step, idx in enumerate(iterate_minibatches(n, config.batch_size, generator)):
            if tracker is not None and step % 20 == 0:
                tracker.report(stage, ((epoch - 1) + step / steps_per_epoch) / config.epochs, f"epoch {epoch}/{config.epochs}")
            idx_dev = idx.to(device)
            xb, yb = x_dev[idx_dev], y_dev[idx_dev]
            if augment_fn is not None:
                xb = augment_fn(xb, generator)
            elif config.augment:
                xb = crop_flip(xb, generator)
            with autocast_for(device, config.amp):
                logits = model(xb)
            logits = logits.float()
            losses = per_sample_loss(logits, yb)
            loss = (losses * w_dev[idx_dev]).sum() / w_dev[idx_dev].sum() if w_dev is not None else losses.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            detached = logits.detach()
            for obs in observers:
                obs.on_batch(epoch, idx_dev, detached, yb)
            loss_sum += losses.detach().sum()
            hard = yb if yb.dim() == 1 else yb.argmax(1)
            correct += (detached.argmax(1) == hard).sum()
        for obs in observers:
            obs.on_epoch_end(epoch)
        wanting = [obs for obs in observers if epoch in obs.eval_epochs]
        if wanting:
            logits_all, feats_all = predict(model, x_dev, device, amp=config.amp)
            for obs in wanting:
                obs.on_eval(epoch, logits_all, feats_all)
        history.append({"epoch": epoch, "loss": float(loss_sum) / n, "train_acc": float(correct) / n})
        if tracker is not None:
            tracker.report(stage, epoch / config.epochs, f"epoch {epoch}/{config.epochs}", **history[-1])
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "observers": [obs.state_dict() for obs in observers],
                    "history": history,
                    "epoch": epoch,
                },
            )
    return TrainResult(model, last_epoch, resumed_from, time.perf_counter() - start_time, history)

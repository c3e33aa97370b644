"""The one distillation loop: iterations, optimiser, progress, cancellation, checkpoint and resume.

Each iteration draws its randomness from a generator and global seed derived from (seed,
iteration), so a run resumed from a checkpoint of the synthetic set and its optimiser repeats the
uninterrupted run exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.atomic import atomic_path
from engine.distill.base import Matcher
from engine.distill.synthetic import SyntheticSet
from engine.progress import Tracker


@dataclass
class LoopResult:
    loss_curve: list[float]
    iterations: int
    resumed_from: int
    seconds: float
    seconds_per_iteration: float
    extra: dict = field(default_factory=dict)


def iteration_generator(seed: int, iteration: int) -> torch.Generator:
    """The randomness of one iteration; also reseeds torch's global RNG, which model init draws from."""
    mixed = (seed * 1_000_003 + iteration) % (2**63)
    torch.manual_seed(mixed)
    return torch.Generator().manual_seed(mixed)


def _save(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def run_loop(
    matcher: Matcher,
    synthetic: SyntheticSet,
    iterations: int,
    *,
    seed: int = 0,
    tracker: Tracker | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = 10,
    stage: str = "distill",
) -> LoopResult:
    """Optimise ``synthetic`` in place for ``iterations`` iterations of ``matcher``.

    Args:
        matcher: the method (its ``param_groups`` set learning rates and momenta per tensor).
        synthetic: the set to optimise; its learnable tensors are updated in place.
        iterations: total iterations, including any already done in a resumed checkpoint.
        seed: the run's seed; iteration i uses a generator derived from (seed, i).
        tracker: progress after every iteration; cancellation is checked there.
        checkpoint: file holding the synthetic set, optimiser and loss curve; resumed when present.
        checkpoint_every: iterations between checkpoints (the last iteration is always saved).
        stage: stage name for progress events.
    """
    tracker = tracker or Tracker()
    learnable = synthetic.learnable()
    for tensor in learnable.values():
        tensor.requires_grad_(True)
    optimizer = torch.optim.SGD(matcher.param_groups(synthetic))
    curve: list[float] = []
    first = 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=synthetic.images.device, weights_only=True)
        with torch.no_grad():
            for name, tensor in learnable.items():
                tensor.copy_(state["tensors"][name])
        optimizer.load_state_dict(state["optimizer"])
        curve = list(state["loss_curve"])
        first = int(state["iteration"])

    def update(loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    for it in range(first, iterations):
        loss = matcher.iterate(synthetic, update, iteration_generator(seed, it), it)
        curve.append(float(loss))
        done = it + 1
        metrics = {"loss": curve[-1]}
        if synthetic.lr is not None:
            metrics["lr"] = float(synthetic.lr.detach())
        if checkpoint is not None and (done % checkpoint_every == 0 or done == iterations):
            _save(
                checkpoint,
                {
                    "tensors": {k: v.detach() for k, v in learnable.items()},
                    "optimizer": optimizer.state_dict(),
                    "loss_curve": curve,
                    "iteration": done,
                },
            )
        tracker.report(stage, done / max(iterations, 1), f"iteration {done}/{iterations}", **metrics)
    for tensor in learnable.values():
        tensor.requires_grad_(False)
    seconds = time.perf_counter() - start
    ran = iterations - first
    return LoopResult(curve, iterations, first, seconds, seconds / ran if ran else 0.0)

"""What every distillation method shares: the real data it matches against and the matcher contract."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from engine.distill.synthetic import SyntheticSet

ModelFactory = Callable[[], nn.Module]
UpdateFn = Callable[[torch.Tensor], None]


@dataclass
class RealData:
    """Real training images in the space the synthetic set lives in (normalised, whitened if ZCA), on device."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int

    def __post_init__(self) -> None:
        self.by_class = [torch.nonzero(self.y == c).flatten() for c in range(self.num_classes)]

    def sample(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """Up to n random images of class c (without replacement)."""
        members = self.by_class[c]
        pick = torch.randperm(len(members), generator=generator)[:n].to(members.device)
        return self.x[members[pick]]


class Matcher(Protocol):
    """One distillation method: owns its matching loss, the loop owns everything else.

    ``iterate`` runs one distillation iteration: it computes matching losses and hands each to
    ``update`` (the loop's optimiser step; gradient matching updates several times per iteration)
    and returns the iteration's mean loss. ``iteration`` (0-based) drives schedules such as DATM's
    widening start-epoch range. All randomness comes from ``generator`` and the global
    torch seed the loop sets per iteration, so an iteration is a pure function of its seed and
    the synthetic set: that is what makes resume exact and lets tests re-measure a loss by
    replaying an iteration with a no-op ``update``.
    """

    def param_groups(self, synthetic: SyntheticSet) -> list[dict]: ...

    def iterate(self, synthetic: SyntheticSet, update: UpdateFn, generator: torch.Generator, iteration: int) -> float: ...


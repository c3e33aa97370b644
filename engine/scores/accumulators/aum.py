"""AUM's accumulator: the running sum of each sample's margin and its count of presentations.

The score and its orientation are defined in :mod:`engine.scores.aum`.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, to_numpy


def margin(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    assigned = logits.gather(1, targets.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, targets.view(-1, 1), float("-inf"))
    return assigned - others.max(1).values


class AUMAccumulator(ScoreAccumulator):
    state_names = ("margin_sum", "count")

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device):
        super().__init__(num_samples, num_classes, epochs, device)
        self.margin_sum = torch.zeros(num_samples, dtype=torch.float64, device=device)
        self.count = torch.zeros(num_samples, dtype=torch.int32, device=device)

    def on_epoch(self, epoch: int, logits: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor) -> None:
        self.margin_sum += margin(logits, targets).double()
        self.count += 1

    def result(self) -> np.ndarray:
        return to_numpy(self.margin_sum / self.count.clamp(min=1))

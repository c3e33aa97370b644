"""EVA's accumulator: per window (early, late) the running sum and sum of squares of each sample's error-vector
score, and the count of epochs that entered it.

The score and its default windows are defined in :mod:`engine.scores.eva`.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, error_l2, to_numpy
from engine.scores.eva import windows


class EVAAccumulator(ScoreAccumulator):
    state_names = ("sums", "squares", "counts")

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device,
                 early_start: int = 1, early_end: int | None = None, late_start: int | None = None) -> None:
        super().__init__(num_samples, num_classes, epochs, device)
        self.early, self.late = windows(epochs, early_start, early_end, late_start)
        self.sums = torch.zeros(2, num_samples, dtype=torch.float64, device=device)
        self.squares = torch.zeros(2, num_samples, dtype=torch.float64, device=device)
        self.counts = torch.zeros(2, dtype=torch.float64, device=device)

    def on_epoch(self, epoch: int, logits: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor) -> None:
        s = error_l2(probs, targets).double()
        for w, (lo, hi) in enumerate((self.early, self.late)):
            if lo <= epoch <= hi:
                self.sums[w] += s
                self.squares[w] += s * s
                self.counts[w] += 1

    def result(self) -> np.ndarray:
        n = self.counts.clamp(min=1).view(2, 1)
        mean = self.sums / n
        variance = (self.squares / n - mean * mean).clamp(min=0)
        return to_numpy(variance.sum(0))

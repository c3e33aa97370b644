"""Dyn-Unc's accumulator: a ring buffer of the last J assigned-label probabilities per sample, and the running
sum of their standard deviation over each completed window.

The score and its default window are defined in :mod:`engine.scores.dyn_unc`.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, to_numpy
from engine.scores.dyn_unc import window_length


class DynUncAccumulator(ScoreAccumulator):
    state_names = ("ring", "std_sum", "windows")

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device, window: int | None = None):
        super().__init__(num_samples, num_classes, epochs, device)
        self.window = window_length(epochs, window)
        self.ring = torch.zeros(num_samples, self.window, device=device)
        self.std_sum = torch.zeros(num_samples, dtype=torch.float64, device=device)
        self.windows = torch.zeros((), dtype=torch.int64, device=device)

    def on_epoch(self, epoch: int, logits: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor) -> None:
        self.ring[:, (epoch - 1) % self.window] = probs.gather(1, targets.view(-1, 1)).squeeze(1)
        if epoch >= self.window:
            self.std_sum += self.ring.std(dim=1, unbiased=False).double()
            self.windows += 1

    def result(self) -> np.ndarray:
        return to_numpy(self.std_sum / self.windows.clamp(min=1))

"""TDDS's accumulator: the previous epoch's probabilities, a ring of the last K-1 contributions per sample, and
the EMA-weighted sum of the windows' spreads so far.

The score (the paper's Eqs. 10-12), its defaults and the measurements behind them are in :mod:`engine.scores.tdds`.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, to_numpy
from engine.scores.tdds import MIN_SPAN, epoch_range, window_length

# Keeps log p finite where a probability underflows to 0.
_EPS = 1e-8


def kl_contribution(prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
    return (cur * ((cur + _EPS).log() - (prev + _EPS).log())).abs().sum(1)


class TDDSAccumulator(ScoreAccumulator):
    state_names = ("prev_probs", "ring", "filled", "score", "windows_done")

    def __init__(
        self,
        num_samples: int,
        num_classes: int,
        epochs: int,
        device: torch.device,
        window: int | None = None,
        beta: float = 0.9,
        start_epoch: int = 1,
        end_epoch: int | None = None,
    ):
        super().__init__(num_samples, num_classes, epochs, device)
        self.start, self.end = epoch_range(epochs, start_epoch, end_epoch)
        span = self.end - self.start + 1
        if span < MIN_SPAN:
            raise ValueError(f"TDDS needs at least {MIN_SPAN} epochs in its range (start_epoch..end_epoch)")
        self.window = window_length(span, window)
        self.beta = beta
        self.num_windows = span - self.window + 1
        self.prev_probs = torch.zeros(num_samples, num_classes, device=device)
        self.ring = torch.zeros(num_samples, self.window - 1, device=device)
        self.filled = torch.zeros((), dtype=torch.int64, device=device)
        self.score = torch.zeros(num_samples, dtype=torch.float64, device=device)
        self.windows_done = torch.zeros((), dtype=torch.int64, device=device)

    def on_epoch(self, epoch: int, logits: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor) -> None:
        if not self.start <= epoch <= self.end:
            return
        if epoch > self.start:
            slot = int(self.filled) % (self.window - 1)
            self.ring[:, slot] = kl_contribution(self.prev_probs, probs)
            self.filled += 1
            if int(self.filled) >= self.window - 1:
                spread = (self.ring - self.ring.mean(1, keepdim=True)).norm(dim=1)
                k = int(self.windows_done)
                weight = self.beta * (1.0 - self.beta) ** (self.num_windows - 1 - k)
                self.score += weight * spread.double()
                self.windows_done += 1
        self.prev_probs = probs.clone()

    def result(self) -> np.ndarray:
        return to_numpy(self.score)

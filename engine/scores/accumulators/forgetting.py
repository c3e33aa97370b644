"""Forgetting's accumulator: each sample's correctness at its last presentation, its count of correct -> wrong
transitions, and whether it was ever classified correctly.

The score, including what an unlearned sample gets, is defined in :mod:`engine.scores.forgetting`.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, to_numpy


class ForgettingAccumulator(ScoreAccumulator):
    state_names = ("prev_correct", "events", "ever_learned")

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device):
        super().__init__(num_samples, num_classes, epochs, device)
        self.prev_correct = torch.zeros(num_samples, dtype=torch.bool, device=device)
        self.events = torch.zeros(num_samples, dtype=torch.int32, device=device)
        self.ever_learned = torch.zeros(num_samples, dtype=torch.bool, device=device)

    def on_epoch(self, epoch: int, logits: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor) -> None:
        correct = logits.argmax(1) == targets
        self.events += (self.prev_correct & ~correct).int()
        self.prev_correct = correct
        self.ever_learned |= correct

    def result(self) -> np.ndarray:
        never = torch.full_like(self.events, self.epochs + 1)
        return to_numpy(torch.where(self.ever_learned, self.events, never))

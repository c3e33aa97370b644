"""Entropy's accumulator: each sample's prediction entropy from the evaluation pass after the last epoch.

The score is defined in :mod:`engine.scores.entropy`.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, to_numpy


class EntropyAccumulator(ScoreAccumulator):
    state_names = ("value",)

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device):
        super().__init__(num_samples, num_classes, epochs, device)
        self.value = torch.zeros(num_samples, device=device)

    @property
    def eval_epochs(self) -> frozenset[int]:
        return frozenset({self.epochs})

    def on_eval(self, epoch: int, logits: torch.Tensor, features: torch.Tensor, targets: torch.Tensor) -> None:
        logp = logits.log_softmax(1)
        self.value = -(logp.exp() * logp).sum(1)

    def result(self) -> np.ndarray:
        return to_numpy(self.value)

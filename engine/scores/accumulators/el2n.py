"""EL2N's and GraNd's accumulators: each sample's score from the evaluation pass at the early epoch, nothing else.

The scores, the last-layer GraNd identity used here and the default epoch are defined in :mod:`engine.scores.el2n`.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, error_l2, to_numpy
from engine.scores.el2n import EPOCH_FRACTION, snapshot_epoch


class EL2NAccumulator(ScoreAccumulator):
    state_names = ("value",)

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device,
                 epoch: int | None = None, epoch_fraction: float = EPOCH_FRACTION) -> None:
        super().__init__(num_samples, num_classes, epochs, device)
        self.epoch = snapshot_epoch(epochs, epoch, epoch_fraction)
        self.value = torch.zeros(num_samples, device=device)

    @property
    def eval_epochs(self) -> frozenset[int]:
        return frozenset({self.epoch})

    def on_eval(self, epoch: int, logits: torch.Tensor, features: torch.Tensor, targets: torch.Tensor) -> None:
        if epoch == self.epoch:
            self.value = error_l2(logits.softmax(1), targets)

    def result(self) -> np.ndarray:
        return to_numpy(self.value)


class GraNdAccumulator(EL2NAccumulator):
    def on_eval(self, epoch: int, logits: torch.Tensor, features: torch.Tensor, targets: torch.Tensor) -> None:
        if epoch == self.epoch:
            self.value = error_l2(logits.softmax(1), targets) * (features.pow(2).sum(1) + 1.0).sqrt()

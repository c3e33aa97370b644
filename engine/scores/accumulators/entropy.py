"""Entropy's accumulator: each sample's prediction entropy from the evaluation pass after the last epoch.

The score is defined in :mod:`engine.scores.entropy`.
"""

from __future__ import annotations

import torch

from engine.scores.base import FinalEvalAccumulator


class EntropyAccumulator(FinalEvalAccumulator):
    def on_eval(self, epoch: int, logits: torch.Tensor, features: torch.Tensor, targets: torch.Tensor) -> None:
        logp = logits.log_softmax(1)
        self.value = -(logp.exp() * logp).sum(1)

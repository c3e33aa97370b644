"""Prediction entropy of the trained proxy (the "uncertainty" family, as benchmarked in DeepCore).

H(x) = -sum_c p_c log p_c of the final model's softmax. Uncertain samples sit near the decision
boundary: higher entropy = more informative.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, to_numpy
from engine.scores.registry import ScoreSpec, register_score


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


register_score(
    ScoreSpec(
        name="entropy",
        title="Entropy (prediction uncertainty)",
        reference="Coleman et al. Selection via Proxy. ICLR 2020; Guo et al. DeepCore. DEXA 2022",
        higher_is_important=True,
        accumulator=EntropyAccumulator,
    )
)

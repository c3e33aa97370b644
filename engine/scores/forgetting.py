"""Forgetting events (Toneva et al., "An Empirical Study of Example Forgetting", ICLR 2019).

Each time a sample is presented in a minibatch its correctness is compared with its previous
presentation; a transition correct -> wrong is a forgetting event. Samples never classified
correctly during training are "unlearned" and, as in the paper, count as forgotten the most: they
get ``epochs + 1``, more than any learned sample can reach. Higher = harder (the paper prunes the
unforgettable, lowest end).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, to_numpy
from engine.scores.registry import ScoreSpec, register_score


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


register_score(
    ScoreSpec(
        name="forgetting",
        title="Forgetting events",
        reference="Toneva et al. An Empirical Study of Example Forgetting during Deep Neural Network Learning. ICLR 2019",
        higher_is_important=True,
        accumulator=ForgettingAccumulator,
    )
)

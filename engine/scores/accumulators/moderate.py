"""Moderate's accumulator: each sample's score from the trained proxy's features in the evaluation pass after
the last epoch.

The score is defined in :mod:`engine.scores.moderate`.
"""

from __future__ import annotations

import torch

from engine.scores.base import FinalEvalAccumulator


def distance_to_class_median(features: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    dist = torch.zeros(len(features), device=features.device)
    for c in range(num_classes):
        mask = targets == c
        if mask.any():
            centre = features[mask].median(dim=0).values
            dist[mask] = (features[mask] - centre).norm(dim=1)
    return dist


class ModerateAccumulator(FinalEvalAccumulator):
    def on_eval(self, epoch: int, logits: torch.Tensor, features: torch.Tensor, targets: torch.Tensor) -> None:
        dist = distance_to_class_median(features, targets, self.num_classes)
        deviation = torch.zeros_like(dist)
        for c in range(self.num_classes):
            mask = targets == c
            if mask.any():
                deviation[mask] = (dist[mask] - dist[mask].median()).abs()
        self.value = -deviation

"""AUM, area under the margin (Pleiss et al., NeurIPS 2020).

At every training presentation the margin is the assigned-label logit minus the largest other
logit; AUM is its average over training. Mislabeled and hard samples have low (often negative)
AUM, so LOWER is harder: ``higher_is_important`` is False.

Orientation, decided per use: the score keeps Pleiss et al.'s reading (low AUM = hard or mislabelled),
which is what noise detection wants, and the selection mode picks the end: ``hardest`` keeps the low end
(label noise included), ``easiest`` keeps the high end, which is how 002 (Supplementary, baselines) runs AUM
for pruning ("larger AUM, higher importance"); ``ccs`` drops the hardest ``ccs_hard_cutoff`` either way.
``report.json`` records the orientation as ``score.higher_is_important``.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, to_numpy
from engine.scores.registry import ScoreSpec, register_score


def margin(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    assigned = logits.gather(1, targets.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, targets.view(-1, 1), float("-inf"))
    return assigned - others.max(1).values


class AUMAccumulator(ScoreAccumulator):
    state_names = ("margin_sum", "count")

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device):
        super().__init__(num_samples, num_classes, epochs, device)
        self.margin_sum = torch.zeros(num_samples, dtype=torch.float64, device=device)
        self.count = torch.zeros(num_samples, dtype=torch.int32, device=device)

    def on_epoch(self, epoch: int, logits: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor) -> None:
        self.margin_sum += margin(logits, targets).double()
        self.count += 1

    def result(self) -> np.ndarray:
        return to_numpy(self.margin_sum / self.count.clamp(min=1))


register_score(
    ScoreSpec(
        name="aum",
        title="AUM (area under the margin)",
        reference="Pleiss et al. Identifying Mislabeled Data using the Area Under the Margin Ranking. NeurIPS 2020",
        higher_is_important=False,
        accumulator=AUMAccumulator,
    )
)

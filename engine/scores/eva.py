"""EVA, evolution-aware variance (Hong, Zhang, Zhang, Zhou, ACM MM 2024).

EVA follows each sample's error-vector score S_t = ||p_t - onehot(y)||_2 through training and
measures how much it fluctuates inside two windows: an early one, while the model learns easy,
prominent features, and a late one, while it learns the complex ones. The score is the sum of the
variances of S within the two windows, so a sample that is volatile in either phase ranks high.
The window bounds are parameters (default: the first and second half of the proxy run; starting the
early window after a warm-up ignores the first, noisy epochs); each
window keeps only a running sum and sum of squares per sample. Higher = keep.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, error_l2, to_numpy
from engine.scores.registry import ScoreSpec, register_score


class EVAAccumulator(ScoreAccumulator):
    state_names = ("sums", "squares", "counts")

    def __init__(
        self,
        num_samples: int,
        num_classes: int,
        epochs: int,
        device: torch.device,
        early_start: int = 1,
        early_end: int | None = None,
        late_start: int | None = None,
    ):
        super().__init__(num_samples, num_classes, epochs, device)
        half = max(1, epochs // 2)
        self.early = (early_start, early_end or half)
        self.late = (late_start or min(half + 1, epochs), epochs)
        self.sums = torch.zeros(2, num_samples, dtype=torch.float64, device=device)
        self.squares = torch.zeros(2, num_samples, dtype=torch.float64, device=device)
        self.counts = torch.zeros(2, dtype=torch.float64, device=device)

    def on_epoch(self, epoch: int, logits: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor) -> None:
        s = error_l2(probs, targets).double()
        for w, (lo, hi) in enumerate((self.early, self.late)):
            if lo <= epoch <= hi:
                self.sums[w] += s
                self.squares[w] += s * s
                self.counts[w] += 1

    def result(self) -> np.ndarray:
        n = self.counts.clamp(min=1).view(2, 1)
        mean = self.sums / n
        variance = (self.squares / n - mean * mean).clamp(min=0)
        return to_numpy(variance.sum(0))


register_score(
    ScoreSpec(
        name="eva",
        title="EVA (evolution-aware dual-window variance)",
        reference="Hong, Zhang, Zhang, Zhou. Evolution-aware VAriance (EVA) Coreset Selection for Medical Image Classification. ACM MM 2024",
        higher_is_important=True,
        accumulator=EVAAccumulator,
        params={"early_start": 1, "early_end": None, "late_start": None},
    )
)

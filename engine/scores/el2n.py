"""EL2N and GraNd (Paul et al., "Deep Learning on a Data Diet", NeurIPS 2021).

EL2N(x, y) = || softmax(f_w(x)) - onehot(y) ||_2 for the model after an early epoch ``t``
(the paper uses epoch 20 on CIFAR), averaged over several independently initialised runs.
GraNd(x, y) = || grad_w loss(f_w(x), y) ||_2 at the same epoch. For the final linear layer
W h + b with cross-entropy, grad_W = (p - y) h^T and grad_b = p - y, so the last-layer GraNd is
exactly ||p - y|| * sqrt(||h||^2 + 1): no per-sample backward pass is needed. Both are larger for
harder samples; the paper keeps the highest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator, error_l2, to_numpy
from engine.scores.params import Param, ParamProblem, past_the_run
from engine.scores.registry import ScoreSpec, register_score

PARAMS = {
    "epoch": Param(None, int, "the early epoch scored (default: 20, or the last of a shorter proxy run)", minimum=1),
    # Each seed is one more proxy run up to ``epoch``.
    "seeds": Param(1, int, "independently initialised proxy runs averaged", minimum=1, maximum=20),
}


def snapshot_epoch(epochs: int, epoch: int | None) -> int:
    """The early epoch to score at: the requested one, capped by the run's length (default: 20 or the last)."""
    return max(1, min(epochs, epoch if epoch is not None else 20))


class EL2NAccumulator(ScoreAccumulator):
    state_names = ("value",)

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device, epoch: int | None = None):
        super().__init__(num_samples, num_classes, epochs, device)
        self.epoch = snapshot_epoch(epochs, epoch)
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


def check(params: Mapping[str, Any], epochs: int) -> list[ParamProblem]:
    # An epoch past the run would be scored at the last one instead: a request the run cannot honour.
    return past_the_run(params, ("epoch",), epochs)


register_score(
    ScoreSpec(
        name="el2n",
        title="EL2N (error L2-norm)",
        reference="Paul, Ganguli, Dziugaite. Deep Learning on a Data Diet. NeurIPS 2021",
        higher_is_important=True,
        accumulator=EL2NAccumulator,
        params=PARAMS,
        constraints=check,
    )
)
register_score(
    ScoreSpec(
        name="grand",
        title="GraNd (last-layer gradient norm)",
        reference="Paul, Ganguli, Dziugaite. Deep Learning on a Data Diet. NeurIPS 2021",
        higher_is_important=True,
        accumulator=GraNdAccumulator,
        params=PARAMS,
        constraints=check,
    )
)

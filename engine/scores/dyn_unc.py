"""Dynamic uncertainty, Dyn-Unc (He et al., "Large-scale Dataset Pruning with Dynamic Uncertainty", 2023).

With P_t the probability of the assigned label at epoch t, the uncertainty of a window of J
consecutive epochs is the standard deviation of P over it; Dyn-Unc averages that over all
windows sliding one epoch at a time. Only the last J values are kept per sample (a ring buffer).
Higher = more important. He et al. use J = 10 over a 200-epoch run, i.e. many windows; over the default
10-epoch proxy J = 10 would be one window, so the default J is half the run (see ``half_span``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.scores.params import Param, ParamProblem, half_span
from engine.scores.registry import ScoreSpec, register_score

PARAMS = {
    "window": Param(None, int, "epochs per window (J) of the standard deviation; default half the run; capped at "
                    "the run's length", minimum=2),
}


def window_length(epochs: int, window: int | None) -> int:
    return half_span(epochs, 2) if window is None else max(2, min(window, epochs))


def check(params: Mapping[str, Any], epochs: int) -> list[ParamProblem]:
    # With one epoch no window completes and every sample scores 0.
    if epochs < 2:
        return [ParamProblem("proxy.epochs", "dyn_unc takes standard deviations over windows of at least 2 epochs")]
    return []


def resolve(params: Mapping[str, Any], epochs: int) -> dict[str, Any]:
    return {"window": window_length(epochs, params.get("window"))}


register_score(
    ScoreSpec(
        name="dyn_unc",
        title="Dyn-Unc (dynamic uncertainty)",
        reference="He, Yang, Zhu, Xie. Large-scale Dataset Pruning with Dynamic Uncertainty. CVPR-W 2024 (arXiv 2306.05175)",
        higher_is_important=True,
        implementation="engine.scores.accumulators.dyn_unc:DynUncAccumulator",
        params=PARAMS,
        resolve=resolve,
        constraints=check,
    )
)

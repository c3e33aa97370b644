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

from collections.abc import Mapping
from typing import Any

from engine.scores.params import Param, ParamProblem, param_field, past_the_run, with_defaults
from engine.scores.registry import ScoreSpec, register_score

PARAMS = {
    "early_start": Param(1, int, "first epoch of the early window", minimum=1),
    "early_end": Param(None, int, "last epoch of the early window (default: half the proxy run)", minimum=1),
    "late_start": Param(None, int, "first epoch of the late window, which ends with the run (default: after half)",
                        minimum=1),
}
Window = tuple[int, int]


def windows(epochs: int, early_start: int, early_end: int | None, late_start: int | None) -> tuple[Window, Window]:
    """The early and the late window (first and last epoch of each) of a run of ``epochs``."""
    half = max(1, epochs // 2)
    return (early_start, early_end or half), (late_start or min(half + 1, epochs), epochs)


def check(params: Mapping[str, Any], epochs: int) -> list[ParamProblem]:
    if past := past_the_run(params, tuple(PARAMS), epochs):
        return past
    (early_start, early_end), (late_start, late_end) = windows(epochs, **with_defaults(params, PARAMS))
    if early_start > early_end:  # only a given early_start can pass the end (early_end >= 1 = the default start)
        return [ParamProblem(param_field("early_start"), f"is after the early window's end, epoch {early_end}")]
    if early_end > early_start or late_end > late_start:
        return []
    # A window of one epoch has variance 0: with both so, every sample would score 0.
    given = [name for name in PARAMS if name in params]
    if given:
        message = f"leaves windows {early_start}..{early_end} and {late_start}..{late_end} of one epoch each; " \
                  "eva needs at least 2 epochs in one of them"
        return [ParamProblem(param_field(given[0]), message)]
    return [ParamProblem("proxy.epochs", "eva takes variances within an early and a late half of the run: "
                                         "it needs at least 3 epochs")]


register_score(
    ScoreSpec(
        name="eva",
        title="EVA (evolution-aware dual-window variance)",
        reference="Hong, Zhang, Zhang, Zhou. Evolution-aware VAriance (EVA) Coreset Selection for Medical Image Classification. ACM MM 2024",
        higher_is_important=True,
        implementation="engine.scores.accumulators.eva:EVAAccumulator",
        params=PARAMS,
        constraints=check,
    )
)

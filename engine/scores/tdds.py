"""TDDS, temporal dual-depth scoring (Zhang et al., CVPR 2024).

Depth one: a sample's contribution at epoch t is the KL-style loss difference between its
predictions at t-1 and t, d_t = sum_c | p_t,c (log p_t,c - log p_{t-1},c) |, which keeps the
non-target probabilities that a cross-entropy difference would drop (the paper's Eq. 10).
Depth two: over each window of K consecutive epochs (K-1 contributions) the spread
sqrt(sum_j (d_j - mean)^2) measures how variable the contribution is (Eq. 11), and windows
sliding over the T-epoch range are combined with exponential-moving-average weights
beta (1 - beta)^(W-1-k) for window k of W, so later windows weigh most (Eq. 12). Only the
previous epoch's probabilities and the last K-1 contributions are kept per sample. Higher = keep.

Defaults: 002 (Sec. 1, Sec. 4.3) slides a window of "typically 10 epochs" over ranges many times longer,
so many windows enter the EMA; a 10-epoch window over the default 10-epoch proxy would leave a single
window and no EMA. The default window is therefore half the scored range (5 epochs, 6 windows, under the
default proxy). beta = 0.9 is the best of 002's Sec. 5.3 sweep (Fig. 5); a larger range should start
earlier at larger pruning rates (Sec. 5.3, Fig. 4), which ``start_epoch``/``end_epoch`` set.

Measured against these defaults (``python -m bench.papers --parts tdds_sweep``, 500 images per class, a
10-epoch ConvNet-16 proxy, 3 seeds; ``bench/results/papers-cpu.md``): on MNIST they beat random at 10%
(+1.57 points) and 30% (+0.60), selecting over all samples as 002 does; on Fashion-MNIST they lose badly
(-26.9 and -18.8 points) while one window over the whole run stays close to random (-1.9, +1.1). Several
windows with beta 0.9 weigh the last, converged epochs of so short a run most, where only the ambiguous
samples still move; global selection then crowds their classes in (class KL 0.24). Class balance
(``class_balanced: true``) recovers most of it at 10%, 72.43 against 50.76, still 5.2 below random
(``bench/results/prune-cpu.md``). The default job uses EL2N with ``auto`` selection, not TDDS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.scores.params import Param, ParamProblem, half_span, param_field, past_the_run, with_defaults
from engine.scores.registry import ScoreSpec, register_score

# The shortest window, and so range: K epochs give K - 1 contributions, and the spread of one is always 0.
MIN_SPAN = 3

PARAMS = {
    "window": Param(None, int, "epochs per window (K); default half the epochs in range; capped at the range",
                    minimum=MIN_SPAN),
    "beta": Param(0.9, float, "EMA weight of the latest window; earlier ones decay by (1 - beta)", minimum=0,
                  maximum=1, exclusive_minimum=True),
    "start_epoch": Param(1, int, "first epoch of the range scored", minimum=1),
    "end_epoch": Param(None, int, "last epoch of the range scored (default: the proxy run's last)", minimum=1),
}


def epoch_range(epochs: int, start_epoch: int, end_epoch: int | None) -> tuple[int, int]:
    """The epochs scored, start_epoch..end_epoch, within a run of ``epochs``."""
    return max(1, start_epoch), min(epochs, end_epoch or epochs)


def window_length(span: int, window: int | None) -> int:
    """The window K used over a range of ``span`` epochs: the requested one capped by the range, else half of it."""
    return half_span(span, MIN_SPAN) if window is None else max(MIN_SPAN, min(window, span))


def check(params: Mapping[str, Any], epochs: int) -> list[ParamProblem]:
    if past := past_the_run(params, ("start_epoch", "end_epoch"), epochs):
        return past
    values = with_defaults(params, PARAMS)
    start, end = epoch_range(epochs, values["start_epoch"], values["end_epoch"])
    if end - start + 1 >= MIN_SPAN:
        return []
    if "start_epoch" in params or "end_epoch" in params:
        field = param_field("start_epoch" if "start_epoch" in params else "end_epoch")
        return [ParamProblem(field, f"leaves {start}..{end} to score; tdds needs at least {MIN_SPAN} epochs in its range")]
    return [ParamProblem("proxy.epochs", f"tdds takes the spread of the changes between epochs: it needs at least "
                                         f"{MIN_SPAN} epochs")]


def resolve(params: Mapping[str, Any], epochs: int) -> dict[str, Any]:
    values = with_defaults(params, PARAMS)
    start, end = epoch_range(epochs, values["start_epoch"], values["end_epoch"])
    return values | {"start_epoch": start, "end_epoch": end, "window": window_length(end - start + 1, values["window"])}


register_score(
    ScoreSpec(
        name="tdds",
        title="TDDS (temporal dual-depth scoring)",
        reference="Zhang, Du, Li, Xie, Zhou. Spanning Training Progress: Temporal Dual-Depth Scoring for Enhanced Dataset Pruning. CVPR 2024",
        higher_is_important=True,
        implementation="engine.scores.accumulators.tdds:TDDSAccumulator",
        params=PARAMS,
        constraints=check,
        resolve=resolve,
        # 002 Sec. 4.3 ("after sorting, the top-M samples are selected"): one ranking over the whole dataset.
        selects_globally=True,
    )
)

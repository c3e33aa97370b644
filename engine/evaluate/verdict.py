"""Whether a paired difference of accuracies is a real gain or noise: the verdict every gain over random carries.

Two evaluations under one protocol train from the same seeds (initial weights, batch order), so the per-seed
differences are paired. Their mean gets a two-sided Student-t interval at ``confidence`` (95% by default)
from the per-seed differences' sample standard deviation: ``better`` when the whole interval lies above 0,
``worse`` when it lies below, ``within noise`` when it holds 0. One seed gives no spread, so no interval: that
verdict is ``not enough seeds to tell``. Accuracies are fractions or points alike; the verdict does not depend
on the unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

CONFIDENCE = 0.95
VerdictName = Literal["better", "worse", "within noise", "not enough seeds to tell"]


@dataclass(frozen=True)
class Verdict:
    verdict: VerdictName
    mean: float
    seeds: int
    # The interval of the mean difference; None with fewer than two seeds.
    low: float | None
    high: float | None
    confidence: float = CONFIDENCE
    test: str = "paired t-interval"

    def to_dict(self) -> dict:
        return asdict(self)


def paired_verdict(differences: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Verdict:
    """The verdict on per-seed paired ``differences`` (subset minus baseline, one per evaluation seed)."""
    diffs = np.asarray(differences, dtype=np.float64)
    n = len(diffs)
    if n == 0:
        raise ValueError("a verdict needs at least one paired difference")
    mean = float(diffs.mean())
    if n < 2:
        return Verdict("not enough seeds to tell", mean, n, None, None, confidence)
    # scipy is imported where the interval is computed: the CLI and the API format verdicts without it.
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1) * diffs.std(ddof=1) / math.sqrt(n))
    low, high = mean - half, mean + half
    verdict: VerdictName = "better" if low > 0 else "worse" if high < 0 else "within noise"
    return Verdict(verdict, mean, n, low, high, confidence)


def describe(verdict: dict, unit: float = 100.0, what: str = "random") -> str:
    """One line a person reads: ``+1.23 ± 0.45 points over random, better (95% paired t-interval, 5 seeds)``;
    ``unit`` scales fractions to points."""
    mean = verdict["mean"] * unit
    if verdict["low"] is None:
        return f"{mean:+.2f} points over {what}, {verdict['verdict']} ({verdict['seeds']} seed)"
    half = (verdict["high"] - verdict["low"]) / 2 * unit
    return (f"{mean:+.2f} ± {half:.2f} points over {what}, {verdict['verdict']} "
            f"({verdict['confidence']:.0%} {verdict['test']}, {verdict['seeds']} seeds)")

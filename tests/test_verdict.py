"""Verdicts on paired gains: better, worse, within noise, or not enough seeds to tell."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from engine.evaluate.gain import dd_ranking, gain_over_random
from engine.evaluate.verdict import describe, paired_verdict


def test_a_consistent_gain_is_better_and_a_consistent_loss_worse() -> None:
    assert paired_verdict([0.02, 0.03, 0.025, 0.021, 0.028]).verdict == "better"
    assert paired_verdict([-0.02, -0.03, -0.025]).verdict == "worse"


def test_a_constructed_tie_is_within_noise() -> None:
    # The same mean gain as above, but the seeds disagree in sign: the interval holds 0.
    tie = paired_verdict([0.08, -0.05, 0.06, -0.04, 0.075])
    assert tie.verdict == "within noise" and tie.low < 0 < tie.high
    assert paired_verdict([0.0, 0.0, 0.0]).verdict == "within noise"


def test_the_interval_is_the_paired_t_interval() -> None:
    diffs = np.array([0.01, 0.03, -0.005, 0.02])
    verdict = paired_verdict(diffs)
    low, high = stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    assert (verdict.low, verdict.high) == pytest.approx((low, high))
    assert verdict.seeds == 4 and verdict.test == "paired t-interval" and verdict.confidence == 0.95


def test_one_seed_is_not_enough_to_tell() -> None:
    verdict = paired_verdict([0.2])
    assert verdict.verdict == "not enough seeds to tell" and verdict.low is None
    assert "not enough seeds to tell" in describe(verdict.to_dict())


def test_gains_over_random_carry_their_verdict() -> None:
    subset = {"per_seed": [0.90, 0.91, 0.92]}
    random = {"per_seed": [0.80, 0.82, 0.81]}
    gain = gain_over_random(subset, random)
    assert gain["verdict"]["verdict"] == "better" and gain["verdict"]["seeds"] == 3
    line = describe(gain["verdict"])
    assert line.startswith("+10.00 ± ") and "better (95% paired t-interval, 3 seeds)" in line
    ior = dd_ranking({"per_seed": [0.5, 0.6]}, {"per_seed": [0.55, 0.55]}, None)["improvement_over_random"]
    assert ior["verdict"]["verdict"] == "within noise"

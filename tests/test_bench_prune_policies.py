"""bench.prune's policies part: every score meets each candidate policy at each keep with a verdict (toy size),
and the policy a named score resolves to is the one the recorded measurements chose."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bench import prune
from bench.common import RESULTS
from bench.prune import Scale, best_policies, policies, policies_markdown
from engine.data.dataset import ImageDataset
from engine.select.auto import MEASURED_BEST

TOY = Scale(per_class=None, width=4, proxy_epochs=4, eval_images=400, eval_min_epochs=2, eval_max_epochs=4,
            full_data_epochs=2)


def test_every_score_meets_every_candidate_with_a_verdict(digits: ImageDataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prune, "POLICY_CANDIDATES", {0.1: ("ccs 30%", "median", "drop 30%", "easiest")})
    data = replace(digits, x_train=digits.x_train[:600], y_train=digits.y_train[:600])
    result = policies("digits", data, TOY, seeds=2, log=lambda message: None)
    (block,) = result["keeps"]
    assert len(block["random"]) == 2
    by_score: dict[str, list[dict]] = {}
    for row in block["rows"]:
        by_score.setdefault(row["score"], []).append(row)
    assert set(by_score) == set(prune.DYNAMIC)
    for rows in by_score.values():
        assert [row["policy"] for row in rows] == ["ccs 30%", "median", "drop 30%", "easiest"]
        assert all(row["gain"]["verdict"] in {"better", "worse", "within noise"} for row in rows)
    table = "\n".join(policies_markdown([result, result | {"dataset": "again"}]))
    assert "| el2n | median |" in table and "MEASURED_BEST" in table


def _row(score: str, policy: str, gain: float) -> dict:
    return {"score": score, "policy": policy, "gain": {"mean": gain}}


def test_the_best_policy_must_hold_on_every_dataset() -> None:
    first = {"keeps": [{"keep": 0.1, "rows": [_row("el2n", "median", 0.02), _row("el2n", "drop 30%", 0.005)]}]}
    second = {"keeps": [{"keep": 0.1, "rows": [_row("el2n", "median", -0.03), _row("el2n", "drop 30%", 0.001)]}]}
    # median wins on the first dataset by more, but loses on the second: the steadier one is chosen.
    assert best_policies([first, second]) == {"el2n": ((0.1, "drop 30%"),)}


def test_named_scores_resolve_to_the_policies_the_recorded_benchmark_measured_best() -> None:
    recorded = json.loads((RESULTS / "prune-cpu.json").read_text())["policies"]["results"]
    assert {r["dataset"] for r in recorded} == {"mnist", "fashion-mnist"}
    assert best_policies(recorded) == MEASURED_BEST

"""bench.prune's policies part at toy size: every score meets each candidate policy at each keep, with a verdict."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import prune
from bench.prune import Scale, policies, policies_markdown
from engine.data.dataset import ImageDataset

TOY = Scale(per_class=None, width=4, proxy_epochs=4, eval_images=400, eval_min_epochs=2, eval_max_epochs=4,
            full_data_epochs=2)


def test_every_score_meets_every_candidate_with_a_verdict(digits: ImageDataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prune, "POLICY_CANDIDATES", {0.1: ("auto", "median", "drop 30%", "easiest")})
    data = replace(digits, x_train=digits.x_train[:600], y_train=digits.y_train[:600])
    result = policies("digits", data, TOY, seeds=2, log=lambda message: None)
    (block,) = result["keeps"]
    assert len(block["random"]) == 2
    by_score: dict[str, list[dict]] = {}
    for row in block["rows"]:
        by_score.setdefault(row["score"], []).append(row)
    assert set(by_score) == set(prune.DYNAMIC)
    for rows in by_score.values():
        labels = [row["policy"] for row in rows]
        assert labels[0].startswith("auto today (") and labels[1:] == ["median", "drop 30%", "easiest"]
        assert all(row["gain"]["verdict"] in {"better", "worse", "within noise"} for row in rows)
    assert "| el2n | median |" in "\n".join(policies_markdown([result]))


def test_candidate_windows_keep_the_block_they_name() -> None:
    resolved = prune.SelectionConfig(keep=0.1, mode="ccs", class_balanced=True)
    assert prune.candidate_selection("auto", 0.1, resolved) is resolved
    assert prune.candidate_selection("median", 0.1, resolved).window == (0.0, pytest.approx(0.55))
    assert prune.candidate_selection("drop 30%", 0.1, resolved).window == (0.0, pytest.approx(0.7))
    with pytest.raises(ValueError, match="unknown candidate"):
        prune.candidate_selection("widest", 0.1, resolved)

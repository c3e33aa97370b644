"""Sweeps: several scores x keeps from one proxy run and shared baselines, each point as its own prune job selects."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine.pipeline.prune as prune
import engine.pipeline.scoring as scoring
from engine.data.dataset import ImageDataset
from engine.evaluate.baselines import MemoryBaselines
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import EvalConfig, ProxyConfig, PruneConfig, SelectionConfig
from engine.pipeline.sweep import SweepConfig, run_sweep

BASE = PruneConfig(proxy=ProxyConfig(width=8, epochs=3), evaluation=EvalConfig(seeds=2, epochs=2, width=8), seed=1)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many proxy runs and evaluation models the code under test trains."""
    counts = {"proxy": 0, "evaluations": 0}
    train, evaluate = scoring.train_model, prune.evaluate_training_set

    def counting_train(*args, **kwargs):
        counts["proxy"] += 1
        return train(*args, **kwargs)

    def counting_evaluate(*args, **kwargs):
        counts["evaluations"] += 1
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(scoring, "train_model", counting_train)
    monkeypatch.setattr(prune, "evaluate_training_set", counting_evaluate)
    return counts


def test_a_sweep_trains_one_proxy_and_each_baseline_once(digits: ImageDataset, tmp_path: Path, counted) -> None:
    config = SweepConfig(methods=["el2n", "forgetting", "aum"], keeps=[0.1, 0.3], base=BASE)
    result = run_sweep(digits, config)
    el2n_seeds = 4  # EL2N's default averages the early epoch over 4 runs: 1 full proxy run + 3 short ones
    assert counted["proxy"] == el2n_seeds
    # 6 subsets, 2 random subsets (one per size: class-balanced counts do not depend on the score), 1 full.
    assert counted["evaluations"] == 6 + 2 + 1
    assert [r["point"] for r in result.rows] == [f"{m}@{k:g}" for m in config.methods for k in config.keeps]
    for row in result.rows:
        assert row["gain_over_random"] == pytest.approx(row["accuracy"] - row["random"])
        assert 0 <= row["accuracy"] <= 1 and row["full_data"] == result.rows[0]["full_data"]
    assert [p["proxy_run"]["reused"] for p in result.report["points"]] == [False] + [True] * 5

    written = {p.name for p in result.write(tmp_path)}
    assert written == {"sweep.json", "sweep.csv", "selections.npz", "report.json", "curve.png"}
    assert Image.open(tmp_path / "curve.png").format == "PNG"
    with open(tmp_path / "sweep.csv") as f:
        assert [r["point"] for r in csv.DictReader(f)] == [r["point"] for r in result.rows]
    assert json.loads((tmp_path / "sweep.json").read_text()) == result.rows
    with np.load(tmp_path / "selections.npz", allow_pickle=False) as npz:
        assert set(npz.files) == {r["point"] for r in result.rows}


def test_each_point_selects_what_its_own_prune_job_selects(digits: ImageDataset, tmp_path: Path) -> None:
    base = replace(BASE, evaluation=None)
    result = run_sweep(digits, SweepConfig(methods=["tdds", "random"], keeps=[0.2, 0.5], base=base))
    for method, keep in [("tdds", 0.2), ("random", 0.5)]:
        alone = run_prune(digits, replace(base, method=method, selection=SelectionConfig(keep=keep)))
        np.testing.assert_array_equal(np.sort(result.indices[f"{method}@{keep:g}"]), np.sort(alone.indices))
    assert all(r["accuracy"] is None for r in result.rows)
    assert "curve.png" not in {p.name for p in result.write(tmp_path)}  # nothing to plot without evaluation


def test_a_stored_baseline_is_the_one_measured(digits: ImageDataset, counted) -> None:
    store = MemoryBaselines()
    config = replace(BASE, selection=SelectionConfig(keep=0.2))
    first = run_prune(digits, config, baselines=store)
    second = run_prune(digits, replace(config, method="forgetting"), baselines=store)
    for name in ("random", "full"):
        assert second.report["evaluation"][name]["reused"] is True
        assert {k: v for k, v in second.report["evaluation"][name].items() if k != "reused"} == first.report["evaluation"][name]
    # Another seed, or another evaluation protocol, is another baseline.
    evaluations = counted["evaluations"]
    run_prune(digits, replace(config, seed=2), baselines=store)
    run_prune(digits, replace(config, evaluation=replace(BASE.evaluation, epochs=3)), baselines=store)
    assert counted["evaluations"] == evaluations + 2 * 3

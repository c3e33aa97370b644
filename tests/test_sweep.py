"""Sweeps: several scores x keeps from one proxy run and shared baselines, each point as its own prune job selects,
each distinct subset evaluated once."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
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
from engine.pipeline.prune_config import EvalConfig, ProxyConfig, PruneConfig
from engine.pipeline.sweep import jaccard, run_sweep
from engine.pipeline.sweep_config import point_name, SweepConfig
from engine.select.config import SelectionConfig

BASE = PruneConfig(proxy=ProxyConfig(width=8, epochs=3), evaluation=EvalConfig(seeds=2, epochs=2, width=8), seed=1)
# A policy that reads the score: different scores keep different (overlapping) subsets.
HARDEST = replace(BASE, selection=SelectionConfig(mode="hardest"))
VERDICTS = {"better", "worse", "within noise"}  # what two seeds can say


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


@pytest.fixture
def score_blind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Selection as if every sample were equally important: every score keeps the same samples at a keep (what
    k-means prototypes did to the scores of issue 34), whatever the selection policies become."""
    select = prune.select_indices

    def ignoring_the_score(importance: np.ndarray, *args, **kwargs) -> np.ndarray:
        return select(np.zeros_like(importance), *args, **kwargs)

    monkeypatch.setattr(prune, "select_indices", ignoring_the_score)


def test_a_sweep_trains_one_proxy_and_each_baseline_once(digits: ImageDataset, tmp_path: Path, counted) -> None:
    config = SweepConfig(methods=["el2n", "forgetting", "aum"], keeps=[0.1, 0.3], base=HARDEST)
    result = run_sweep(digits, config)
    el2n_seeds = 4  # EL2N's default averages the early epoch over 4 runs: 1 full proxy run + 3 short ones
    assert counted["proxy"] == el2n_seeds
    # 6 subsets, 2 random subsets (one per size: class-balanced counts do not depend on the score), 1 full.
    assert counted["evaluations"] == 6 + 2 + 1
    assert [r["point"] for r in result.rows] == [f"{m}@{k:g}" for m in config.methods for k in config.keeps]
    for row, evaluated in zip(result.rows, result.report["evaluations"], strict=True):
        assert row["gain_over_random"] == pytest.approx(row["accuracy"] - row["random"])
        assert 0 <= row["accuracy"] <= 1 and row["full_data"] == result.rows[0]["full_data"]
        verdict = evaluated["gain_over_random"]["verdict"]
        assert row["verdict"] == verdict["verdict"] in VERDICTS and row["seeds"] == 2
        assert row["gain_low"] <= row["gain_over_random"] <= row["gain_high"]
    assert [p["proxy_run"]["reused"] for p in result.report["points"]] == [False] + [True] * 5

    written = {p.name for p in result.write(tmp_path)}
    assert written == {"sweep.json", "sweep.csv", "selections.npz", "report.json", "curve.png"}
    assert Image.open(tmp_path / "curve.png").format == "PNG"
    with open(tmp_path / "sweep.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert [(r["point"], r["verdict"]) for r in csv_rows] == [(r["point"], r["verdict"]) for r in result.rows]
    assert json.loads((tmp_path / "sweep.json").read_text()) == result.rows
    with np.load(tmp_path / "selections.npz", allow_pickle=False) as npz:
        assert set(npz.files) == {r["point"] for r in result.rows}


def test_overlapping_points_show_their_jaccard(digits: ImageDataset) -> None:
    config = SweepConfig(methods=["el2n", "forgetting", "aum"], keeps=[0.2, 0.4], base=replace(HARDEST, evaluation=None))
    result = run_sweep(digits, config)
    rows = {r["point"]: r for r in result.rows}
    assert len(rows) == 6  # every score keeps a subset of its own
    for keep, matrix in zip(config.keeps, result.report["overlap"], strict=True):
        names = [point_name(m, keep) for m in config.methods]
        assert matrix["keep"] == keep and matrix["points"] == names
        expected = [[jaccard(result.indices[a], result.indices[b]) for b in names] for a in names]
        assert matrix["jaccard"] == expected
        assert np.diag(matrix["jaccard"]).tolist() == [1.0] * 3
        for i, name in enumerate(names):
            others = [j for j in range(3) if j != i]
            closest = max(others, key=lambda j: expected[i][j])
            # The most overlapping other point at the same keep, named; different sets, so less than 1.
            assert rows[name]["overlap_with"] == names[closest]
            assert 0 < rows[name]["overlap"] == expected[i][closest] < 1
            assert rows[name]["verdict"] is None  # nothing evaluated, nothing to judge


def test_points_that_keep_the_same_subset_are_one_row_evaluated_once(
    digits: ImageDataset, tmp_path: Path, counted, score_blind
) -> None:
    config = SweepConfig(methods=["el2n", "forgetting"], keeps=[0.1, 0.3], base=HARDEST)
    result = run_sweep(digits, config)
    # 2 distinct subsets (not 4), their 2 random subsets, 1 full.
    assert counted["evaluations"] == 2 + 2 + 1
    assert [r["point"] for r in result.rows] == ["el2n@0.1, forgetting@0.1", "el2n@0.3, forgetting@0.3"]
    assert [(r["methods"], r["keeps"]) for r in result.rows] == [(["el2n", "forgetting"], [k, k]) for k in config.keeps]
    assert [r["verdict"] in VERDICTS for r in result.rows] == [True, True]
    # Alone at its keep: nothing else to overlap with.
    assert [(r["overlap"], r["overlap_with"]) for r in result.rows] == [(None, None)] * 2
    assert [m["jaccard"] for m in result.report["overlap"]] == [[[1.0, 1.0], [1.0, 1.0]]] * 2
    assert [e["point"] for e in result.report["evaluations"]] == [r["point"] for r in result.rows]
    assert [(p["point"], p["row"]) for p in result.report["points"]] == [
        ("el2n@0.1", 0), ("el2n@0.3", 1), ("forgetting@0.1", 0), ("forgetting@0.3", 1)]
    result.write(tmp_path)
    with np.load(tmp_path / "selections.npz", allow_pickle=False) as npz:  # every point's selection is still there
        assert set(npz.files) == {"el2n@0.1", "el2n@0.3", "forgetting@0.1", "forgetting@0.3"}
        np.testing.assert_array_equal(np.sort(npz["el2n@0.1"]), np.sort(npz["forgetting@0.1"]))
    with open(tmp_path / "sweep.csv") as f:
        assert [r["methods"] for r in csv.DictReader(f)] == ["el2n forgetting"] * 2


def test_the_same_samples_under_other_weights_are_another_subset(digits: ImageDataset, score_blind) -> None:
    base = replace(HARDEST, selection=SelectionConfig(mode="hardest", weights=True), evaluation=None)
    result = run_sweep(digits, SweepConfig(methods=["el2n", "forgetting"], keeps=[0.2], base=base))
    # Each score weighs the kept samples by its own importance: two training sets of the same samples.
    assert [r["point"] for r in result.rows] == ["el2n@0.2", "forgetting@0.2"]
    assert [(r["overlap"], r["overlap_with"]) for r in result.rows] == [(1.0, "forgetting@0.2"), (1.0, "el2n@0.2")]


def test_the_cli_sweep_table_says_same_subset_and_gives_verdicts(tmp_path: Path) -> None:
    # Prototypes read the proxy's features, not the score: both scores keep the same samples.
    cmd = [sys.executable, "-m", "cli", "prune", "builtin:digits", "--method", "el2n", "--method", "forgetting",
           "--keep", "0.1", "--mode", "prototypes", "--epochs", "1", "--proxy-width", "8", "--eval-seeds", "2",
           "--eval-epochs", "1", "--eval-width", "8", "--no-full", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "el2n, forgetting @ 10%: same subset" in proc.stdout
    assert any(verdict in proc.stdout for verdict in VERDICTS), proc.stdout
    rows = json.loads((tmp_path / "sweep.json").read_text())
    assert [(r["point"], r["verdict"] in VERDICTS) for r in rows] == [("el2n@0.1, forgetting@0.1", True)]


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

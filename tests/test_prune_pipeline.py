import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.data.dataset import ImageDataset
from engine.evaluate.verdict import describe
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import EvalConfig, ProxyConfig, PruneConfig
from engine.select.config import SelectionConfig
from tests.service_fixtures import PRUNE_ARTIFACTS

TINY_PROXY = ProxyConfig(width=8, epochs=3)
TINY_EVAL = EvalConfig(seeds=2, epochs=3, width=8)


def test_run_prune_outputs_and_report(digits: ImageDataset, tmp_path: Path) -> None:
    cfg = PruneConfig(method="forgetting", selection=SelectionConfig(keep=0.2, weights=True), proxy=TINY_PROXY, evaluation=TINY_EVAL, seed=5)
    result = run_prune(digits, cfg)
    n = len(digits.y_train)
    assert result.scores.shape == (n,) and result.ranking.shape == (n,)
    assert sorted(result.ranking.tolist()) == list(range(n))
    assert len(result.indices) == round(0.2 * n) and len(set(result.indices.tolist())) == len(result.indices)
    assert result.weights is not None and result.weights.shape == result.indices.shape
    report = result.report
    assert report["seed"] == 5 and report["config"]["method"] == "forgetting"
    assert report["versions"]["torch"] and report["device"] == "cpu"
    assert sum(report["selection"]["per_class_counts"]) == len(result.indices)
    assert report["selection"]["class_kl"] < 1e-3
    ev = report["evaluation"]
    for name in ("subset", "random", "full"):
        assert 0.0 <= ev[name]["mean"] <= 1.0 and len(ev[name]["per_seed"]) == 2
        assert len(ev[name]["per_class"]) == digits.num_classes
    assert ev["random"]["train_size"] == ev["subset"]["train_size"] == len(result.indices)
    assert ev["full"]["mean"] > 0.5
    written = {p.name for p in result.write(tmp_path, digits)}
    assert written == PRUNE_ARTIFACTS | {"weights.npy"}
    np.testing.assert_array_equal(np.load(tmp_path / "indices.npy", allow_pickle=False), result.indices)
    json.loads((tmp_path / "report.json").read_text())


def test_same_seed_same_result_and_cross_arch(digits: ImageDataset) -> None:
    cfg = PruneConfig(method="aum", selection=SelectionConfig(keep=0.1), proxy=TINY_PROXY,
                      evaluation=EvalConfig(seeds=1, epochs=1, width=8, full_data=False, archs=["mlp"]), seed=2)
    a, b = run_prune(digits, cfg), run_prune(digits, cfg)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.report["evaluation"]["subset"]["mean"] == b.report["evaluation"]["subset"]["mean"]
    assert set(a.report["evaluation"]["cross_arch"]["mlp"]) == {"subset", "random"}


def test_cli_prune_writes_the_documented_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cli", "prune", "builtin:digits", "--method", "el2n", "--keep", "0.25",
           "--window", "0.5:0.75", "--epochs", "2", "--proxy-width", "8", "--eval-seeds", "1", "--eval-epochs", "1",
           "--eval-width", "8", "--no-full", "--cross-arch", "mlp", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The files a service job stores for the same job (tests/service_fixtures.py), from the same code.
    assert {p.name for p in out.iterdir() if p.is_file()} == PRUNE_ARTIFACTS
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["selection"]["mode"] == "window"
    assert report["config"]["selection"]["window"] == [0.5, 0.75]
    scores = np.load(out / "scores.npy")
    ranking = np.load(out / "ranking.npy")
    assert np.all(np.diff(scores[ranking]) <= 0)
    assert "Test accuracy" in proc.stdout and "subset [mlp]" in proc.stdout
    # Each gain over random with its verdict: one evaluation seed cannot tell noise from a gain.
    gain = report["gain_over_random"]
    assert f"Subset on convnet: {describe(gain['verdict'])}\n" in proc.stdout
    assert f"Subset on mlp: {describe(gain['cross_arch']['mlp']['verdict'])}\n" in proc.stdout
    assert proc.stdout.count("not enough seeds to tell (1 seed)") == 2


def test_cli_reuses_a_recorded_proxy_run_from_its_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    base = [sys.executable, "-m", "cli", "prune", "builtin:digits", "--epochs", "2", "--proxy-width", "8", "--eval-seeds", "0",
            "--proxy-runs", str(runs)]
    reports = []
    for method, keep in (("el2n", "0.2"), ("forgetting", "0.4")):
        out = tmp_path / method
        proc = subprocess.run([*base, "--method", method, "--keep", keep, "--out", str(out)], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        reports.append(json.loads((out / "report.json").read_text()))
    assert [r["proxy_run"]["reused"] for r in reports] == [False, True]
    assert reports[0]["proxy_run"]["key"] == reports[1]["proxy_run"]["key"]
    # One run, with its recorded hash and its claim's lock file beside it.
    assert sorted(p.suffix for p in runs.iterdir()) == [".lock", ".safetensors", ".sha256"]


def test_cli_runs_a_sweep_when_given_several_scores_or_keeps(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    # A policy that reads the score, so each point keeps a subset of its own (tests/test_sweep.py folds equal ones).
    cmd = [sys.executable, "-m", "cli", "prune", "builtin:digits", "--method", "el2n", "--method", "aum", "--keep", "0.1",
           "--keep", "0.3", "--mode", "hardest", "--epochs", "2", "--proxy-width", "8", "--eval-seeds", "1", "--eval-epochs", "1", "--eval-width", "8",
           "--no-full", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "160"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in out.iterdir() if p.is_file()} == {"sweep.json", "sweep.csv", "selections.npz", "curve.png",
                                                              "report.json"}
    rows = json.loads((out / "sweep.json").read_text())
    assert [r["point"] for r in rows] == ["el2n@0.1", "el2n@0.3", "aum@0.1", "aum@0.3"]
    assert "Sweep" in proc.stdout and "aum" in proc.stdout
    refused = subprocess.run([*cmd[:-2], "--score-param", "epoch=1", "--out", str(tmp_path / "x")], capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 2 and "--score-param" in refused.stdout


def test_cli_reports_bad_input_with_a_hint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(3, np.int64))
    proc = subprocess.run([sys.executable, "-m", "cli", "prune", str(bad), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error" in proc.stdout


def test_cli_help_documents_every_option() -> None:
    proc = subprocess.run([sys.executable, "-m", "cli", "prune", "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    for option in ("--method", "--keep", "--class-balanced", "--global", "--window", "--proxy-model", "--epochs", "--eval-seeds", "--out"):
        assert option in proc.stdout

"""bench.distill: the command runs every method end to end (smoke scale, real MNIST), and its full
scale carries the papers' settings for a GPU run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.distill import FULL_ITERATIONS, METHODS, SCALES, TITLES, markdown, method_config
from bench.distill_trials import TRIALS
from engine.distill.gradient_config import loop_lengths
from tests.bench_command import run_bench


@pytest.mark.slow
def test_every_method_runs_through_the_bench_command(shared_datasets: Path, tmp_path: Path) -> None:
    run_bench("distill", "--scale", "smoke", "--datasets", "mnist", "--ipcs", "1", "--parts", "tables,labels",
              "--label-ipc", "1", "--label-expert-epochs", "3,5", shared_datasets=shared_datasets, results=tmp_path)
    payload = json.loads((tmp_path / "distill-smoke.json").read_text())
    res = payload["tables"]["results"]["mnist"]
    rows = {row["method"]: row for row in res["rows"]}
    assert set(rows) == set(METHODS)
    for row in rows.values():
        assert len(row["accuracy"]) == 1 and 0.0 <= row["accuracy"][0] <= 1.0
        assert row["wall_seconds"] > 0 and row["iterations"] >= 1
    # Experts are trained once per expert setting and reused: MTT, DATM-style and Prune-then-distill
    # share one set (one of them trains it), PAD's scheduler makes its own.
    plain = [rows[m]["experts_reused"] for m in ("mtt", "datm", "ptd")]
    assert sorted(plain) == [False, True, True] and rows["pad"]["experts_reused"] is False
    assert rows["dm"]["experts_reused"] is None
    assert len(res["random"]["1"]["accuracy"]) == 1 and res["full"]["train_samples"] == 200
    # Rows start as a user's job does (init: auto), and each IPC has the default prune job's coreset beside them.
    assert {m: rows[m]["init"] for m in ("dm", "datm", "mtt", "ptd")} == {
        "dm": "coreset", "datm": "real", "mtt": "real", "ptd": "pruned"}
    assert len(res["coreset"]["1"]["accuracy"]) == 1 and res["coreset"]["1"]["selection"]
    table = (tmp_path / "distill-smoke.md").read_text()
    for title in [*TITLES.values(), "random real", "coreset (default prune job)"]:
        assert f"| {title} | 1 |" in table
    assert "| DM | 1 | coreset |" in table
    assert "91.7 ± 0.5" in table  # DC's published MNIST IPC 1 figure beside our row

    labels = {(row["method"], row["expert_train_epochs"]): row for row in payload["labels"]["rows"]}
    assert set(labels) == {(m, e) for m in ("mtt", "datm", "pad") for e in (3, 5)}
    for (method, epochs), row in labels.items():
        assert (row["label_model"] is None) == (method == "mtt")
        if row["label_model"] is not None:
            assert row["label_model"]["epoch"] == epochs and 0.0 <= row["label_model"]["test_accuracy"] <= 1.0
    # MTT starts no later than max_start_epoch, where longer experts of the same seeds follow the same
    # trajectory: the two runs must agree exactly (the result is a function of seed and config).
    assert labels["mtt", 3]["accuracy"] == labels["mtt", 5]["accuracy"]
    assert "### Soft labels and their label model (IPC 1)" in table and "Experts of 5 instead of 3 epochs" in table

    # The trials of issue 34.6 pair with the tables just written.
    run_bench("distill_trials", "--scale", "smoke", "--datasets", "mnist", "--ipcs", "1", "--methods", "dm,mtt",
              "--job-iterations", "3", shared_datasets=shared_datasets, results=tmp_path)
    trials = {(row["method"], row["variant"]): row
              for row in json.loads((tmp_path / "distill-trials-smoke.json").read_text())["rows"]}
    assert set(trials) == {("dm", t.name) for t in TRIALS["dm"]} | {("mtt", "coreset start")}
    assert trials["dm", "the default job"]["iterations"] == 3 and trials["dm", "the default job"]["init"] == "real"
    start = trials["mtt", "coreset start"]
    assert start["reference"]["accuracy"] == rows["mtt"]["accuracy"]  # the tables' row of its day, kept with it
    assert start["init"] == "coreset" and len(start["coreset"]["per_seed"]) == 1
    lines = (tmp_path / "distill-trials-smoke.md").read_text()
    assert "| DM | 1 | the default job, coreset start | 3 |" in lines and "not enough seeds to tell" in lines


@pytest.mark.parametrize("ipc", [1, 10, 50])
def test_full_scale_carries_the_papers_settings(ipc: int) -> None:
    full = SCALES["full"]
    assert (full.per_class, full.width, full.seeds, full.eval_max_epochs) == (None, 128, 5, 1000)
    dc = method_config("dc", ipc, full, FULL_ITERATIONS["gradient"], 10, "auto")
    outer, _ = loop_lengths(ipc)
    assert dc.iterations == math.ceil(1000 / outer) and dc.options["gradient"].batch_real == 256
    dm = method_config("dm", ipc, full, FULL_ITERATIONS["distribution"], 10, "auto")
    assert dm.iterations == 20_000 and dm.options["distribution"].lr_images == 1.0 and dm.options["distribution"].batch_real == 256
    mtt = method_config("mtt", ipc, full, FULL_ITERATIONS["trajectory"], 10, "auto")
    assert mtt.iterations == 5000 and mtt.options["trajectory"].syn_steps == 50 and mtt.options["trajectory"].expert_epochs == 2
    assert mtt.options["trajectory"].max_start_epoch == 20 and mtt.options["trajectory"].batch_syn == ipc * 10
    assert (mtt.options["experts"].num_experts, mtt.options["experts"].epochs) == (100, 50)
    for config in (dc, dm, mtt):
        # "auto": the GPU wherever one is present (engine.device).
        assert config.width == 128 and config.device == "auto"
        assert config.evaluation is not None and (config.evaluation.epochs, config.evaluation.seeds) == (1000, 5)


def _row(method: str, accuracy: list[float]) -> dict:
    return {"ipc": 1, "method": method, "accuracy": accuracy, "mean": sum(accuracy) / len(accuracy),
            "wall_seconds": 1.0, "seconds_per_iteration": 0.1, "peak_mb": 1.0}


def test_a_replaced_row_stays_beside_its_successor() -> None:
    res = {"full": {"train_samples": 10, "accuracy": [0.9], "epochs": 1}, "random": {"1": {"accuracy": [0.5], "mean": 0.5}},
           "rows": [_row("pad", [0.7]), _row("dm", [0.6])], "rows_before": [_row("pad", [0.65])]}
    tables = {"commands": ["c"], "budget": 1, "jobs": 1, "threads_per_run": 1, "ipcs": [1], "methods": ["dm", "pad"],
              "results": {"mnist": res}}
    table = markdown({"scale_settings": {"width": 8}, "published": {}, "tables": tables}, "smoke")
    assert "| PAD | 1 | 65.00 ± 0.00 | 70.00 ± 0.00 |" in table
    assert "| DM | 1 | 60.00 ± 0.00 | 70.00" not in table  # only replaced rows are listed

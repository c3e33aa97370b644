"""Distilled vs pruned vs random at the same size (issue 34.5): a distill job's report carries the coreset a
default prune job keeps at its IPC, under the same evaluation protocol and seeds, and a recommendation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.data.dataset import ImageDataset
from engine.distill.init import fit_per_class
from engine.distill.start import resolve_start
from engine.distill.registry import get_method, method_names  # noqa: F401 - the registry loads the methods
from engine.pipeline.coreset_row import comparison, coreset_config
from engine.pipeline.distill import run_distill
from engine.pipeline.distill_config import DistillConfig, DistillEvalConfig, InitConfig
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import ProxyConfig
from engine.store import LocalFileStore

PROXY = ProxyConfig(width=8, epochs=2)
EVAL = DistillEvalConfig(seeds=2, epochs=5, width=8, full_data=False)


def _config(**changes: object) -> DistillConfig:
    base: dict = {"method": "dm", "ipc": 2, "iterations": 3, "width": 8, "device": "cpu", "evaluation": EVAL,
                  "init": InitConfig(proxy=PROXY)}
    return DistillConfig(**(base | changes))


def test_the_report_has_the_coreset_row_and_a_recommendation(digits: ImageDataset, tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    config = _config()
    # A prune job with the coreset's settings ran before: its stored proxy run serves the coreset row.
    run_prune(digits, coreset_config(config, digits.num_classes), proxy_runs=store)
    report = run_distill(digits, config, proxy_runs=store).report
    coreset = report["coreset"]
    assert coreset["selection"]["kept"] == 2 * digits.num_classes and len(coreset["indices"]) == 20
    assert coreset["proxy_run"]["reused"] is True and coreset["score"]["requested"] == "auto"
    evaluation = report["evaluation"]
    assert len(evaluation["coreset"]["per_seed"]) == 2 and evaluation["coreset"]["train_size"] == 20
    versus = report["comparison"]["synthetic_over_coreset"]
    assert versus["per_seed"] == pytest.approx(
        [s - c for s, c in zip(evaluation["synthetic"]["per_seed"], evaluation["coreset"]["per_seed"], strict=True)]
    )
    assert versus["verdict"]["seeds"] == 2 and "coreset_over_random" in report["comparison"]
    assert report["comparison"]["recommendation"].startswith("at IPC 2 on this data")


def test_a_coreset_start_is_the_coreset_of_the_row_selected_once(digits: ImageDataset, trainings: list[str]) -> None:
    report = run_distill(digits, _config(init=InitConfig(mode="coreset", proxy=PROXY))).report
    coreset, start = report["coreset"]["indices"], report["init"]["indices"]
    assert report["kind"] == "distill" and report["init"]["mode"] == "coreset"
    # Class-major, two per class, every one a coreset sample where its class kept two.
    assert [int(digits.y_train[i]) for i in start] == [c for c in range(10) for _ in range(2)]
    counts = report["coreset"]["selection"]["per_class_counts"]
    assert {i for i in start if counts[int(digits.y_train[i])] >= 2} <= set(coreset)
    assert sum(counts) == 20 and trainings.count("proxy_training") == 1  # one selection for the start and the row


def test_fit_per_class_trims_and_tops_up_imbalanced_coresets() -> None:
    y = np.array([0] * 6 + [1] * 6)
    picked = fit_per_class(np.array([0, 1, 2, 6]), y, 2, 2, seed=0)
    assert list(picked[:2]) == [0, 1] and picked[2] == 6 and y[picked[3]] == 1 and picked[3] != 6


def test_auto_starts_dm_from_the_coreset_up_to_ipc_10_and_says_why(digits: ImageDataset, trainings: list[str]) -> None:
    report = run_distill(digits, _config()).report
    assert report["init"]["mode"] == "auto" and report["init"]["start"] == "coreset"
    assert "up to IPC 10" in report["init"]["reason"] and report["resolved"]["start"] == "coreset"
    assert set(report["init"]["indices"]) <= set(report["coreset"]["indices"])
    assert trainings.count("proxy_training") == 1


@pytest.mark.parametrize(("method", "ipc", "start"), [
    ("dm", 1, "coreset"), ("dm", 10, "coreset"), ("dm", 11, "real"), ("dm", 50, "real"), ("dc", 10, "coreset"),
    ("dsa", 10, "coreset"), ("dsa", 50, "real"), ("dc", 1, "coreset"), ("dsa", 1, "coreset"), ("datm", 1, "real"),
    ("datm", 2, "coreset"), ("datm", 10, "coreset"), ("datm", 50, "real"), ("mtt", 10, "real"), ("pad", 10, "real"),
])
def test_auto_resolves_by_the_method_s_measured_limit(method: str, ipc: int, start: str) -> None:
    assert resolve_start("auto", get_method(method), ipc)[0] == start
    assert resolve_start("noise", get_method(method), ipc) == ("noise", "named by the job")


def test_the_row_can_be_turned_off(digits: ImageDataset) -> None:
    report = run_distill(digits, _config(init=InitConfig(mode="real", proxy=PROXY),
                                         evaluation=DistillEvalConfig(seeds=1, epochs=2, width=8, full_data=False,
                                                                      compare_coreset=False))).report
    assert "coreset" not in report and "comparison" not in report and "coreset" not in report["evaluation"]


@pytest.mark.parametrize(("synthetic", "coreset", "says"), [
    ([0.60, 0.61, 0.62], [0.70, 0.72, 0.71], "the pruned coreset is worth more than the distilled set"),
    ([0.80, 0.81, 0.82], [0.70, 0.72, 0.71], "the distilled set is worth more than the pruned coreset"),
    ([0.70, 0.60, 0.75], [0.65, 0.72, 0.69], "the distilled set and the pruned coreset cannot be told apart"),
])
def test_the_recommendation_follows_the_paired_verdict(synthetic: list[float], coreset: list[float], says: str) -> None:
    evaluation = {"synthetic": {"per_seed": synthetic}, "coreset": {"per_seed": coreset},
                  "random": {"per_seed": [0.5, 0.5, 0.5]}}
    line = comparison(evaluation, ipc=10)["recommendation"]
    assert line.startswith(f"at IPC 10 on this data {says}") and "random real images" in line


@pytest.mark.parametrize(("method", "ipc", "soft"), [
    ("datm", 1, True), ("datm", 10, True), ("datm", 11, False), ("datm", 50, False), ("pad", 10, True),
    ("pad", 50, False), ("mtt", 10, False), ("dm", 10, False),
])
def test_soft_labels_by_default_only_up_to_the_method_s_measured_ipc(method: str, ipc: int, soft: bool) -> None:
    assert get_method(method).default_soft_labels(ipc) is soft

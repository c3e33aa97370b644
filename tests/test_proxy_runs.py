"""Recorded proxy runs: one run serves every score, selection and keep of later jobs on the same data and proxy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.data.dataset import ImageDataset
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import ProxyConfig, PruneConfig
from engine.pipeline.proxy_runs import dynamics_scores, recorded_params
from engine.progress import Tracker
from engine.select.config import SelectionConfig
from engine.store import LocalFileStore

PROXY = ProxyConfig(width=8, epochs=4)


def _job(method: str, keep: float, **selection) -> PruneConfig:
    return PruneConfig(method=method, selection=SelectionConfig(keep=keep, **selection), proxy=PROXY,
                       evaluation=None, seed=3)


def test_a_second_job_with_another_score_and_keep_trains_nothing_and_selects_as_a_fresh_job(
    digits: ImageDataset, tmp_path: Path, trainings: list[str]
) -> None:
    store = LocalFileStore(tmp_path / "runs")
    first = run_prune(digits, _job("el2n", 0.3), proxy_runs=store)
    assert first.report["proxy_run"]["reused"] is False
    assert set(first.report["proxy_run"]["scores"]) == set(dynamics_scores())
    trained = len(trainings)
    assert trained >= 1

    for method, keep, selection in [("forgetting", 0.1, {"mode": "hardest"}), ("aum", 0.5, {}), ("tdds", 0.2, {}),
                                    ("random", 0.1, {})]:
        reused = run_prune(digits, _job(method, keep, **selection), proxy_runs=store)
        assert len(trainings) == trained, f"{method} trained a proxy again"
        assert reused.report["proxy_run"]["reused"] is True
        assert reused.report["proxy_run"]["key"] == first.report["proxy_run"]["key"]
        # The same subset a job without the store selects (its own run records only its score).
        fresh = run_prune(digits, _job(method, keep, **selection))
        np.testing.assert_allclose(reused.scores, fresh.scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(np.sort(reused.indices), np.sort(fresh.indices))
        trained = len(trainings)


def test_what_the_run_depends_on_is_in_its_key(digits: ImageDataset, tmp_path: Path, trainings: list[str]) -> None:
    store = LocalFileStore(tmp_path / "runs")
    base = run_prune(digits, _job("tdds", 0.2), proxy_runs=store).report["proxy_run"]["key"]
    variants = [
        replace(_job("tdds", 0.2), seed=4),
        replace(_job("tdds", 0.2), proxy=replace(PROXY, lr=PROXY.lr / 2)),
        replace(_job("tdds", 0.2), score_params={"beta": 0.5}),
    ]
    for config in variants:
        run = run_prune(digits, config, proxy_runs=store).report["proxy_run"]
        assert run["reused"] is False and run["key"] != base, config
    # Parameters are keyed as the run resolves them: naming a default is the default's run.
    assert run_prune(digits, replace(_job("tdds", 0.2), score_params={"window": 3}), proxy_runs=store).report[
        "proxy_run"]["key"] == base
    other_data = digits.with_train_subset(np.arange(len(digits.y_train) - 10))
    assert run_prune(other_data, _job("tdds", 0.2), proxy_runs=store).report["proxy_run"]["reused"] is False


def test_a_job_s_own_score_parameters_are_recorded_and_reported(digits: ImageDataset, tmp_path: Path) -> None:
    result = run_prune(digits, replace(_job("tdds", 0.2), score_params={"beta": 0.5}), proxy_runs=LocalFileStore(tmp_path))
    assert result.report["score"]["params"]["beta"] == 0.5
    params = recorded_params("tdds", {"beta": 0.5}, PROXY.epochs)
    assert params["tdds"]["beta"] == 0.5 and params["dyn_unc"] == recorded_params("el2n", {}, PROXY.epochs)["dyn_unc"]


def test_a_score_whose_defaults_cannot_run_on_the_proxy_is_left_out_not_failed() -> None:
    # Dyn-Unc and TDDS need windows of at least a few epochs; a 2-epoch proxy leaves them out for an EL2N job.
    short = recorded_params("el2n", {}, 2)
    assert "el2n" in short and set(short) < set(dynamics_scores())


def test_a_stored_file_that_is_not_a_proxy_run_is_discarded_and_trained_again(
    digits: ImageDataset, tmp_path: Path, trainings: list[str]
) -> None:
    from safetensors.torch import save_file
    import torch

    store = LocalFileStore(tmp_path)
    first = run_prune(digits, _job("el2n", 0.3), proxy_runs=store)
    key = first.report["proxy_run"]["key"]
    # Another file under the key, with its hash recorded as if stored properly: only the format check can tell.
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={"format": "something-else"})
    store.put(key, tmp_path / "other.safetensors")
    trained = len(trainings)
    warnings: list[tuple[str, str]] = []
    again = run_prune(digits, _job("el2n", 0.3), proxy_runs=store, tracker=Tracker(on_warning=lambda *w: warnings.append(w)))
    assert again.report["proxy_run"]["reused"] is False and len(trainings) > trained
    assert [stage for stage, _ in warnings] == ["proxy_training"] and key in warnings[0][1]
    np.testing.assert_array_equal(again.indices, first.indices)

"""Reuse that checks what it reuses (issue 33), in the engine: baselines keyed by everything they measured,
stored files and cache entries verified before use, and one trainer per stored run."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.data.cache import DecodedCache, cache_key
from engine.data.dataset import ImageDataset, SplitInfo
from engine.distill.experts import Trajectories, obtain_experts
from engine.distill.experts_config import ExpertConfig
from engine.evaluate.baselines import MemoryBaselines
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import EvalConfig, ProxyConfig, PruneConfig
from engine.progress import CancelledError, Tracker
from engine.select.config import SelectionConfig
from engine.store import LocalFileStore, StoredFileDamaged, reuse_or_compute

PROXY = ProxyConfig(width=8, epochs=2)


def _job(**changes: object) -> PruneConfig:
    config = PruneConfig(method="el2n", selection=SelectionConfig(keep=0.2), proxy=PROXY, seed=5,
                         evaluation=EvalConfig(seeds=1, epochs=1, width=8, compare_random=True, full_data=True))
    return replace(config, **changes)


def test_another_test_set_is_another_baseline(digits: ImageDataset) -> None:
    relabelled = replace(digits, y_test=(digits.y_test + 1) % digits.num_classes)
    assert relabelled.train_fingerprint == digits.train_fingerprint
    fingerprints = {d.evaluation_fingerprint for d in (
        digits, relabelled, replace(digits, x_test=digits.x_test[::-1].copy()),
        replace(digits, classes=[f"c{c}" for c in digits.classes]), replace(digits, split=SplitInfo("held_out", 0.2, 1)),
        replace(digits, mean=(0.5,)),
    )}
    assert len(fingerprints) == 6

    store = MemoryBaselines()
    first = run_prune(digits, _job(), baselines=store).report["evaluation"]
    assert "reused" not in first["random"] and "reused" not in first["full"]
    again = run_prune(digits, _job(), baselines=store).report["evaluation"]
    assert again["random"]["reused"] and again["full"]["reused"]
    other = run_prune(relabelled, _job(), baselines=store).report["evaluation"]
    assert "reused" not in other["random"] and "reused" not in other["full"]
    # Measured on its own test labels: every digit is now called the next one, which a model cannot learn.
    assert other["full"]["mean"] < first["full"]["mean"] / 2


def test_a_damaged_stored_file_is_discarded_by_its_hash_and_computed_again(
    digits: ImageDataset, tmp_path: Path, trainings: list[str]
) -> None:
    store = LocalFileStore(tmp_path)
    first = run_prune(digits, _job(evaluation=None), proxy_runs=store)
    key = first.report["proxy_run"]["key"]
    path = tmp_path / f"{key}.safetensors"
    (tmp_path / "good").write_bytes(path.read_bytes())
    damaged = bytearray(path.read_bytes())
    damaged[20] ^= 0xFF  # inside the JSON header: safetensors can no longer parse it
    path.write_bytes(bytes(damaged))
    with pytest.raises(StoredFileDamaged, match=key):
        store.get(key, tmp_path / "copy.safetensors")
    assert not path.exists()  # discarded

    store.put(key, tmp_path / "good")
    path.write_bytes(bytes(damaged))  # damaged again, now found by the job
    trained, warnings = len(trainings), []
    again = run_prune(digits, _job(evaluation=None), proxy_runs=store,
                      tracker=Tracker(on_warning=lambda stage, message: warnings.append(message)))
    assert again.report["proxy_run"]["reused"] is False and len(trainings) > trained
    assert len(warnings) == 1 and key in warnings[0] and "sha256" in warnings[0]
    np.testing.assert_array_equal(again.indices, first.indices)
    assert run_prune(digits, _job(evaluation=None), proxy_runs=store).report["proxy_run"]["reused"] is True


def test_a_stored_run_of_the_wrong_length_is_found_by_its_shapes(
    digits: ImageDataset, tmp_path: Path, trainings: list[str]
) -> None:
    store = LocalFileStore(tmp_path)
    first = run_prune(digits, _job(evaluation=None), proxy_runs=store)
    key = first.report["proxy_run"]["key"]
    path = tmp_path / f"{key}.safetensors"
    # Too-short arrays under a hash that matches them (stored through the store): the hash cannot tell.
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    short = {name: tensor[:50].contiguous() for name, tensor in load_file(str(path)).items()}
    save_file(short, str(tmp_path / "short.safetensors"), metadata=metadata)
    store.put(key, tmp_path / "short.safetensors")
    warnings: list[str] = []
    again = run_prune(digits, _job(evaluation=None), proxy_runs=store,
                      tracker=Tracker(on_warning=lambda stage, message: warnings.append(message)))
    assert again.report["proxy_run"]["reused"] is False
    assert len(warnings) == 1 and key in warnings[0] and f"({len(digits.y_train)})" in warnings[0]
    np.testing.assert_array_equal(again.indices, first.indices)


def test_a_damaged_expert_set_is_trained_again(digits: ImageDataset, tmp_path: Path) -> None:
    from engine.distill.base import RealData
    from engine.models import create_model

    x, y = digits.train_tensors()
    real = RealData(x, y, digits.num_classes)
    config = ExpertConfig(num_experts=1, epochs=1, batch_size=256, augment=False)

    def new_model() -> torch.nn.Module:
        return create_model("convnet", channels=1, num_classes=10, image_size=8, width=4)

    store = LocalFileStore(tmp_path)
    trained, reused = obtain_experts(store, "experts-k", real, new_model, config, seed=0)
    assert not reused
    assert obtain_experts(store, "experts-k", real, new_model, config, seed=0)[1]
    # A well-formed set of the wrong shape, stored with its hash: found by the shape check.
    Trajectories(trained.params[:, :1].contiguous()).save(tmp_path / "wrong.safetensors")
    store.put("experts-k", tmp_path / "wrong.safetensors")
    warnings: list[str] = []
    again, reused = obtain_experts(store, "experts-k", real, new_model, config, seed=0,
                                   tracker=Tracker(on_warning=lambda stage, message: warnings.append(message)))
    assert not reused and again.params.shape == trained.params.shape and "experts-k" in warnings[0]


def test_concurrent_jobs_needing_one_run_train_it_once(
    digits: ImageDataset, tmp_path: Path, trainings: list[str]
) -> None:
    store = LocalFileStore(tmp_path)
    results: list[dict] = []

    def job() -> None:
        results.append(run_prune(digits, _job(evaluation=None), proxy_runs=store).report["proxy_run"])

    threads = [threading.Thread(target=job) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["reused"] for r in results) == [False, True, True, True]
    # One proxy run (EL2N trains a few seeds), each trained once.
    assert trainings and len(trainings) == len(set(trainings)) and len({r["key"] for r in results}) == 1


def test_a_waiting_job_can_be_cancelled(digits: ImageDataset, tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    key = "proxy-held"
    with store.claim(key, lambda who: None):
        waits: list[str] = []

        def waiting(who: str) -> None:
            waits.append(who)
            if len(waits) == 2:
                raise CancelledError("cancelled by request")

        with pytest.raises(CancelledError), store.claim(key, waiting):
            pass
    assert waits and key in waits[0]
    with store.claim(key, waiting):  # released: taken at once
        pass


def test_a_long_wait_is_one_event_and_cancellation_is_still_polled(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    events: list[str] = []
    polls = [0]

    def should_cancel() -> bool:
        polls[0] += 1
        return polls[0] > 6

    tracker = Tracker(on_progress=lambda event: events.append(event.message), should_cancel=should_cancel)
    with store.claim("proxy-busy", lambda who: None), pytest.raises(CancelledError):
        reuse_or_compute(store, "proxy-busy", tmp_path / "out", lambda path: 0, lambda path: 0, tracker, "proxy")
    assert polls[0] == 7  # every poll checked cancellation
    assert events == ["waiting: another process is computing proxy-busy"]  # said once, not once per poll


def _entry(cache: DecodedCache, key: str) -> Path:
    return cache.root / f"{key}.safetensors"


def test_a_cache_entry_whose_arrays_changed_is_decoded_again(digits: ImageDataset, tmp_path: Path) -> None:
    cache = DecodedCache(tmp_path, max_bytes=10**9)
    key = cache_key(digits.content_hash)
    cache.get_or_load(key, lambda: digits)
    from safetensors import safe_open

    with safe_open(str(_entry(cache, key)), framework="pt") as f:
        metadata = f.metadata()
    arrays = load_file(str(_entry(cache, key)))
    arrays["y_train"] = torch.zeros_like(arrays["y_train"])  # every label 0, header kept as it was
    save_file(arrays, str(_entry(cache, key)), metadata=metadata)
    served = cache.get_or_load(key, lambda: digits)
    np.testing.assert_array_equal(served.y_train, digits.y_train)
    assert (cache.hits, cache.misses) == (0, 2)
    assert cache.get_or_load(key, lambda: digits) is not None and cache.hits == 1  # the fresh entry is trusted


def test_purge_deletes_the_entries_of_unregistered_data(digits: ImageDataset, tmp_path: Path) -> None:
    cache = DecodedCache(tmp_path, max_bytes=10**9)
    kept, gone = (replace(digits, content_hash=h) for h in ("kept", "gone"))
    for dataset in (kept, gone):
        cache.get_or_load(cache_key(dataset.content_hash), lambda d=dataset: d)
    (tmp_path / "decoded-junk.safetensors").write_bytes(b"junk")
    asked: list[set[str]] = []

    def registered(contents: set[str]) -> set[str]:
        asked.append(contents)
        return contents & {"kept"}

    assert sorted(cache.purge(registered)) == ["", "gone"]
    assert asked == [{"kept", "gone"}]
    assert [p.stem for p in tmp_path.glob("*.safetensors")] == [cache_key("kept")]


def test_the_cli_prints_the_warning_and_goes_on(tmp_path: Path) -> None:
    import subprocess
    import sys

    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "cli", "prune", "builtin:digits", "--proxy-runs", str(runs), "--epochs", "2",
            "--proxy-width", "8", "--eval-seeds", "0", "--keep", "0.2"]
    first = subprocess.run([*argv, "--out", str(tmp_path / "a")], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    (stored,) = runs.glob("*.safetensors")
    stored.write_bytes(stored.read_bytes()[:-8])  # cut short
    second = subprocess.run([*argv, "--out", str(tmp_path / "b")], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "warning" in second.stdout and stored.stem in second.stdout.replace("\n", "")
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "indices.npy"), np.load(tmp_path / "b" / "indices.npy"))

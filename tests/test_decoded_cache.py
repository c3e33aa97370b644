"""The decoded-dataset cache: a second load of the same content reads the arrays back instead of decoding."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import app.services.decoded as service
from app.core.config import Settings
from engine.data import load_dataset
from engine.data.cache import DecodedCache, cache_key
from engine.data.dataset import ImageDataset
from tests.service_fixtures import (  # noqa: F401 - fixtures
    backend,
    client,
    db,
    random_npz_bytes,
    run_job_in_process,
    settings,
    tiny_prune_spec,
)


def _same(a: ImageDataset, b: ImageDataset) -> None:
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype
    assert (a.classes, a.name, a.format, a.content_hash, a.split, a.mean, a.std) == (
        b.classes, b.name, b.format, b.content_hash, b.split, b.mean, b.std)


def test_a_second_load_is_a_hit_with_the_same_arrays(digits: ImageDataset, tmp_path: Path) -> None:
    cache = DecodedCache(tmp_path, max_bytes=10**9)
    loads = []

    def load() -> ImageDataset:
        loads.append(1)
        return digits

    key = cache_key(digits.content_hash, test_fraction=0.2, split_seed=0)
    first = cache.get_or_load(key, load)
    second = cache.get_or_load(key, load)
    assert len(loads) == 1 and (cache.hits, cache.misses) == (1, 1)
    _same(first, digits)
    _same(second, digits)
    assert cache_key(digits.content_hash, test_fraction=0.3, split_seed=0) != key  # another split is another entry


def test_the_least_recently_used_entries_go_when_the_folder_outgrows_its_bound(digits: ImageDataset, tmp_path: Path) -> None:
    one = sum(getattr(digits, n).nbytes for n in ("x_train", "y_train", "x_test", "y_test"))
    cache = DecodedCache(tmp_path, max_bytes=int(2.5 * one))
    keys = [cache_key(f"content-{i}") for i in range(4)]
    for i, key in enumerate(keys[:2]):
        cache.get_or_load(key, lambda: digits)
        os.utime(tmp_path / f"{key}.safetensors", (1000 + i, 1000 + i))
    cache.get_or_load(keys[0], lambda: digits)  # a hit makes it the most recent
    for key in keys[2:]:
        time.sleep(0.05)  # apart by more than the file system's clock step, so the order is the one intended
        cache.get_or_load(key, lambda: digits)
    assert sorted(p.stem for p in tmp_path.glob("*.safetensors")) == sorted([keys[2], keys[3]])
    assert not list(tmp_path.glob("*.tmp"))


def test_a_damaged_entry_is_decoded_again(digits: ImageDataset, tmp_path: Path) -> None:
    cache = DecodedCache(tmp_path, max_bytes=10**9)
    key = cache_key(digits.content_hash)
    cache.get_or_load(key, lambda: digits)
    (tmp_path / f"{key}.safetensors").write_bytes(b"\0" * 100)
    _same(cache.get_or_load(key, lambda: digits), digits)
    assert cache.misses == 2


def test_jobs_on_one_upload_decode_it_once(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = client.post("/v1/datasets", files={"file": ("mine.npz", random_npz_bytes())}).json()["id"]
    decoded = []

    def counting(*args, **kwargs):
        decoded.append(args[0])
        return load_dataset(*args, **kwargs)

    monkeypatch.setattr(service, "load_dataset", counting)
    for method in ("el2n", "forgetting"):
        job_id = client.post("/v1/jobs", json=tiny_prune_spec(upload, method=method, evaluation=None)).json()["id"]
        run_job_in_process(settings, job_id)
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
    assert len(decoded) == 1
    assert len(list(settings.dataset_cache_root.glob("*.safetensors"))) == 1

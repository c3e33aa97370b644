"""Reuse without wrong answers (issue 33) through the API and the worker's runner, on the embedded default and
on PostgreSQL: baselines of another test set are measured again, a damaged stored run is found by its hash and
trained again with a warning, a rewritten cache entry is not served, and deleting a dataset deletes its
baselines and decoded-cache entries."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.blobstore import LocalBlobStore, sha256_file
from app.core.config import Settings
from app.core.db import Database
from app.models import Baseline, ProxyRun
from app.services import datasets, decoded
from engine.data.cache import DecodedCache, cache_key
from tests.service_fixtures import (  # noqa: F401 - fixtures
    backend,
    client,
    db,
    run_to_success as _run,
    settings,
    tiny_prune_spec,
)


def _npz(y_test: np.ndarray) -> bytes:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (120, 1, 8, 8), dtype=np.uint8)
    y = np.arange(120) % 3
    x[y == 1, :, :4] //= 4  # a learnable difference between the classes
    x[y == 2, :, 4:] //= 4
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y, x_test=x[:30], y_test=y_test)
    return buffer.getvalue()


def _upload(client: TestClient, content: bytes, name: str) -> str:
    response = client.post("/v1/datasets", files={"file": (f"{name}.npz", content)})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _report(client: TestClient, job: dict) -> dict:
    return json.loads(client.get(f"/v1/jobs/{job['id']}/artifacts/report.json").content)


def test_another_test_set_gets_baselines_of_its_own(client: TestClient, settings: Settings, db: Database) -> None:
    truth = np.arange(30) % 3
    first = _upload(client, _npz(truth), "first")
    relabelled = _upload(client, _npz((truth + 1) % 3), "relabelled")  # same training data, other test labels
    spec = {"evaluation": {"seeds": 1, "epochs": 2, "width": 8, "compare_random": True, "full_data": True}}
    one = _report(client, _run(client, settings, tiny_prune_spec(first, **spec)))["evaluation"]
    again = _report(client, _run(client, settings, tiny_prune_spec(first, **spec)))["evaluation"]
    assert again["random"]["reused"] and again["full"]["reused"]  # reuse still works on the same data
    other = _report(client, _run(client, settings, tiny_prune_spec(relabelled, **spec)))["evaluation"]
    assert "reused" not in other["random"] and "reused" not in other["full"]
    assert other["full"]["per_seed"] != one["full"]["per_seed"] or other["random"]["per_seed"] != one["random"]["per_seed"]
    with db.session() as session:
        assert {b.dataset_id for b in session.scalars(select(Baseline))} == {first, relabelled}


def test_a_damaged_proxy_run_is_discarded_trained_again_and_named(
    client: TestClient, settings: Settings, db: Database
) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    first = _run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    (stored,) = client.get("/v1/proxy-runs").json()["data"]
    with db.session() as session:
        blob_key = session.get(ProxyRun, stored["id"]).blob_key
    path = LocalBlobStore(settings.blob_root).path_for(blob_key)
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped bit in the arrays: parses fine, reads wrong
    path.write_bytes(bytes(damaged))

    second = _run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    assert second["metrics"]["proxy_run"] == {"reused": False, "trained_by_job": second["id"]}
    events = client.get(f"/v1/jobs/{second['id']}/events.json", params={"limit": 1000}).json()["data"]
    warnings = [e for e in events if e["type"] == "warning"]
    assert len(warnings) == 1 and stored["id"] in warnings[0]["message"] and warnings[0]["stage"] == "proxy_training"
    assert _report(client, second)["selection"] == _report(client, first)["selection"]
    (replaced,) = client.get("/v1/proxy-runs").json()["data"]
    with db.session() as session:
        row = session.get(ProxyRun, replaced["id"])
        assert sha256_file(LocalBlobStore(settings.blob_root).path_for(row.blob_key)) == row.sha256
    third = _run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    assert third["metrics"]["proxy_run"] == {"reused": True, "trained_by_job": second["id"]}


def test_a_missing_proxy_run_blob_is_trained_again(client: TestClient, settings: Settings, db: Database) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    _run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    with db.session() as session:
        (row,) = session.scalars(select(ProxyRun))
        LocalBlobStore(settings.blob_root).path_for(row.blob_key).unlink()
    second = _run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    assert second["metrics"]["proxy_run"]["reused"] is False


def test_a_rewritten_cache_entry_is_not_served(client: TestClient, settings: Settings, db: Database) -> None:
    dataset_id = _upload(client, _npz(np.arange(30) % 3), "data")
    with db.session() as session:
        record = datasets.get_dataset(session, dataset_id, tenant_id=None)
        store = LocalBlobStore(settings.blob_root)
        loaded = decoded.load_for_job(record, store, settings)
        # Every training label 0, written as the cache writes, so the entry's own hash matches it.
        key = cache_key(record.content_hash, test_fraction=settings.dataset_test_fraction,
                        split_seed=settings.dataset_split_seed)
        cache = DecodedCache(settings.dataset_cache_root, settings.dataset_cache_bytes)
        cache._write(cache.root / f"{key}.safetensors", replace(loaded, y_train=np.zeros_like(loaded.y_train)))
        warnings: list[str] = []
        served = decoded.load_for_job(record, store, settings, warn=warnings.append)
    np.testing.assert_array_equal(served.y_train, loaded.y_train)
    assert served.class_counts() == record.class_counts
    assert len(warnings) == 1 and key in warnings[0] and "class_counts" in warnings[0]


def test_a_damaged_cache_entry_is_decoded_again_with_a_warning_event(
    client: TestClient, settings: Settings, db: Database
) -> None:
    dataset_id = _upload(client, _npz(np.arange(30) % 3), "data")
    first = _run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    (entry,) = settings.dataset_cache_root.glob("*.safetensors")
    damaged = bytearray(entry.read_bytes())
    damaged[-5] ^= 0x01  # one bit of the last array: a valid file that reads other values
    entry.write_bytes(bytes(damaged))
    second = _run(client, settings, tiny_prune_spec(dataset_id, evaluation=None, seed=7))
    events = client.get(f"/v1/jobs/{second['id']}/events.json", params={"limit": 1000}).json()["data"]
    warnings = [e for e in events if e["type"] == "warning"]
    assert len(warnings) == 1 and entry.stem in warnings[0]["message"] and warnings[0]["stage"] == "load"
    assert _report(client, second)["dataset"] == _report(client, first)["dataset"]
    assert entry.read_bytes() != bytes(damaged)  # decoded again and written anew


def test_deleting_a_dataset_deletes_its_baselines_and_its_cache_entries(
    client: TestClient, settings: Settings, db: Database
) -> None:
    kept = _upload(client, _npz(np.arange(30) % 3), "kept")
    deleted = _upload(client, _npz((np.arange(30) + 2) % 3), "deleted")
    for dataset_id in (kept, deleted):
        _run(client, settings, tiny_prune_spec(dataset_id))
    entries = sorted(settings.dataset_cache_root.glob("*.safetensors"))
    assert len(entries) == 2
    with db.session() as session:
        assert {b.dataset_id for b in session.scalars(select(Baseline))} == {kept, deleted}
    assert client.delete(f"/v1/datasets/{deleted}").status_code == 204
    with db.session() as session:
        assert {b.dataset_id for b in session.scalars(select(Baseline))} == {kept}
        # What every worker's reaper pass runs (tests/test_e2e_reuse.py times it on a live worker).
        assert len(decoded.purge_decoded_cache(session, settings)) == 1
    (left,) = settings.dataset_cache_root.glob("*.safetensors")
    assert left in entries
    assert _run(client, settings, tiny_prune_spec(kept))["status"] == "succeeded"


"""Per-tenant limits (429 with a message that says what to free) and deleting finished jobs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import Database
from app.models import Artifact, Job, JobEvent
from app.services.auth import tenant_named
from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    client,
    db,
    other_client,
    random_npz_bytes,
    run_job_in_process,
    settings,
    tiny_prune_spec,
)


def set_limits(db: Database, tenant: str, **limits: int) -> None:
    with db.session() as session:
        row = tenant_named(session, tenant)
        for name, value in limits.items():
            setattr(row, name, value)


def stored_files(settings: Settings) -> set[str]:
    return {p.name for p in settings.blob_root.rglob("*") if p.is_file() and ".tmp" not in p.parts}


def test_active_job_limit(client: TestClient, other_client: TestClient, db: Database) -> None:
    set_limits(db, "local", max_active_jobs=2)
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    first, _ = (client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)).json() for _ in range(2))
    refused = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id))
    body = assert_problem(refused, 429)
    assert body["type"] == "urn:condense:problem:tenant-job-limit"
    assert "2 queued or running jobs (limit 2)" in body["detail"]
    assert int(refused.headers["retry-after"]) > 0
    # The limit is the tenant's own: another tenant still submits.
    theirs = other_client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    assert other_client.post("/v1/jobs", json=tiny_prune_spec(theirs)).status_code == 202
    # A finished (here: canceled) job frees its slot.
    assert client.post(f"/v1/jobs/{first['id']}/cancel").json()["status"] == "canceled"
    assert client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)).status_code == 202


def test_the_default_job_limit_comes_from_the_settings(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    monkeypatch.setattr(settings, "tenant_max_active_jobs", 1)
    assert client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)).status_code == 202
    assert_problem(client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)), 429)


def test_storage_limit_refuses_uploads_and_stores_nothing(
    client: TestClient, settings: Settings, db: Database
) -> None:
    first = random_npz_bytes(seed=1)
    assert client.post("/v1/datasets", files={"file": ("a.npz", first)}).status_code == 201
    before = stored_files(settings)
    set_limits(db, "local", max_stored_bytes=len(first) + 100)
    refused = client.post("/v1/datasets", files={"file": ("b.npz", random_npz_bytes(seed=2))})
    body = assert_problem(refused, 429)
    assert body["type"] == "urn:condense:problem:tenant-storage-limit" and "Delete datasets" in body["detail"]
    assert stored_files(settings) == before
    assert len(client.get("/v1/datasets").json()["data"]) == 1
    # Re-sending what is already stored costs nothing, so it is still answered.
    assert client.post("/v1/datasets", files={"file": ("again.npz", first)}).status_code == 200


def test_deleting_a_finished_job_frees_its_artifacts(
    client: TestClient, settings: Settings, db: Database
) -> None:
    dataset_id = client.post("/v1/datasets", files={"file": ("d.npz", random_npz_bytes())}).json()["id"]
    job_id = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None)).json()["id"]
    queued = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None)).json()["id"]
    run_job_in_process(settings, job_id)
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
    with_artifacts = stored_files(settings)
    assert_problem(client.delete(f"/v1/jobs/{queued}"), 409)  # still queued: cancel it first
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert_problem(client.get(f"/v1/jobs/{job_id}"), 404)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Artifact)) == 0
    remaining = stored_files(settings)
    # The dataset's file and the proxy run the job recorded (kept for later jobs; deleted on its own) are left.
    assert len(remaining) == 2 and remaining < with_artifacts
    run = client.get("/v1/proxy-runs").json()["data"][0]
    assert run["job_id"] is None  # its job is gone
    assert client.delete(f"/v1/proxy-runs/{run['id']}").status_code == 204
    assert len(stored_files(settings)) == 1 and stored_files(settings) < remaining  # the dataset's file
    assert client.get(f"/v1/datasets/{dataset_id}").status_code == 200


def count(db: Database, model: type[Job] | type[JobEvent] | type[Artifact]) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_tenant_at_its_storage_limit_gets_no_job(client: TestClient, db: Database) -> None:
    upload = random_npz_bytes()
    dataset_id = client.post("/v1/datasets", files={"file": ("d.npz", upload)}).json()["id"]
    set_limits(db, "local", max_stored_bytes=len(upload))
    # A sweep is sure to store nothing (its files are compressed): the limit already reached refuses it.
    sweep = {"kind": "prune_sweep", "dataset_id": dataset_id, "device": "cpu"}
    refused = client.post("/v1/jobs", json=sweep, headers={"Idempotency-Key": "sweep-1"})
    body = assert_problem(refused, 429)
    assert body["type"] == "urn:condense:problem:tenant-storage-limit"
    assert f"stores {len(upload)} bytes, at or past its storage limit (max_stored_bytes)" in body["detail"]
    assert "Delete datasets" in body["detail"]
    assert count(db, Job) == count(db, JobEvent) == 0  # nothing written
    # The key was not spent: once space is freed (here: a higher limit) the same request is a new job.
    set_limits(db, "local", max_stored_bytes=len(upload) + 10**6)
    accepted = client.post("/v1/jobs", json=sweep, headers={"Idempotency-Key": "sweep-1"})
    assert accepted.status_code == 202, accepted.text
    assert count(db, Job) == 1


def test_a_job_sure_to_pass_the_storage_limit_is_refused(client: TestClient, db: Database) -> None:
    dataset = client.post("/v1/datasets", json={"builtin": "digits"}).json()  # built-ins store nothing
    at_least = 16 * dataset["splits"]["train"]  # a prune job's scores.npy and ranking.npy, 8 bytes a sample each
    set_limits(db, "local", max_stored_bytes=at_least - 1)
    body = assert_problem(client.post("/v1/jobs", json=tiny_prune_spec(dataset["id"])), 429)
    assert body["type"] == "urn:condense:problem:tenant-storage-limit"
    assert f"take at least {at_least} more" in body["detail"] and "max_stored_bytes" in body["detail"]
    assert count(db, Job) == 0
    set_limits(db, "local", max_stored_bytes=at_least)
    assert client.post("/v1/jobs", json=tiny_prune_spec(dataset["id"])).status_code == 202

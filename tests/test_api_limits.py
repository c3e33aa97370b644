"""Per-tenant limits (429 with a message that says what to free) and deleting finished jobs."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import Database
from app.models import Artifact, Job, JobEvent
from app.services import quotas
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


def artifact_bytes(job: dict[str, Any]) -> int:
    return sum(a["size_bytes"] for a in job["artifacts"])


def test_a_job_whose_artifacts_pass_the_storage_limit_fails_and_keeps_none(
    client: TestClient, settings: Settings, db: Database
) -> None:
    dataset = client.post("/v1/datasets", json={"builtin": "digits"}).json()
    spec = tiny_prune_spec(dataset["id"], evaluation=None)
    first = client.post("/v1/jobs", json=spec).json()["id"]
    run_job_in_process(settings, first)
    done = client.get(f"/v1/jobs/{first}").json()
    assert done["status"] == "succeeded", done["error"]
    files = stored_files(settings)
    with db.session() as session:
        used = quotas.stored_bytes(session, tenant_named(session, "local").id)
    # Room for the submission's lower bound but not for the artifacts, most of which are the first job's
    # files again (content-addressed, so shared: they must survive the second job's failure).
    room = 50_000
    assert 16 * dataset["splits"]["train"] < room < artifact_bytes(done)
    set_limits(db, "local", max_stored_bytes=used + room)
    second = client.post("/v1/jobs", json=spec).json()["id"]
    run_job_in_process(settings, second)
    failed = client.get(f"/v1/jobs/{second}").json()
    assert failed["status"] == "failed" and failed["error"]["type"] == "storage_limit", failed
    message = failed["error"]["message"]
    assert f"past its storage limit (max_stored_bytes) of {used + room}" in message and "Delete datasets" in message
    assert failed["artifacts"] == [] and count(db, Artifact) == len(done["artifacts"])
    assert stored_files(settings) == files  # no blob of the failed job, none of the first one's removed
    for artifact in done["artifacts"]:
        assert len(client.get(f"/v1/jobs/{first}/artifacts/{artifact['name']}").content) == artifact["size_bytes"]
    assert not (settings.work_root / second).exists()
    events = client.get(f"/v1/jobs/{second}/events.json").json()["data"]
    assert [e["data"]["status"] for e in events if e["type"] == "status"] == ["queued", "running", "failed"]
    # Under the limit the same job succeeds.
    set_limits(db, "local", max_stored_bytes=used + 10 * artifact_bytes(done))
    third = client.post("/v1/jobs", json=spec).json()["id"]
    run_job_in_process(settings, third)
    assert client.get(f"/v1/jobs/{third}").json()["status"] == "succeeded"


def test_a_job_is_not_failed_for_the_proxy_run_it_records(
    client: TestClient, settings: Settings, db: Database
) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    limit = 550_000  # above the tiny job's artifacts (about 430 kB), below them with its proxy run (about 680 kB)
    set_limits(db, "local", max_stored_bytes=limit)
    job_id = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None)).json()["id"]
    run_job_in_process(settings, job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    run = client.get("/v1/proxy-runs").json()["data"][0]
    # The artifacts fit the limit; with the proxy run the job recorded they do not. Failing the job would
    # not free the run (it is kept for reuse), so only the artifacts are weighed against the limit.
    assert artifact_bytes(job) <= limit < artifact_bytes(job) + run["size_bytes"]
    assert job["status"] == "succeeded", job["error"]
    # The run counts from then on: the tenant is past its limit, so the next job is refused.
    body = assert_problem(client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)), 429)
    assert body["type"] == "urn:condense:problem:tenant-storage-limit" and "DELETE /v1/proxy-runs" in body["detail"]


def test_two_finishing_jobs_cannot_both_pass_the_storage_limit(
    client: TestClient, settings: Settings, db: Database
) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    first, second = (client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)).json()["id"] for _ in range(2))
    set_limits(db, "local", max_stored_bytes=1000)
    with db.session() as session:
        tenant_id = tenant_named(session, "local").id
    outcome: list[str] = []

    def finish_second() -> None:
        with db.session() as session:
            try:
                quotas.check_job_output(session, settings, tenant_id, second, 600)
                outcome.append("kept")
            except quotas.StorageLimitExceeded:
                outcome.append("refused")

    with db.session() as session:
        quotas.check_job_output(session, settings, tenant_id, first, 600)
        racer = threading.Thread(target=finish_second)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive() and outcome == []  # it waits for the tenant row until the first commits
        session.add(
            Artifact(
                job_id=first,
                name="scores.npy",
                blob_key="sha256/00/00/" + "0" * 64,
                sha256="0" * 64,
                size_bytes=600,
                content_type="application/octet-stream",
            )
        )
    racer.join(30)
    assert outcome == ["refused"]

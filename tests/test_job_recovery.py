"""Recovery rules of the reaper and the runner, against a real database and broker (no worker process):
a lost doorbell is rung again, an attempt killed past its deadline fails as a timeout instead of being
re-queued, and a job over its time limit stops itself."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.core.celery_client import create_celery
from app.core.config import Settings
from app.core.db import Database
from app.models import Job, JobStatus, utcnow
from app.services import jobs
from app.services.doorbell import Doorbell
from tests.service_fixtures import (  # noqa: F401 - fixtures
    backend,
    client,
    db,
    run_job_in_process,
    settings,
    tiny_prune_spec,
)


@pytest.fixture
def job_id(client: TestClient) -> str:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    response = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, proxy={"epochs": 1000, "width": 8}))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def read(db: Database, job_id: str) -> Job:
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_a_lost_doorbell_is_rung_again_once_stale(settings: Settings, db: Database, job_id: str) -> None:
    doorbell = Doorbell(create_celery(settings), db, stale_after_s=60)
    rung_at = read(db, job_id).doorbell_at
    assert rung_at is not None  # the API rang it
    assert doorbell.reap() == []  # rung a moment ago: its message is most likely still in the queue
    # A minute later the job is still queued: the message was lost (say, Redis restarted without persistence).
    lost_at = utcnow() - timedelta(seconds=61)
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(doorbell_at=lost_at))
    assert doorbell.reap() == [job_id]
    assert read(db, job_id).doorbell_at > lost_at  # type: ignore[operator]
    assert doorbell.reap() == []  # rung again only after another stale period


@pytest.mark.parametrize(
    ("time_limit_s", "status", "error_type"),
    [
        # The lease (60 s ahead) reaches past the deadline: the worker was alive when the limit hit.
        (30, JobStatus.FAILED, "timeout"),
        # The worker vanished long before its deadline: another attempt gets the job.
        (3600, JobStatus.QUEUED, None),
    ],
)
def test_reaper_tells_a_killed_overrun_from_a_lost_worker(
    db: Database, job_id: str, time_limit_s: float, status: JobStatus, error_type: str | None
) -> None:
    with db.session() as session:
        assert jobs.claim(session, job_id, "w", lease_s=60, time_limit_s=time_limit_s)
    with db.session() as session:
        requeued = jobs.reap_expired(session, now=utcnow() + timedelta(seconds=120))  # the lease has expired
    job = read(db, job_id)
    assert (job.status, job.attempt) == (status, 1)
    assert requeued == ([job_id] if status == JobStatus.QUEUED else [])
    assert (job.error or {}).get("type") == error_type


def test_a_job_over_its_time_limit_stops_itself(settings: Settings, db: Database, job_id: str) -> None:
    short = settings.model_copy(update={"task_soft_time_limit_s": 1})
    started = time.monotonic()
    run_job_in_process(short, job_id)  # 1000 proxy epochs: minutes of work without the limit
    assert time.monotonic() - started < 15
    job = read(db, job_id)
    assert job.status == JobStatus.FAILED
    assert job.error == {"type": "timeout", "message": "the job ran past its time limit of 1 s"}
    assert not (settings.work_root / job_id).exists()

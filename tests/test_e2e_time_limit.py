"""End to end: a job over its time limit fails with a clear error, and the same worker process goes on
with the next job (real API and Celery worker, with a short limit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.db import Database
from app.models import Job
from tests.service_fixtures import (  # noqa: F401 - fixtures
    LiveService,
    backend,
    live_service,
    real_subset_npz,
    tiny_prune_spec,
    wait_for_job,
)

pytestmark = pytest.mark.slow
TIME_LIMIT_S = 6


@pytest.fixture(scope="module")
def service_overrides() -> dict[str, str]:
    return {"CONDENSE_TASK_SOFT_TIME_LIMIT_S": str(TIME_LIMIT_S), "CONDENSE_TASK_TIME_LIMIT_S": "120"}


def worker_of(live_service: LiveService, job_id: str) -> str | None:
    """The pool process that ran the job (not in the public API)."""
    db = Database(live_service.settings.database_url)
    try:
        with db.session() as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job.worker_id
    finally:
        db.dispose()


def test_job_over_its_time_limit_fails_and_the_worker_goes_on(
    live_service: LiveService, real_subset_npz: Path
) -> None:
    client = live_service.client
    with real_subset_npz.open("rb") as f:
        dataset_id = client.post("/v1/datasets", files={"file": (real_subset_npz.name, f)}).json()["id"]
    endless = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, proxy={"epochs": 1000, "width": 32}))
    tiny = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None))  # waits behind it

    job = wait_for_job(client, endless.json()["id"], {"succeeded", "failed", "canceled"}, timeout_s=60)
    assert job["status"] == "failed"
    assert job["error"] == {"type": "timeout", "message": f"the job ran past its time limit of {TIME_LIMIT_S} s"}
    assert job["attempt"] == 1  # failed for good, not re-queued

    done = wait_for_job(client, tiny.json()["id"], {"succeeded", "failed", "canceled"}, timeout_s=60)
    assert done["status"] == "succeeded", done
    assert live_service.worker is not None and live_service.worker.poll() is None
    assert worker_of(live_service, done["id"]) == worker_of(live_service, job["id"])  # the same pool process

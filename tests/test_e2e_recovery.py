"""End to end: a worker killed mid-job. Its lease expires, the reaper re-queues the job and rings
again, and a new worker resumes it from its checkpoints (the database, not the broker, remembers)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.service_fixtures import (  # noqa: F401 - fixtures
    backend,
    LiveService,
    follow_events,
    live_service,
    real_subset_npz,
    tiny_prune_spec,
    wait_for_job,
)

pytestmark = pytest.mark.slow


def test_killed_worker_job_is_resumed_by_another(live_service: LiveService, real_subset_npz: Path) -> None:
    client = live_service.client
    with real_subset_npz.open("rb") as f:
        dataset_id = client.post("/v1/datasets", files={"file": (real_subset_npz.name, f)}).json()["id"]
    spec = tiny_prune_spec(dataset_id, proxy={"epochs": 12, "width": 16}, evaluation=None)
    job_id = client.post("/v1/jobs", json=spec).json()["id"]

    def proxy_epochs_done() -> int:
        events = client.get(f"/v1/jobs/{job_id}/events.json").json()["data"]
        return sum(1 for e in events if e["type"] == "progress" and e["stage"] == "proxy_training")

    wait_for_job(client, job_id, {"running"})
    while proxy_epochs_done() < 4:
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
        time.sleep(0.1)
    assert live_service.worker is not None
    os.killpg(live_service.worker.pid, signal.SIGKILL)  # the worker and its pool child, with no goodbye
    live_service.worker.wait()

    live_service.start_worker()
    events = follow_events(client, job_id, timeout_s=120)
    statuses = [e["message"] for e in events if e["type"] == "status"]
    assert any("re-queued" in message for message in statuses), statuses
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["attempt"] == 2
    report = client.get(f"/v1/jobs/{job_id}/artifacts/report.json").json()
    assert report["proxy"]["resumed_from_epoch"]  # picked up from the checkpoint, not from scratch

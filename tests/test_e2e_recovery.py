"""End to end: processes that die. A worker killed mid-job: its lease expires, the reaper re-queues
the job and rings again, and another worker resumes it from its checkpoints (the database, not the
broker, remembers). An API restarted while jobs run: clients polling through it see them finish."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.core.config import Settings
from app.core.db import Database
from app.models import Artifact, Dataset, ExpertSet, ProxyRun
from tests.service_fixtures import (  # noqa: F401 - fixtures
    EMBEDDED,
    PRUNE_ARTIFACTS,
    SERVERS,
    TERMINAL,
    LiveService,
    backend,
    follow_events,
    live_service,
    real_subset_npz,
    tiny_prune_spec,
    wait_for_job,
)

pytestmark = pytest.mark.slow


def _upload(client: httpx.Client, path: Path) -> str:
    with path.open("rb") as f:
        return str(client.post("/v1/datasets", files={"file": (path.name, f)}).json()["id"])


# A process's start-up (API or worker: seconds of imports) takes about as long as a job's set-up plus
# 8 short epochs (3 s here), and CI once saw such a job finish first; a job that must outlast one runs
# this many, which keeps it running through a start-up several times slower.
OUTLASTS_A_START_UP = 100
# How long a job of that many epochs may take before a test calls it hung: 100 epochs took over 120 s
# with the tests running on both cores of a loaded 2-core machine (one test's unfinished job then kept
# the next test's jobs queued); the waits end as soon as the jobs do.
JOB_DEADLINE_S = 600


_SEEDS = itertools.count(1)


def _submit_long_job(client: httpx.Client, dataset_id: str, epochs: int = 30) -> str:
    # A seed of its own: an earlier test's finished job on the same data would leave a proxy run this one reuses.
    spec = tiny_prune_spec(dataset_id, proxy={"epochs": epochs, "width": 16}, evaluation=None, seed=next(_SEEDS))
    return str(client.post("/v1/jobs", json=spec).json()["id"])


def _events(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/v1/jobs/{job_id}/events.json", params={"limit": 1000}).json()["data"])


def _kill_mid_training(live_service: LiveService, job_id: str, worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``worker`` and its pool child, with no goodbye, once the job has checkpointed a few epochs."""
    client = live_service.client

    def proxy_epochs_done() -> int:
        return sum(1 for e in _events(client, job_id) if e["type"] == "progress" and e["stage"] == "proxy_training")

    wait_for_job(client, job_id, {"running"})
    while proxy_epochs_done() < 4:
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
        time.sleep(0.1)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def _blob_files(settings: Settings) -> set[str]:
    return {p.relative_to(settings.blob_root).as_posix() for p in settings.blob_root.rglob("*") if p.is_file()}


def _referenced_blobs(settings: Settings) -> set[str]:
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            return {
                key
                for model in (Dataset, Artifact, ExpertSet, ProxyRun)
                for key in session.scalars(select(model.blob_key))
                if key is not None
            }
    finally:
        db.dispose()


def assert_recovered_once(live_service: LiveService, job_id: str) -> None:
    """Succeeded on attempt 2 after one re-queue, nothing after that, one set of artifacts, no stray blob."""
    client = live_service.client
    follow_events(client, job_id, timeout_s=JOB_DEADLINE_S)
    time.sleep(2 * float(live_service.env["CONDENSE_REAPER_INTERVAL_S"]))  # room for a wrong late change
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["attempt"] == 2

    events = _events(client, job_id)
    statuses = [(e["data"]["status"], e["data"].get("attempt")) for e in events if e["type"] == "status"]
    assert statuses == [("queued", None), ("running", 1), ("queued", None), ("running", 2), ("succeeded", None)]
    assert "re-queued" in [e for e in events if e["type"] == "status"][2]["message"]
    assert events[-1]["type"] == "status" and events[-1]["data"]["status"] == "succeeded"

    names = [a["name"] for a in job["artifacts"]]
    assert sorted(names) == sorted(PRUNE_ARTIFACTS)  # the expected set, each once
    report = client.get(f"/v1/jobs/{job_id}/artifacts/report.json").json()
    assert report["proxy"]["resumed_from_epoch"]  # picked up from the checkpoint, not from scratch

    # Exactly the blobs the rows name (the dataset and every job's artifacts): the killed attempt left
    # no half-written artifact and no staging file, and no row points at a missing file.
    settings = live_service.settings
    assert _blob_files(settings) == _referenced_blobs(settings)
    assert not (settings.work_root / job_id).exists()


def test_killed_worker_job_is_resumed_by_a_new_worker(live_service: LiveService, real_subset_npz: Path) -> None:
    job_id = _submit_long_job(live_service.client, _upload(live_service.client, real_subset_npz))
    assert live_service.worker is not None
    _kill_mid_training(live_service, job_id, live_service.worker)
    live_service.start_worker()
    assert_recovered_once(live_service, job_id)


def test_killed_worker_job_goes_to_a_worker_already_running(
    live_service: LiveService, real_subset_npz: Path
) -> None:
    client = live_service.client
    job_id = _submit_long_job(client, _upload(client, real_subset_npz), epochs=OUTLASTS_A_START_UP)
    wait_for_job(client, job_id, {"running"})  # on the first worker, before the second exists
    assert live_service.worker is not None
    first = live_service.worker
    second = live_service.add_worker("worker-2")
    _kill_mid_training(live_service, job_id, first)
    assert_recovered_once(live_service, job_id)
    assert second.poll() is None  # the worker that was already there did it; no new one was started


# Each way of stopping the API on one backend each (pairwise, not all four pairs, to keep CI under 30 minutes): how
# the API process died does not change what the database keeps, and the database does not change how it dies.
RESTART_SIGNAL = {EMBEDDED: signal.SIGKILL, SERVERS: signal.SIGTERM}


def test_api_restart_loses_nothing(live_service: LiveService, real_subset_npz: Path, backend: str) -> None:
    sig = RESTART_SIGNAL[backend]
    client = live_service.client
    dataset_id = _upload(client, real_subset_npz)
    running = _submit_long_job(client, dataset_id, epochs=OUTLASTS_A_START_UP)
    queued = _submit_long_job(client, dataset_id, epochs=2)
    seen: dict[str, list[str]] = {running: [], queued: []}
    transport_errors = 0

    def poll() -> None:
        """A client that keeps asking through the restart, as a dashboard would."""
        nonlocal transport_errors
        deadline = time.monotonic() + JOB_DEADLINE_S
        with httpx.Client(base_url=live_service.base_url, headers=client.headers, timeout=5) as poller:
            while time.monotonic() < deadline and not all(s and s[-1] in TERMINAL for s in seen.values()):
                for job_id, history in seen.items():
                    try:
                        status = poller.get(f"/v1/jobs/{job_id}").json()["status"]
                    except httpx.TransportError:
                        transport_errors += 1
                        continue
                    if not history or history[-1] != status:
                        history.append(status)
                time.sleep(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    wait_for_job(client, running, {"running"})
    restart_began = time.monotonic()
    live_service.restart_api(sig)
    restart_s = time.monotonic() - restart_began
    after_restart = client.get(f"/v1/jobs/{running}").json()
    poller.join()

    assert transport_errors > 0  # the poller did see the API gone
    assert after_restart["status"] == "running", (
        f"the job ended within the {restart_s:.1f} s restart: {after_restart['started_at']} to {after_restart['finished_at']}"
    )
    forward = ["queued", "running", "succeeded"]
    for job_id, history in seen.items():
        assert history[-1] == "succeeded" and history == sorted(set(history), key=forward.index), history
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["attempt"] == 1 and sorted(a["name"] for a in job["artifacts"]) == sorted(PRUNE_ARTIFACTS)
        statuses = [(e["data"]["status"], e["data"].get("attempt")) for e in _events(client, job_id) if e["type"] == "status"]
        assert statuses == [("queued", None), ("running", 1), ("succeeded", None)]
    listed = {j["id"] for j in client.get("/v1/jobs", params={"limit": 200}).json()["data"]}
    assert {running, queued} <= listed

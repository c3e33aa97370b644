"""End to end, with real workers (issue 33): identical jobs submitted at once train their proxy run once and
all name the same trainer; a worker killed while training a run that other jobs wait for leaves no row
pointing at a missing file, and the waiting jobs go on; a deleted dataset's decoded-cache entries are gone
from the worker within a few reaper passes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service_fixtures import (  # noqa: F401 - fixtures
    TERMINAL,
    LiveService,
    backend,
    live_service,
    real_subset_npz,
    tiny_prune_spec,
    wait_for_job,
    wait_until,
)
from tests.test_e2e_recovery import _blob_files, _events, _referenced_blobs, _upload

pytestmark = pytest.mark.slow
IDENTICAL_JOBS = 20


@pytest.fixture(scope="module")
def service_overrides() -> dict[str, str]:
    return {"CONDENSE_TENANT_MAX_ACTIVE_JOBS": str(IDENTICAL_JOBS + 5)}


def _finish(client: httpx.Client, job_ids: list[str], timeout_s: float = 600) -> list[dict[str, Any]]:
    return [wait_for_job(client, job_id, TERMINAL, timeout_s) for job_id in job_ids]


def test_a_worker_killed_while_training_a_shared_run_leaves_no_dangling_row(
    live_service: LiveService, real_subset_npz: Path
) -> None:
    client = live_service.client
    assert live_service.worker is not None and not live_service.extra_workers  # the module's first test
    # Both workers idle before the first job: the second job then starts at once and the training it waits
    # for can be short (forgetting, which needs no extra EL2N runs): the trainer is killed a second or
    # two in, long before its 20 epochs end.
    workers = {"worker": live_service.worker, "worker-2": live_service.add_worker("worker-2")}
    dataset_id = _upload(client, real_subset_npz)
    spec = tiny_prune_spec(dataset_id, method="forgetting", proxy={"epochs": 20, "width": 16}, evaluation=None,
                           seed=202)
    started = time.monotonic()
    first = client.post("/v1/jobs", json=spec).json()["id"]
    wait_for_job(client, first, {"running"})
    second = client.post("/v1/jobs", json=spec).json()["id"]
    wait_until(lambda: any(e["message"] == f"waiting: job {first} is computing this proxy run"
                           for e in _events(client, second)), 120, "the second job waits for the first")
    (trainer,) = [proc for name, proc in workers.items()
                  if f"running job {first} as" in (live_service.logs / f"{name}.log").read_text()]
    os.killpg(trainer.pid, signal.SIGKILL)
    trainer.wait()
    print(f"killed the trainer {time.monotonic() - started:.1f} s after the first job was submitted")

    jobs = _finish(client, [first, second])
    assert [job["status"] for job in jobs] == ["succeeded", "succeeded"], [j["error"] for j in jobs]
    runs = {job["id"]: job["metrics"]["proxy_run"] for job in jobs}
    # The waiting job took the claim over once the killed trainer stopped renewing it and trained the run;
    # the first job, re-queued (its lease expired too), found the run stored and reused it.
    assert runs[second] == {"reused": False, "trained_by_job": second}
    assert runs[first] == {"reused": True, "trained_by_job": second}
    settings = live_service.settings
    assert _referenced_blobs(settings) <= _blob_files(settings)  # no row points at a missing file
    print(f"both jobs finished {time.monotonic() - started:.1f} s after the first was submitted")


def test_identical_jobs_submitted_at_once_train_one_proxy_run(live_service: LiveService, real_subset_npz: Path) -> None:
    client = live_service.client
    alive = [w for w in [live_service.worker, *live_service.extra_workers] if w is not None and w.poll() is None]
    for i in range(3 - len(alive)):  # three worker slots, where the issue saw three trainings
        live_service.add_worker(f"worker-slot-{i}")
    dataset_id = _upload(client, real_subset_npz)
    spec = tiny_prune_spec(dataset_id, proxy={"epochs": 3, "width": 8}, evaluation=None, seed=101)
    job_ids = [client.post("/v1/jobs", json=spec).json()["id"] for _ in range(IDENTICAL_JOBS)]
    jobs = _finish(client, job_ids)
    assert [job["status"] for job in jobs] == ["succeeded"] * IDENTICAL_JOBS, [j["error"] for j in jobs]
    runs = [job["metrics"]["proxy_run"] for job in jobs]
    trainers = {run["trained_by_job"] for run in runs}
    assert len(trainers) == 1, runs
    (trainer,) = trainers
    assert [run["reused"] for run in runs].count(False) == 1
    assert next(run for job, run in zip(jobs, runs, strict=True) if job["id"] == trainer)["reused"] is False
    listed = client.get("/v1/proxy-runs", params={"dataset_id": dataset_id}).json()["data"]
    assert [run["job_id"] for run in listed if run["job_id"] in job_ids] == [trainer]
    # Some of them waited for the trainer, and said so.
    waited = [j for j in job_ids if any(e["message"].startswith("waiting: job") for e in _events(client, j))]
    assert waited and trainer not in waited


def test_a_deleted_dataset_s_cache_entries_leave_the_worker(live_service: LiveService, real_subset_npz: Path) -> None:
    client = live_service.client
    dataset_id = _upload(client, real_subset_npz)
    job = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None, seed=303)).json()["id"]
    assert _finish(client, [job])[0]["status"] == "succeeded"
    cache = live_service.settings.dataset_cache_root
    assert list(cache.glob("*.safetensors"))
    assert client.delete(f"/v1/jobs/{job}").status_code == 204
    assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
    deleted = time.monotonic()
    # One reaper pass (CONDENSE_REAPER_INTERVAL_S, 1 s here; 15 s by default) plus its work: allow five.
    bound = 5 * float(live_service.env["CONDENSE_REAPER_INTERVAL_S"])
    wait_until(lambda: not list(cache.glob("*.safetensors")), bound, "the decoded-cache entry deleted")
    print(f"decoded-cache entry gone {time.monotonic() - deleted:.1f} s after the dataset was deleted")

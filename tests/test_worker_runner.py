"""The worker's job runner, in-process: claims, leases, the reaper, progress, cancellation, failures."""

from __future__ import annotations

import json
import math
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.core.config import Settings
from app.core.db import Database
from app.models import Job, JobStatus, utcnow
from app.services import jobs
from engine.progress import ProgressEvent
from tests.service_fixtures import (  # noqa: F401 - fixtures
    backend,
    client,
    db,
    PRUNE_ARTIFACTS,
    random_npz_bytes,
    run_job_in_process,
    run_to_success,
    settings,
    tiny_prune_spec,
    wait_for_job,
)
from worker.lease import LeaseKeeper
from worker.runner import DatabaseTracker, WorkerContext


@pytest.fixture
def job_id(client: TestClient) -> str:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    return client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)).json()["id"]


def claim(db: Database, job_id: str, worker: str, lease_s: float = 60) -> bool:
    with db.session() as session:
        return jobs.claim(session, job_id, worker, lease_s, time_limit_s=3600)


def expire_lease(db: Database, job_id: str) -> None:
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1)))


def read(db: Database, job_id: str) -> Job:
    with db.session() as session:
        return jobs.get_job(session, job_id, tenant_id=None)


def test_claim_is_compare_and_set(db: Database, job_id: str) -> None:
    assert claim(db, job_id, "a")
    assert not claim(db, job_id, "b")  # a duplicate delivery finds the job already running
    job = read(db, job_id)
    assert (job.status, job.attempt, job.worker_id) == (JobStatus.RUNNING, 1, "a")


def test_job_runs_to_success(client: TestClient, settings: Settings, job_id: str) -> None:
    run_job_in_process(settings, job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    assert (job["attempt"], job["progress"], job["stage"]) == (1, 1.0, "done")
    assert job["started_at"] <= job["finished_at"]
    assert job["metrics"]["fraction"] == pytest.approx(0.3, abs=0.01)
    assert {"subset_accuracy", "random_accuracy"} <= job["metrics"].keys()
    # One evaluation seed: a gain, but no spread to judge it by.
    gain = job["metrics"]["gain_over_random"]
    assert gain["verdict"]["verdict"] == "not enough seeds to tell" and gain["verdict"]["seeds"] == 1
    assert gain["verdict"]["mean"] == gain["mean"] and gain["verdict"]["low"] is None
    events = client.get(f"/v1/jobs/{job_id}/events.json").json()["data"]
    assert [e["data"]["status"] for e in events if e["type"] == "status"] == ["queued", "running", "succeeded"]
    progress = [e["progress"] for e in events if e["type"] == "progress"]
    assert progress and progress == sorted(progress)
    assert not (settings.work_root / job_id).exists()  # checkpoints are only kept for a redelivery

    run_job_in_process(settings, job_id, worker_id="late-duplicate")  # a redelivered doorbell changes nothing
    assert client.get(f"/v1/jobs/{job_id}").json() == job


def test_metrics_carry_the_verdict_of_every_gain(client: TestClient, settings: Settings) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    evaluation = {"seeds": 2, "epochs": 1, "width": 8, "compare_random": True, "full_data": False, "archs": ["mlp"]}
    job = run_to_success(client, settings, tiny_prune_spec(dataset_id, evaluation=evaluation))
    gain = job["metrics"]["gain_over_random"]
    report = json.loads(client.get(next(a["url"] for a in job["artifacts"] if a["name"] == "report.json")).content)
    # The job's figures are the report's, verdict included: its paired interval over the two seeds.
    assert gain["verdict"] == report["gain_over_random"]["verdict"]
    assert gain["verdict"]["seeds"] == 2 and gain["verdict"]["low"] <= gain["mean"] <= gain["verdict"]["high"]
    assert gain["verdict"]["verdict"] in {"better", "worse", "within noise"}
    assert gain["cross_arch"]["mlp"]["verdict"] == report["gain_over_random"]["cross_arch"]["mlp"]["verdict"]
    assert (gain["mean"], gain["std"]) == (report["gain_over_random"]["mean"], report["gain_over_random"]["std"])


class RenewalAfterTheEnd(LeaseKeeper):
    """A renewal that lands between the job's recorded end and the keeper's stop (a timing the
    background thread hits now and then): it finds the job no longer running."""

    def __exit__(self, *exc_info: object) -> None:
        assert not self.renew()
        super().__exit__(*exc_info)  # type: ignore[arg-type]


def test_a_renewal_after_the_recorded_end_still_cleans_the_work_folder(
    client: TestClient, settings: Settings, job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("worker.runner.LeaseKeeper", RenewalAfterTheEnd)
    run_job_in_process(settings, job_id)
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
    assert not (settings.work_root / job_id).exists()


def test_simultaneous_duplicate_deliveries_run_the_job_once(
    client: TestClient, settings: Settings, db: Database, job_id: str
) -> None:
    # Two workers get the same doorbell at the same moment; only the claim in the database decides.
    start = threading.Barrier(2)

    def deliver(worker_id: str) -> None:
        start.wait()
        run_job_in_process(settings, job_id, worker_id)

    workers = [threading.Thread(target=deliver, args=(f"worker-{i}",)) for i in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert not worker.is_alive()
    assert read(db, job_id).worker_id in {"worker-1", "worker-2"}
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["attempt"] == 1, job["error"]
    events = client.get(f"/v1/jobs/{job_id}/events.json").json()["data"]
    assert [e["data"]["status"] for e in events if e["type"] == "status"] == ["queued", "running", "succeeded"]
    assert sorted(a["name"] for a in job["artifacts"]) == sorted(PRUNE_ARTIFACTS)


def test_running_job_is_canceled(client: TestClient, settings: Settings, db: Database) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    spec = tiny_prune_spec(dataset_id, proxy={"epochs": 200, "width": 8})
    job_id = client.post("/v1/jobs", json=spec).json()["id"]
    worker = threading.Thread(target=run_job_in_process, args=(settings, job_id))
    worker.start()
    wait_for_job(client, job_id, {"running"})
    assert client.post(f"/v1/jobs/{job_id}/cancel").json()["cancel_requested"]
    worker.join(timeout=60)
    assert not worker.is_alive()
    job = read(db, job_id)
    assert job.status == JobStatus.CANCELED and job.finished_at is not None and job.artifacts == []


def test_failure_is_recorded(client: TestClient, settings: Settings, db: Database) -> None:
    dataset = client.post("/v1/datasets", files={"file": ("d.npz", random_npz_bytes())}).json()
    job_id = client.post("/v1/jobs", json=tiny_prune_spec(dataset["id"])).json()["id"]
    for blob in settings.blob_root.rglob("*.npz"):
        blob.write_bytes(b"corrupted on disk")
    run_job_in_process(settings, job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"]["type"] == "dataset_invalid" and job["error"]["message"]


def test_failure_names_no_server_path(client: TestClient, settings: Settings) -> None:
    dataset = client.post("/v1/datasets", files={"file": ("d.npz", random_npz_bytes())}).json()
    job_id = client.post("/v1/jobs", json=tiny_prune_spec(dataset["id"])).json()["id"]
    for blob in settings.blob_root.rglob("*.npz"):
        blob.unlink()  # the store lost the file
    run_job_in_process(settings, job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error"]["type"] == "dataset_invalid", job
    assert "is missing" in job["error"]["message"]
    assert str(settings.data_dir) not in str(job["error"]) and "/blobs/" not in str(job["error"])


def queued_with_spec(db: Database, job_id: str, **changes: object) -> None:
    """Rewrites a queued job's stored spec, as a job queued by an older release (with laxer checks) holds it."""
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.execute(update(Job).where(Job.id == job_id).values(spec={**job.spec, **changes}))


def test_an_error_quoting_a_nul_is_recorded(client: TestClient, settings: Settings, db: Database) -> None:
    """A NUL in a score parameter's name: PostgreSQL refuses NUL in text, so recording the error failed and
    the job cycled through "worker lost" until its attempts ran out. Its cause must reach the user at once."""
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    job_id = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)).json()["id"]
    queued_with_spec(db, job_id, score_params={"win\x00dow": 3})
    run_job_in_process(settings, job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert (job["status"], job["attempt"]) == ("failed", 1), job
    assert "win\\x00dow" in job["error"]["message"], job["error"]
    events = client.get(f"/v1/jobs/{job_id}/events.json").json()["data"]
    assert [e["data"]["status"] for e in events if e["type"] == "status"] == ["queued", "running", "failed"]
    assert not (settings.work_root / job_id).exists()


def test_a_failure_the_database_refuses_is_recorded_plainly(
    client: TestClient, settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refusing the error record (a statement error, not an outage) must not leave the job
    running until its lease expires, to be retried as if its worker had been lost."""
    from sqlalchemy.exc import DataError

    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    job_id = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)).json()["id"]
    queued_with_spec(db, job_id, method="no-such-score")
    finish = jobs.finish

    def refuse_the_first_error(session, job_id, worker_id, status, *, error=None, metrics=None):  # type: ignore[no-untyped-def]
        if error is not None and error["type"] != "unrecorded_error":
            raise DataError("INSERT ...", {}, Exception("invalid byte sequence"))
        return finish(session, job_id, worker_id, status, error=error, metrics=metrics)

    monkeypatch.setattr(jobs, "finish", refuse_the_first_error)
    run_job_in_process(settings, job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert (job["status"], job["attempt"], job["error"]["type"]) == ("failed", 1, "unrecorded_error"), job
    assert "ValidationError" in job["error"]["message"]
    assert not (settings.work_root / job_id).exists()


def test_reaper_requeues_then_gives_up(db: Database, settings: Settings, job_id: str) -> None:
    for attempt in range(1, settings.max_attempts + 1):
        assert claim(db, job_id, f"worker-{attempt}")
        expire_lease(db, job_id)
        with db.session() as session:
            requeued = jobs.reap_expired(session)
        job = read(db, job_id)
        if attempt < settings.max_attempts:
            assert requeued == [job_id]
            assert (job.status, job.worker_id, job.doorbell_at) == (JobStatus.QUEUED, None, None)
            with db.session() as session:
                assert (job_id, "cpu") in jobs.unrung_jobs(session, rung_before=utcnow())  # the reaper rings it again
        else:
            assert requeued == []
            assert job.status == JobStatus.FAILED and job.error == {
                "type": "lease_expired",
                "message": f"the worker was lost {attempt} times; giving up",
            }


def test_lost_lease_is_noticed(db: Database, settings: Settings, job_id: str) -> None:
    assert claim(db, job_id, "slow-worker", lease_s=0.6)
    with LeaseKeeper(db, job_id, "slow-worker", lease_s=0.6) as lease:
        assert not lease.lost.wait(0.5)  # renewed while it still owns the job
        expire_lease(db, job_id)
        with db.session() as session:
            jobs.reap_expired(session)
        assert lease.lost.wait(2)
    with db.session() as session:
        assert not jobs.finish(session, job_id, "slow-worker", JobStatus.SUCCEEDED)  # cannot overwrite the re-queue
    assert read(db, job_id).status == JobStatus.QUEUED


def test_progress_is_throttled_but_stage_changes_are_kept(db: Database, settings: Settings, job_id: str) -> None:
    assert claim(db, job_id, "w")
    context = WorkerContext(settings.model_copy(update={"progress_interval_s": 60}), db, None)  # type: ignore[arg-type]
    lease = LeaseKeeper(db, job_id, "w", 60)
    tracker = DatabaseTracker(context, job_id, "w", lease, deadline=math.inf)
    for i in range(50):
        tracker.on_progress(ProgressEvent("proxy_training", i / 100))
    tracker.on_progress(ProgressEvent("evaluate_subset", 0.6))
    with db.session() as session:
        progress = [e for e in jobs.list_events(session, job_id, after=0, limit=100) if e.type == "progress"]
    assert [(e.stage, e.progress) for e in progress] == [("proxy_training", 0.0), ("evaluate_subset", 0.6)]
    assert read(db, job_id).progress == 0.6


def test_spec_becomes_the_engine_config() -> None:
    from app.schemas.jobs import PruneJobCreate
    from app.services.job_configs import prune_config

    spec = PruneJobCreate.model_validate(
        {"kind": "prune", "dataset_id": "ds_x", "method": "aum", "keep_count": 40, "mode": "ccs", "ccs_hard_cutoff": 0.2}
    )
    config = prune_config(spec)
    assert (config.method, config.selection.keep, config.selection.mode) == ("aum", 40.0, "ccs")
    assert config.selection.ccs_hard_cutoff == 0.2 and config.proxy.lr == spec.proxy.lr


def test_keep_count_one_keeps_one_sample() -> None:
    """A count stays a count: as the float 1.0 it read as the fraction 1, the whole training set."""
    from app.schemas.jobs import PruneJobCreate
    from engine.select.budget import resolve_count
    from app.services.job_configs import prune_config

    spec = PruneJobCreate.model_validate({"kind": "prune", "dataset_id": "ds_x", "method": "el2n", "keep_count": 1})
    assert resolve_count(prune_config(spec).selection.keep, 500) == 1

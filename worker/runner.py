"""Runs one job: claim it, run the engine with progress and cancellation wired to the database,
store the artifacts, record the outcome. Celery only calls :func:`run_job`."""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from pydantic import TypeAdapter

from app.blobstore import BlobStore, LocalBlobStore
from app.core.config import Settings
from app.core.db import Database, database_unavailable
from app.models import Job, JobStatus
from app.schemas.jobs import (
    JobCreate,
    JobSpec,
    PruneJobCreate,
    SweepJobCreate,
)
from app.services import datasets, decoded, job_configs, jobs, quotas
from app.services.job_metrics import job_metrics
from app.services.reusable import BlobExpertStore, BlobProxyRunStore, DatabaseBaselineStore
from engine.data import DatasetError
from engine.data.dataset import ImageDataset
from engine.pipeline.coreset_row import coreset_config
from engine.pipeline.distill import run_distill
from engine.pipeline.prune import PruneResult, run_prune
from engine.pipeline.proxy_runs import proxy_run_summary
from engine.pipeline.sweep import SweepResult, run_sweep
from engine.progress import CancelledError, ProgressEvent, Tracker
from worker.artifacts import store_artifacts
from worker.lease import LeaseKeeper

log = logging.getLogger(__name__)
SPEC_ADAPTER: TypeAdapter[JobSpec] = TypeAdapter(JobCreate)


@dataclass
class WorkerContext:
    settings: Settings
    db: Database
    blobs: BlobStore

    @classmethod
    def create(cls, settings: Settings) -> WorkerContext:
        db = Database.for_service(settings)
        return cls(settings, db, LocalBlobStore(settings.blob_root))


class JobStopped(Exception):
    """This worker lost the job (cancel flag, or the lease went to another worker)."""


class JobTimedOut(Exception):
    """The attempt passed its deadline; raised at the engine's next cancellation check."""


class DatabaseTracker:
    """Engine progress -> job row and event log (throttled, always on a stage change); cancellation <- job row."""

    def __init__(self, ctx: WorkerContext, job_id: str, worker_id: str, lease: LeaseKeeper, deadline: float) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.worker_id = worker_id
        self.lease = lease
        self.deadline = deadline  # time.monotonic() value
        self._stage: str | None = None
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._cancel = False

    def tracker(self) -> Tracker:
        return Tracker(on_progress=self.on_progress, should_cancel=self.should_cancel, on_warning=self.on_warning)

    def on_warning(self, stage: str, message: str) -> None:
        log.warning("job %s: %s", self.job_id, message)
        with self.ctx.db.session() as session:
            jobs.add_event(session, self.job_id, "warning", stage=stage, message=message)

    def on_progress(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if event.stage == self._stage and now - self._last_write < self.ctx.settings.progress_interval_s:
            return
        self._stage, self._last_write = event.stage, now
        with self.ctx.db.session() as session:
            owned = jobs.record_progress(
                session, self.job_id, self.worker_id, event.stage, event.fraction, event.message, event.metrics
            )
        if not owned:
            self.lease.lost.set()

    def should_cancel(self) -> bool:
        now = time.monotonic()
        # Stopping here, between two steps of the engine, is cleaner than Celery's soft limit, which
        # interrupts whatever runs (a commit included); that limit stays as the backstop.
        if now >= self.deadline:
            raise JobTimedOut
        if not self._cancel and now - self._last_cancel_check >= self.ctx.settings.cancel_check_interval_s:
            self._last_cancel_check = now
            with self.ctx.db.session() as session:
                self._cancel = jobs.is_cancel_requested(session, self.job_id)
        return self._cancel or self.lease.lost.is_set()


def _execute(ctx: WorkerContext, job_id: str, worker_id: str, lease: LeaseKeeper, deadline: float) -> None:
    with ctx.db.session() as session:
        job = jobs.get_job(session, job_id, tenant_id=None)
        spec = SPEC_ADAPTER.validate_python(job.spec)
        record = datasets.get_dataset(session, spec.dataset_id, tenant_id=job.tenant_id)
    tracker = DatabaseTracker(ctx, job_id, worker_id, lease, deadline)
    dataset = decoded.load_for_job(record, ctx.blobs, ctx.settings, warn=partial(tracker.on_warning, "load"))
    # A redelivered job finds its checkpoints here and resumes instead of starting over.
    workdir = ctx.settings.work_root / job_id
    workdir.mkdir(parents=True, exist_ok=True)
    # subset.zip copies the upload's own image files
    origin = ctx.blobs.path_for(record.blob_key) if record.blob_key else None
    report, write_artifacts = _run_engine(ctx, job, spec, dataset, tracker.tracker(), workdir, origin)
    with ctx.blobs.staging() as out_dir:
        paths = write_artifacts(out_dir)
        with ctx.db.session() as session:
            # Before any file moves into the store: a job refused here leaves no artifact row and no blob,
            # and the tenant row it locks stays locked till the commit, so two finishing jobs cannot both pass.
            quotas.check_job_output(session, ctx.settings, job.tenant_id, job_id, sum(p.stat().st_size for p in paths))
            # Artifacts and the final status commit together: a succeeded job always has its files.
            if not jobs.finish(session, job_id, worker_id, JobStatus.SUCCEEDED, metrics=job_metrics(report)):
                raise JobStopped
            store_artifacts(session, ctx.blobs, job_id, paths)


def _run_engine(
    ctx: WorkerContext, job: Job, spec: JobSpec, dataset: ImageDataset, tracker: Tracker, workdir: Path,
    origin: Path | None,
) -> tuple[dict[str, Any], Callable[[Path], list[Path]]]:
    """Runs the job's pipeline; returns its report and what writes its artifacts into a folder."""
    if isinstance(spec, PruneJobCreate | SweepJobCreate):
        config = job_configs.prune_config(spec)
        runs = BlobProxyRunStore(ctx.db, ctx.blobs, job.id, job.tenant_id, ctx.settings.lease_s, spec.dataset_id,
                                 proxy_run_summary(config))
        baselines = DatabaseBaselineStore(ctx.db, job.tenant_id, spec.dataset_id)
        result: PruneResult | SweepResult
        if isinstance(spec, SweepJobCreate):
            result = run_sweep(dataset, job_configs.sweep_config(spec), tracker, workdir=workdir, proxy_runs=runs, baselines=baselines)
            write = result.write
        else:
            result = run_prune(dataset, config, tracker, workdir=workdir, proxy_runs=runs, baselines=baselines)
            write = partial(result.write, dataset=dataset, origin=origin)
        if proxy_run := result.report.get("proxy_run"):
            proxy_run["trained_by_job"] = runs.reused_from_job if proxy_run["reused"] else job.id
        return result.report, write
    store = BlobExpertStore(ctx.db, ctx.blobs, job.id, job.tenant_id, ctx.settings.lease_s)
    config = job_configs.distill_config(spec)
    # The coreset row selects as a default prune job would: with the tenant's stored proxy runs.
    runs = BlobProxyRunStore(ctx.db, ctx.blobs, job.id, job.tenant_id, ctx.settings.lease_s, spec.dataset_id,
                             proxy_run_summary(coreset_config(config, dataset.num_classes)))
    distilled = run_distill(dataset, config, tracker, workdir=workdir, expert_store=store, proxy_runs=runs)
    if proxy_run := (distilled.report.get("coreset") or {}).get("proxy_run"):
        proxy_run["trained_by_job"] = runs.reused_from_job if proxy_run["reused"] else job.id
    if experts := distilled.report.get("experts"):
        # Provenance only the service knows: which job trained the experts this job used.
        experts["trained_by_job"] = store.reused_from_job if experts["reused"] else job.id
    return distilled.report, distilled.write


def _fail(ctx: WorkerContext, job_id: str, worker_id: str, status: JobStatus, error: dict[str, str] | None) -> bool:
    """Records how the job ended; False when the job was no longer this worker's to end. When the database
    refuses the record itself (not an outage, which the reaper's re-queue covers), a plain one is recorded
    instead: a job whose end cannot be written would otherwise stay ``running`` until its lease expires
    and be retried as if its worker had been lost."""
    try:
        with ctx.db.session() as session:
            return jobs.finish(session, job_id, worker_id, status, error=error)
    except Exception as exc:
        if database_unavailable(exc) or error is None:
            raise
        log.exception("could not record the failure of job %s; recording a plain one", job_id)
        cause = {
            "type": "unrecorded_error",
            "message": f"the job failed with {error['type']}, whose message the database refused "
            f"({type(exc).__name__}); the worker's log has it",
        }
        with ctx.db.session() as session:
            return jobs.finish(session, job_id, worker_id, status, error=cause)


def _error(ctx: WorkerContext, type_: str, exc: BaseException) -> dict[str, str]:
    """An error as the job's owner sees it: without the server's own paths (blob store, work folders)."""
    message = str(exc)
    for root in sorted({ctx.settings.blob_root, ctx.settings.work_root, ctx.settings.data_dir}, key=str, reverse=True):
        message = re.sub(re.escape(str(root)) + r"/[^\s'\"]*", "<server file>", message)
    return {"type": type_, "message": message[:2000]}


def run_job(ctx: WorkerContext, job_id: str, worker_id: str) -> None:
    time_limit_s = ctx.settings.task_soft_time_limit_s
    deadline = time.monotonic() + time_limit_s
    with ctx.db.session() as session:
        if not jobs.claim(session, job_id, worker_id, ctx.settings.lease_s, time_limit_s):
            log.info("job %s is not claimable (duplicate delivery, canceled or running elsewhere)", job_id)
            return
    log.info("running job %s as %s", job_id, worker_id)
    with LeaseKeeper(ctx.db, job_id, worker_id, ctx.settings.lease_s) as lease:
        recorded = False  # whether this worker wrote the job's outcome
        try:
            _execute(ctx, job_id, worker_id, lease, deadline)
            recorded = True
        except (CancelledError, JobStopped):
            if not lease.lost.is_set():
                recorded = _fail(ctx, job_id, worker_id, JobStatus.CANCELED, None)
        except (JobTimedOut, SoftTimeLimitExceeded):
            recorded = _fail(
                ctx,
                job_id,
                worker_id,
                JobStatus.FAILED,
                {"type": "timeout", "message": f"the job ran past its time limit of {time_limit_s} s"},
            )
        except DatasetError as exc:
            recorded = _fail(ctx, job_id, worker_id, JobStatus.FAILED, _error(ctx, "dataset_invalid", exc))
        except quotas.StorageLimitExceeded as exc:
            recorded = _fail(ctx, job_id, worker_id, JobStatus.FAILED, _error(ctx, "storage_limit", exc))
        except Exception as exc:
            log.exception("job %s failed", job_id)
            recorded = _fail(ctx, job_id, worker_id, JobStatus.FAILED, _error(ctx, type(exc).__name__, exc))
    # Kept when the outcome could not be recorded (the database is down: this raised before here) or the
    # job was taken back by the reaper: its next worker resumes from it. A lease renewal that runs just
    # after this worker recorded the outcome also finds the job no longer running, so "lost" alone would
    # keep the folder of every job whose end landed between two renewals.
    if recorded or not lease.lost.is_set():
        shutil.rmtree(ctx.settings.work_root / job_id, ignore_errors=True)

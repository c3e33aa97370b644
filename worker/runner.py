"""Runs one job: claim it, run the engine with progress and cancellation wired to the database,
store the artifacts, record the outcome. Celery only calls :func:`run_job`."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from pydantic import TypeAdapter

from app.blobstore import BlobStore, LocalBlobStore
from app.core.config import Settings
from app.core.db import Database
from app.models import JobStatus
from app.schemas.jobs import JobCreate, PruneJobCreate
from app.services import datasets, jobs
from engine.data import DatasetError
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import EvalConfig, ProxyConfig, PruneConfig, SelectionConfig
from engine.progress import CancelledError, ProgressEvent, Tracker
from worker.artifacts import store_artifacts, write_prune_artifacts
from worker.lease import LeaseKeeper

log = logging.getLogger(__name__)
SPEC_ADAPTER: TypeAdapter[PruneJobCreate] = TypeAdapter(JobCreate)


@dataclass
class WorkerContext:
    settings: Settings
    db: Database
    blobs: BlobStore

    @classmethod
    def create(cls, settings: Settings) -> WorkerContext:
        return cls(settings, Database(settings.database_url), LocalBlobStore(settings.blob_root))


class JobStopped(Exception):
    """This worker lost the job (cancel flag, or the lease went to another worker)."""


class DatabaseTracker:
    """Engine progress -> job row and event log (throttled, always on a stage change); cancellation <- job row."""

    def __init__(self, ctx: WorkerContext, job_id: str, worker_id: str, lease: LeaseKeeper) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.worker_id = worker_id
        self.lease = lease
        self._stage: str | None = None
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._cancel = False

    def tracker(self) -> Tracker:
        return Tracker(on_progress=self.on_progress, should_cancel=self.should_cancel)

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
        if not self._cancel and now - self._last_cancel_check >= self.ctx.settings.cancel_check_interval_s:
            self._last_cancel_check = now
            with self.ctx.db.session() as session:
                self._cancel = jobs.is_cancel_requested(session, self.job_id)
        return self._cancel or self.lease.lost.is_set()


def prune_config(spec: PruneJobCreate) -> PruneConfig:
    keep = spec.keep_fraction if spec.keep_fraction is not None else float(spec.keep_count or 0)
    ev = spec.evaluation
    evaluation = (
        None
        if ev is None
        else EvalConfig(
            seeds=ev.seeds,
            epochs=ev.epochs,
            model=ev.model.value,
            width=ev.width,
            compare_random=ev.compare_random,
            full_data=ev.full_data,
            archs=[a.value for a in ev.archs],
        )
    )
    return PruneConfig(
        method=spec.method.value,
        selection=SelectionConfig(
            keep=keep,
            mode=spec.mode,
            window=spec.window,
            class_balanced=spec.class_balanced,
            ccs_hard_cutoff=spec.ccs_hard_cutoff,
            weights=spec.weights,
        ),
        proxy=ProxyConfig(
            model=spec.proxy.model.value,
            width=spec.proxy.width,
            epochs=spec.proxy.epochs,
            batch_size=spec.proxy.batch_size,
            lr=spec.proxy.lr,
        ),
        evaluation=evaluation,
        score_params=dict(spec.score_params),
        seed=spec.seed,
        device=spec.device,
    )


def summarize_report(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers a job record shows; the full report is the ``report.json`` artifact."""
    selection = report.get("selection", {})
    summary: dict[str, Any] = {
        key: selection[key] for key in ("kept", "total", "fraction", "class_kl") if key in selection
    }
    for name, stats in report.get("evaluation", {}).items():
        if name == "cross_arch":
            summary["cross_arch"] = {arch: {k: _mean_std(v) for k, v in runs.items()} for arch, runs in stats.items()}
        else:
            summary[f"{name}_accuracy"] = _mean_std(stats)
    summary["timings"] = report.get("timings", {})
    return summary


def _mean_std(stats: dict[str, Any]) -> dict[str, Any]:
    return {"mean": stats.get("mean"), "std": stats.get("std")}


def _execute(ctx: WorkerContext, job_id: str, worker_id: str, lease: LeaseKeeper) -> None:
    with ctx.db.session() as session:
        job = jobs.get_job(session, job_id)
        spec = SPEC_ADAPTER.validate_python(job.spec)
        record = datasets.get_dataset(session, spec.dataset_id)
    dataset = datasets.load_for_job(record, ctx.blobs, ctx.settings)
    tracker = DatabaseTracker(ctx, job_id, worker_id, lease)
    # A redelivered job finds its checkpoints here and resumes instead of starting over.
    workdir = ctx.settings.work_root / job_id
    workdir.mkdir(parents=True, exist_ok=True)
    result = run_prune(dataset, prune_config(spec), tracker.tracker(), workdir=workdir)
    with ctx.blobs.staging() as out_dir:
        paths = write_prune_artifacts(result, dataset, out_dir)
        with ctx.db.session() as session:
            # Artifacts and the final status commit together: a succeeded job always has its files.
            if not jobs.finish(
                session, job_id, worker_id, JobStatus.SUCCEEDED, metrics=summarize_report(result.report)
            ):
                raise JobStopped
            store_artifacts(session, ctx.blobs, job_id, paths)


def _fail(ctx: WorkerContext, job_id: str, worker_id: str, status: JobStatus, error: dict[str, str] | None) -> None:
    with ctx.db.session() as session:
        jobs.finish(session, job_id, worker_id, status, error=error)


def run_job(ctx: WorkerContext, job_id: str, worker_id: str) -> None:
    with ctx.db.session() as session:
        if not jobs.claim(session, job_id, worker_id, ctx.settings.lease_s):
            log.info("job %s is not claimable (duplicate delivery, canceled or running elsewhere)", job_id)
            return
    log.info("running job %s as %s", job_id, worker_id)
    with LeaseKeeper(ctx.db, job_id, worker_id, ctx.settings.lease_s) as lease:
        try:
            _execute(ctx, job_id, worker_id, lease)
        except (CancelledError, JobStopped):
            if not lease.lost.is_set():
                _fail(ctx, job_id, worker_id, JobStatus.CANCELED, None)
        except SoftTimeLimitExceeded:
            _fail(
                ctx,
                job_id,
                worker_id,
                JobStatus.FAILED,
                {"type": "timeout", "message": f"the job ran past {ctx.settings.task_soft_time_limit_s} s"},
            )
        except DatasetError as exc:
            _fail(ctx, job_id, worker_id, JobStatus.FAILED, {"type": "dataset_invalid", "message": str(exc)})
        except Exception as exc:
            log.exception("job %s failed", job_id)
            _fail(ctx, job_id, worker_id, JobStatus.FAILED, {"type": type(exc).__name__, "message": str(exc)[:2000]})
    if not lease.lost.is_set():
        shutil.rmtree(ctx.settings.work_root / job_id, ignore_errors=True)

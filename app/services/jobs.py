"""Job lifecycle. Every status change is a guarded ``UPDATE ... WHERE status = <expected>``, so a job
never moves backwards and two workers can never both run it; each change also appends a status event
in the same transaction, so event streams see exactly the transitions that happened."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.blobstore import BlobStore
from app.core.config import Settings
from app.core.ids import JOB, new_id
from app.core.problems import ProblemError, invalid_field, not_found
from app.models import ACTIVE_STATUSES, Dataset, DatasetStatus, Job, JobEvent, JobStatus, utcnow
from app.schemas.jobs import JobSpec, PruneJobCreate, PruneThenDistillJobCreate, SweepJobCreate
from app.services import blobs, quotas
from app.services.locks import lock_row
from app.services.pagination import page_newest_first
from engine.distill.start import ipc_problem


def queue_for(device: str, settings: Settings) -> str:
    """cuda -> gpu; auto -> gpu only when a GPU worker is deployed; cpu -> cpu. Without a GPU worker a cuda
    job is refused (422 ``device``): queued, it would wait forever, holding one of its tenant's job slots."""
    if device == "cuda" and not settings.gpu_worker_available:
        raise invalid_field(
            "device",
            "no GPU worker is deployed to run cuda jobs; set CONDENSE_GPU_WORKER_AVAILABLE=true where one is, "
            "or use auto or cpu",
        )
    if device == "cuda" or (device == "auto" and settings.gpu_worker_available):
        return "gpu"
    return "cpu"


def request_hash(spec: JobSpec) -> str:
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_against_dataset(session: Session, spec: JobSpec, tenant_id: str) -> Dataset:
    """The job's dataset, once the spec is checked against it."""
    dataset = session.get(Dataset, spec.dataset_id)
    if dataset is None or dataset.tenant_id != tenant_id:
        raise invalid_field("dataset_id", f"dataset {spec.dataset_id!r} does not exist")
    if dataset.status != DatasetStatus.READY:
        raise invalid_field("dataset_id", f"dataset {spec.dataset_id!r} is {dataset.status.value}, not ready yet")
    if isinstance(spec, PruneJobCreate):
        if spec.keep_count is not None and spec.keep_count > dataset.num_train:
            raise invalid_field(
                "keep_count", f"must be at most the {dataset.num_train} training samples of the dataset"
            )
        return dataset
    if isinstance(spec, SweepJobCreate):
        return dataset
    if problem := ipc_problem(spec.ipc, dataset.class_counts):
        raise invalid_field("ipc", problem)
    if isinstance(spec, PruneThenDistillJobCreate) and spec.window is not None:
        _check_window_holds_ipc(spec.window, spec.ipc, dataset.class_counts)
    return dataset


def _check_window_holds_ipc(window: tuple[float, float], ipc: int, class_counts: list[int]) -> None:
    """Each class's starting images come from its own ranking, so every class's window must hold ``ipc``."""
    lo, hi = window
    # The same bounds as the engine's window selection: ranks floor(lo * n) .. ceil(hi * n).
    holds = min(math.ceil(hi * n) - math.floor(lo * n) for n in class_counts)
    if holds < ipc:
        raise invalid_field(
            "window", f"[{lo}, {hi}] holds {holds} samples of the smallest class but ipc is {ipc}; widen it"
        )


def output_bytes_at_least(spec: JobSpec, dataset: Dataset) -> int:
    """A lower bound on the bytes of artifacts the job will store, from its spec and dataset alone (the
    submission's storage check): only files whose size is fixed by those, uncompressed, are counted.

    A prune job writes ``scores.npy`` (float64) and ``ranking.npy`` (int64), 8 bytes per training sample
    each; a distill job's ``synthetic.safetensors`` holds its ``ipc`` images per class as float32 and
    again as uint8, 5 bytes per pixel. A sweep's per-point selections are compressed, so it counts 0."""
    if isinstance(spec, PruneJobCreate):
        return 16 * dataset.num_train
    if isinstance(spec, SweepJobCreate):
        return 0
    return 5 * spec.ipc * len(dataset.classes) * math.prod(dataset.image_shape)


def add_event(
    session: Session,
    job_id: str,
    type_: str,
    *,
    stage: str | None = None,
    progress: float | None = None,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        JobEvent(
            job_id=job_id, type=type_, stage=stage, progress=progress, message=storable(message)[:1000], data=data or {}
        )
    )


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it: it refuses NUL in text, so an error quoting one (a hostile
    parameter name) is kept with the NUL escaped instead of failing the record."""
    return text.replace("\x00", "\\x00")


def _status_event(session: Session, job_id: str, status: JobStatus, message: str = "", **data: Any) -> None:
    add_event(session, job_id, "status", message=message or status.value, data={"status": status.value, **data})


@dataclass
class CreatedJob:
    job: Job
    created: bool


def create_job(
    session: Session, spec: JobSpec, settings: Settings, tenant_id: str, idempotency_key: str | None
) -> CreatedJob:
    """Commits the new job (the caller rings the doorbell after this returns). A retried request with the
    same Idempotency-Key and body gets the original job back, even past a limit; the same key with another
    body is refused. A job refused by a limit writes nothing, so its key stays free for a later retry."""
    body_hash = request_hash(spec)
    by_key = select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == idempotency_key)
    if idempotency_key:
        existing = session.scalar(by_key)
        if existing is not None:
            return CreatedJob(_same_request(existing, body_hash), created=False)
    # Shared with other job creations, exclusive of a deletion: the dataset checked below is still there
    # when the job commits, and a deletion that waited sees the job and refuses (409).
    lock_row(session, Dataset, spec.dataset_id, shared=True)
    dataset = _check_against_dataset(session, spec, tenant_id)
    quotas.check_active_jobs(session, settings, tenant_id)
    quotas.check_job_storage(session, settings, tenant_id, output_bytes_at_least(spec, dataset))
    job = Job(
        id=new_id(JOB),
        tenant_id=tenant_id,
        kind=spec.kind,
        status=JobStatus.QUEUED,
        dataset_id=spec.dataset_id,
        spec=spec.model_dump(mode="json"),
        queue=queue_for(spec.device, settings),
        progress=0.0,
        attempt=0,
        max_attempts=settings.max_attempts,
        cancel_requested=False,
        idempotency_key=idempotency_key,
        request_hash=body_hash,
    )
    session.add(job)
    _status_event(session, job.id, JobStatus.QUEUED)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent retry with the same key won the insert; any other conflict is not a retry.
        session.rollback()
        existing = session.scalar(by_key) if idempotency_key else None
        if existing is None:
            raise
        return CreatedJob(_same_request(existing, body_hash), created=False)
    return CreatedJob(job, created=True)


def _same_request(job: Job, body_hash: str) -> Job:
    if job.request_hash != body_hash:
        raise ProblemError(
            422,
            "this Idempotency-Key was already used with a different request body; use a new key",
            slug="idempotency-key-reused",
        )
    return job


def get_job(session: Session, job_id: str, *, tenant_id: str | None) -> Job:
    """``tenant_id`` None (workers only) finds any tenant's job; another tenant's id is "not found"."""
    job = session.get(Job, job_id, options=[selectinload(Job.artifacts)])
    if job is None or (tenant_id is not None and job.tenant_id != tenant_id):
        raise not_found("job", job_id)
    return job


def list_jobs(
    session: Session,
    tenant_id: str,
    *,
    status: JobStatus | None,
    kind: str | None,
    dataset_id: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Job], str | None]:
    query = select(Job).where(Job.tenant_id == tenant_id).options(selectinload(Job.artifacts))
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if dataset_id is not None:
        query = query.where(Job.dataset_id == dataset_id)
    return page_newest_first(session, query, Job.id, cursor, limit)


def list_events(session: Session, job_id: str, *, after: int, limit: int) -> list[JobEvent]:
    query = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after).order_by(JobEvent.id).limit(limit)
    return list(session.scalars(query))


def _transition(session: Session, job_id: str, expected: JobStatus, *, owner: str | None = None, **values: Any) -> bool:
    query = update(Job).where(Job.id == job_id, Job.status == expected)
    if owner is not None:
        query = query.where(Job.worker_id == owner)
    return session.execute(query.values(**values)).rowcount == 1  # type: ignore[attr-defined]


def request_cancel(session: Session, job_id: str, tenant_id: str) -> Job:
    """A queued job is canceled at once; a running one is flagged and its worker stops at its next check."""
    job = get_job(session, job_id, tenant_id=tenant_id)
    if job.status.is_terminal:
        raise ProblemError(
            409, f"job {job_id!r} already finished with status {job.status.value!r}", slug="job-finished"
        )
    if _transition(
        session, job_id, JobStatus.QUEUED, status=JobStatus.CANCELED, cancel_requested=True, finished_at=utcnow()
    ):
        _status_event(session, job_id, JobStatus.CANCELED, "canceled before it started")
    elif _transition(session, job_id, JobStatus.RUNNING, cancel_requested=True):
        add_event(session, job_id, "status", message="cancellation requested", data={"status": JobStatus.RUNNING.value})
    else:
        session.rollback()
        return request_cancel(session, job_id, tenant_id)  # it finished or started in between: decide again
    session.commit()
    session.refresh(job)
    return job


def delete_job(session: Session, store: BlobStore, job_id: str, tenant_id: str) -> None:
    """A finished job, its events and its artifacts' files; refused while it is queued or running."""
    job = get_job(session, job_id, tenant_id=tenant_id)
    if not job.status.is_terminal:
        raise ProblemError(
            409, f"job {job_id!r} is {job.status.value}; cancel it and wait for it to stop first", slug="job-active"
        )
    keys = [a.blob_key for a in job.artifacts]
    session.delete(job)
    blobs.release(session, store, keys)


def dataset_in_use(session: Session, dataset_id: str) -> bool:
    query = select(Job.id).where(Job.dataset_id == dataset_id, Job.status.in_(ACTIVE_STATUSES)).limit(1)
    return session.scalar(query) is not None


# --- worker side -------------------------------------------------------------------------------


def claim(session: Session, job_id: str, worker_id: str, lease_s: float, time_limit_s: float) -> bool:
    """``queued`` -> ``running`` for exactly one worker; a duplicate delivery finds nothing to claim.
    The attempt must finish within ``time_limit_s``; its deadline is recorded for the reaper."""
    now = utcnow()
    job = session.get(Job, job_id)
    if job is None or job.status != JobStatus.QUEUED or job.cancel_requested:
        return False
    attempt = job.attempt + 1
    claimed = _transition(
        session,
        job_id,
        JobStatus.QUEUED,
        status=JobStatus.RUNNING,
        attempt=attempt,
        worker_id=worker_id,
        lease_until=now + timedelta(seconds=lease_s),
        deadline_at=now + timedelta(seconds=time_limit_s),
        started_at=job.started_at or now,
        error=None,
    )
    if claimed:
        _status_event(session, job_id, JobStatus.RUNNING, f"attempt {attempt} started", attempt=attempt)
    return claimed


def renew_lease(session: Session, job_id: str, worker_id: str, lease_s: float) -> bool:
    """False when this worker no longer owns the job (the reaper took it back): the worker must stop."""
    return _transition(
        session, job_id, JobStatus.RUNNING, owner=worker_id, lease_until=utcnow() + timedelta(seconds=lease_s)
    )


def record_progress(
    session: Session, job_id: str, worker_id: str, stage: str, progress: float, message: str, metrics: dict[str, float]
) -> bool:
    if not _transition(session, job_id, JobStatus.RUNNING, owner=worker_id, stage=stage, progress=progress):
        return False
    add_event(session, job_id, "progress", stage=stage, progress=progress, message=message, data=metrics)
    return True


def is_cancel_requested(session: Session, job_id: str) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def finish(
    session: Session,
    job_id: str,
    worker_id: str,
    status: JobStatus,
    *,
    error: dict[str, str] | None = None,
    metrics: dict[str, Any] | None = None,
) -> bool:
    if error is not None:
        error = {key: storable(value) for key, value in error.items()}
    values: dict[str, Any] = {
        "status": status,
        "finished_at": utcnow(),
        "lease_until": None,
        "error": error,
        "metrics": metrics,
    }
    if status == JobStatus.SUCCEEDED:
        values |= {"progress": 1.0, "stage": "done"}
    if not _transition(session, job_id, JobStatus.RUNNING, owner=worker_id, **values):
        return False
    _status_event(session, job_id, status, error["message"] if error else "", **({"error": error} if error else {}))
    return True


def reap_expired(session: Session, now: datetime | None = None) -> list[str]:
    """Jobs whose worker stopped heart-beating: back to ``queued`` while attempts remain, else ``failed``;
    ``failed`` with a timeout at once when the worker was still alive at the deadline (the hard time limit
    killed it). Returns the re-queued ids; the caller rings their doorbells after committing."""
    now = now or utcnow()
    expired = session.scalars(select(Job).where(Job.status == JobStatus.RUNNING, Job.lease_until < now)).all()
    requeued = []
    for job in expired:
        lease_guard = {"owner": job.worker_id}
        if job.cancel_requested:
            if _transition(
                session,
                job.id,
                JobStatus.RUNNING,
                **lease_guard,
                status=JobStatus.CANCELED,
                finished_at=now,
                lease_until=None,
            ):
                _status_event(session, job.id, JobStatus.CANCELED, "canceled; its worker had stopped")
        elif job.attempt < job.max_attempts and not _overran(job):
            if _transition(
                session,
                job.id,
                JobStatus.RUNNING,
                **lease_guard,
                status=JobStatus.QUEUED,
                worker_id=None,
                lease_until=None,
                doorbell_at=None,
            ):
                _status_event(session, job.id, JobStatus.QUEUED, f"worker lost during attempt {job.attempt}; re-queued")
                requeued.append(job.id)
        else:
            if _overran(job):
                error = {"type": "timeout", "message": f"the job ran past its deadline, {job.deadline_at:%H:%M:%S} UTC"}
            else:
                error = {"type": "lease_expired", "message": f"the worker was lost {job.attempt} times; giving up"}
            if _transition(
                session,
                job.id,
                JobStatus.RUNNING,
                **lease_guard,
                status=JobStatus.FAILED,
                finished_at=now,
                lease_until=None,
                error=error,
            ):
                _status_event(session, job.id, JobStatus.FAILED, error["message"], error=error)
    return requeued


def _overran(job: Job) -> bool:
    # A worker renews its lease one lease ahead, so a lease reaching past the deadline means the worker
    # was alive at (or within one lease of) it: the time limit's hard kill, not a crash, ended the
    # attempt, and another attempt would only overrun again.
    return job.deadline_at is not None and job.lease_until is not None and job.lease_until > job.deadline_at


def unrung_jobs(session: Session, rung_before: datetime) -> list[tuple[str, str]]:
    """(id, queue) of queued jobs whose doorbell never reached the broker, or rang before ``rung_before``
    and may have been lost since (a broker restarted without persistence, a message taken and dropped)."""
    query = select(Job.id, Job.queue).where(
        Job.status == JobStatus.QUEUED, or_(Job.doorbell_at.is_(None), Job.doorbell_at < rung_before)
    )
    return [(row.id, row.queue) for row in session.execute(query)]


def mark_rung(session: Session, job_id: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(doorbell_at=utcnow()))


def rung_queued_jobs(session: Session) -> list[tuple[str, str, datetime]]:
    """(id, queue, doorbell_at) of the queued jobs whose doorbell reached the broker."""
    query = select(Job.id, Job.queue, Job.doorbell_at).where(
        Job.status == JobStatus.QUEUED, Job.doorbell_at.is_not(None)
    )
    return [(row.id, row.queue, row.doorbell_at) for row in session.execute(query)]


def take_lost_doorbell(session: Session, job_id: str, rung_at: datetime) -> bool:
    """Moves a queued job's ``doorbell_at`` on from ``rung_at``, the ring whose message the broker lost, for
    one caller only: False when it moved since (another reaper took it first) or the job left ``queued``."""
    query = update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.doorbell_at == rung_at)
    return session.execute(query.values(doorbell_at=utcnow())).rowcount == 1  # type: ignore[attr-defined]

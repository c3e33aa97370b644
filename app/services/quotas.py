"""Per-tenant limits: how many jobs may be queued or running at once, and how many bytes stored.

A tenant row's own limit wins over the service-wide default in the settings. Over a limit a request
is refused with 429 and a message that says what to free; a job whose artifacts would pass the storage
limit fails (error type ``storage_limit``) without keeping them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.problems import ProblemError
from app.models import ACTIVE_STATUSES, Artifact, Dataset, ExpertSet, Job, ProxyRun, Tenant
from app.services.locks import lock_row

WHAT_TO_FREE = (
    "Delete datasets, finished jobs (DELETE /v1/jobs/{id}) or proxy runs (DELETE /v1/proxy-runs/{id}) you no "
    "longer need, or ask an administrator for a higher limit"
)


class StorageLimitExceeded(Exception):
    """A finishing job's artifacts would pass its tenant's storage limit; the message says what to free."""


def _tenant(session: Session, tenant_id: str, *, lock: bool = False) -> Tenant:
    """``lock``: two submissions (or two finishing jobs) of one tenant queue here until the first commits,
    so both cannot pass a limit."""
    query = select(Tenant).where(Tenant.id == tenant_id)
    if not lock:
        return session.scalars(query).one()
    if session.get_bind().dialect.name == "sqlite":
        lock_row(session, Tenant, tenant_id)  # its single write lock, taken before the counts are read
    # Postgres: FOR NO KEY UPDATE, not FOR UPDATE, which would also hold up every insert of a row that
    # references the tenant: an upload holding the blob of a finishing job's identical artifact would wait
    # for the job's tenant lock while the job waits for that blob (a deadlock). SQLite ignores it.
    return session.scalars(query.with_for_update(key_share=True)).one()


def stored_bytes(session: Session, tenant_id: str, *, besides_job: str | None = None) -> int:
    """Uploaded dataset files, job artifacts, expert sets and proxy runs; built-in datasets store nothing.
    ``besides_job``: without the expert sets and proxy runs that job recorded (see :func:`check_job_output`)."""
    uploads = select(func.coalesce(func.sum(Dataset.size_bytes), 0)).where(
        Dataset.tenant_id == tenant_id, Dataset.blob_key.is_not(None)
    )
    artifacts = (
        select(func.coalesce(func.sum(Artifact.size_bytes), 0)).join(Job).where(Job.tenant_id == tenant_id)
    )
    reusable = []
    for model in (ExpertSet, ProxyRun):
        query = select(func.coalesce(func.sum(model.size_bytes), 0)).where(model.tenant_id == tenant_id)
        if besides_job is not None:
            query = query.where(or_(model.job_id.is_(None), model.job_id != besides_job))
        reusable.append(query)
    return sum(int(session.scalar(q) or 0) for q in (uploads, artifacts, *reusable))


@dataclass(frozen=True)
class _Storage:
    tenant: str
    used: int
    limit: int


def _storage(
    session: Session, settings: Settings, tenant_id: str, *, lock: bool = False, besides_job: str | None = None
) -> _Storage:
    tenant = _tenant(session, tenant_id, lock=lock)
    limit = tenant.max_stored_bytes or settings.tenant_max_stored_bytes
    return _Storage(tenant.name, stored_bytes(session, tenant_id, besides_job=besides_job), limit)


def _storage_problem(detail: str) -> ProblemError:
    return ProblemError(429, f"{detail}. {WHAT_TO_FREE}", slug="tenant-storage-limit", title="Storage limit reached")


def check_storage(session: Session, settings: Settings, tenant_id: str, incoming: int, *, lock: bool = False) -> None:
    """An upload of ``incoming`` bytes: refused when it would pass the limit. ``lock``: the tenant row stays
    locked until the transaction ends (the check in the transaction that records the upload, so it cannot
    pass the limit together with a finishing job or another upload)."""
    storage = _storage(session, settings, tenant_id, lock=lock)
    if storage.used + incoming > storage.limit:
        raise _storage_problem(
            f"tenant {storage.tenant!r} stores {storage.used} bytes; {incoming} more would pass its storage "
            f"limit (max_stored_bytes) of {storage.limit}"
        )


def check_job_storage(session: Session, settings: Settings, tenant_id: str, at_least: int) -> None:
    """A job submission, whose output size is not known yet: refused when the tenant already stores its
    limit or more, or when ``at_least`` (the bytes the job is sure to store, ``jobs.output_bytes_at_least``)
    would pass it. A job that passes it anyway while running fails when it finishes (:func:`check_job_output`).
    Locks the tenant row, as :func:`check_active_jobs` does."""
    storage = _storage(session, settings, tenant_id, lock=True)
    if storage.used >= storage.limit:
        raise _storage_problem(
            f"tenant {storage.tenant!r} stores {storage.used} bytes, at or past its storage limit "
            f"(max_stored_bytes) of {storage.limit}, so no job is accepted until some are freed"
        )
    if storage.used + at_least > storage.limit:
        raise _storage_problem(
            f"tenant {storage.tenant!r} stores {storage.used} bytes; this job's artifacts take at least "
            f"{at_least} more, which would pass its storage limit (max_stored_bytes) of {storage.limit}"
        )


def check_job_output(session: Session, settings: Settings, tenant_id: str, job_id: str, incoming: int) -> None:
    """A finishing job's ``incoming`` bytes of artifacts, checked in the transaction that records them
    (the tenant row stays locked until it commits, so two finishing jobs cannot both pass the limit).

    The expert sets and proxy runs this job recorded while it ran are left out of the sum: they are
    committed already and kept for reuse whatever becomes of the job, so failing it for them would free
    nothing and only throw its work away. They do count toward the limit everywhere else (the next
    submission or upload, other jobs' artifacts) and are freed on their own (``DELETE /v1/proxy-runs``).

    Raises :class:`StorageLimitExceeded` when the artifacts would pass the limit."""
    storage = _storage(session, settings, tenant_id, lock=True, besides_job=job_id)
    if storage.used + incoming > storage.limit:
        raise StorageLimitExceeded(
            f"the job's {incoming} bytes of artifacts would bring tenant {storage.tenant!r} to "
            f"{storage.used + incoming} bytes, past its storage limit (max_stored_bytes) of {storage.limit}, "
            f"so they were not kept. {WHAT_TO_FREE}, then submit the job again"
        )


def check_active_jobs(session: Session, settings: Settings, tenant_id: str) -> None:
    tenant = _tenant(session, tenant_id, lock=True)
    limit = tenant.max_active_jobs or settings.tenant_max_active_jobs
    active = session.scalar(
        select(func.count()).select_from(Job).where(Job.tenant_id == tenant_id, Job.status.in_(ACTIVE_STATUSES))
    )
    if (active or 0) >= limit:
        raise ProblemError(
            429,
            f"tenant {tenant.name!r} already has {active} queued or running jobs (limit {limit}); "
            "wait for one to finish or cancel one, then submit again",
            slug="tenant-job-limit",
            title="Too many active jobs",
            headers={"Retry-After": str(settings.quota_retry_after_s)},
        )

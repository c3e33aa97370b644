"""Per-tenant limits: how many jobs may be queued or running at once, and how many bytes stored.

A tenant row's own limit wins over the service-wide default in the settings. Over a limit the
request is refused with 429 and a message that says what to free.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.problems import ProblemError
from app.models import ACTIVE_STATUSES, Artifact, Dataset, ExpertSet, Job, ProxyRun, Tenant

WHAT_TO_FREE = (
    "Delete datasets, finished jobs (DELETE /v1/jobs/{id}) or proxy runs (DELETE /v1/proxy-runs/{id}) you no "
    "longer need, or ask an administrator for a higher limit"
)


def _tenant(session: Session, tenant_id: str, *, lock: bool = False) -> Tenant:
    query = select(Tenant).where(Tenant.id == tenant_id)
    # Postgres: two submissions of one tenant queue here, so both cannot pass a limit of one
    # slot; SQLite serialises writers anyway and ignores FOR UPDATE.
    return session.scalars(query.with_for_update() if lock else query).one()


def stored_bytes(session: Session, tenant_id: str) -> int:
    """Uploaded dataset files, job artifacts, expert sets and proxy runs; built-in datasets store nothing."""
    uploads = select(func.coalesce(func.sum(Dataset.size_bytes), 0)).where(
        Dataset.tenant_id == tenant_id, Dataset.blob_key.is_not(None)
    )
    artifacts = (
        select(func.coalesce(func.sum(Artifact.size_bytes), 0)).join(Job).where(Job.tenant_id == tenant_id)
    )
    reusable = [
        select(func.coalesce(func.sum(model.size_bytes), 0)).where(model.tenant_id == tenant_id)
        for model in (ExpertSet, ProxyRun)
    ]
    return sum(int(session.scalar(q) or 0) for q in (uploads, artifacts, *reusable))


@dataclass(frozen=True)
class _Storage:
    tenant: str
    used: int
    limit: int


def _storage(session: Session, settings: Settings, tenant_id: str, *, lock: bool = False) -> _Storage:
    tenant = _tenant(session, tenant_id, lock=lock)
    limit = tenant.max_stored_bytes or settings.tenant_max_stored_bytes
    return _Storage(tenant.name, stored_bytes(session, tenant_id), limit)


def _storage_problem(detail: str) -> ProblemError:
    return ProblemError(429, f"{detail}. {WHAT_TO_FREE}", slug="tenant-storage-limit", title="Storage limit reached")


def check_storage(session: Session, settings: Settings, tenant_id: str, incoming: int) -> None:
    """An upload of ``incoming`` bytes: refused when it would pass the limit."""
    storage = _storage(session, settings, tenant_id)
    if storage.used + incoming > storage.limit:
        raise _storage_problem(
            f"tenant {storage.tenant!r} stores {storage.used} bytes; {incoming} more would pass its storage "
            f"limit (max_stored_bytes) of {storage.limit}"
        )


def check_job_storage(session: Session, settings: Settings, tenant_id: str, at_least: int) -> None:
    """A job submission, whose output size is not known yet: refused when the tenant already stores its
    limit or more, or when ``at_least`` (the bytes the job is sure to store, ``jobs.output_bytes_at_least``)
    would pass it. Locks the tenant row, as :func:`check_active_jobs` does."""
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

"""Per-tenant limits: how many jobs may be queued or running at once, and how many bytes stored.

A tenant row's own limit wins over the service-wide default in the settings. Over a limit the
request is refused with 429 and a message that says what to free.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.problems import ProblemError
from app.models import ACTIVE_STATUSES, Artifact, Dataset, ExpertSet, Job, ProxyRun, Tenant


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


def check_storage(session: Session, settings: Settings, tenant_id: str, incoming: int) -> None:
    tenant = _tenant(session, tenant_id)
    limit = tenant.max_stored_bytes or settings.tenant_max_stored_bytes
    used = stored_bytes(session, tenant_id)
    if used + incoming > limit:
        raise ProblemError(
            429,
            f"tenant {tenant.name!r} stores {used} bytes; {incoming} more would pass its limit of {limit}. "
            "Delete datasets or finished jobs you no longer need, or ask an administrator for a higher limit",
            slug="tenant-storage-limit",
            title="Storage limit reached",
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

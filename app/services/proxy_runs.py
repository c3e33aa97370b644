"""Listing and deleting a tenant's recorded proxy runs (stored by ``app.services.reusable``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.blobstore import BlobStore
from app.core.problems import not_found
from app.models import ProxyRun
from app.services import blobs
from app.services.pagination import page_newest_first


def get_proxy_run(session: Session, run_id: str, tenant_id: str) -> ProxyRun:
    run = session.get(ProxyRun, run_id)
    if run is None or run.tenant_id != tenant_id:
        raise not_found("proxy run", run_id)
    return run


def list_proxy_runs(
    session: Session, tenant_id: str, cursor: str | None, limit: int, dataset_id: str | None = None
) -> tuple[list[ProxyRun], str | None]:
    query = select(ProxyRun).where(ProxyRun.tenant_id == tenant_id)
    if dataset_id is not None:
        query = query.where(ProxyRun.dataset_id == dataset_id)
    return page_newest_first(session, query, ProxyRun.id, cursor, limit)


def delete_proxy_run(session: Session, store: BlobStore, tenant_id: str, run_id: str) -> None:
    """A job reading it already holds its own copy; a later job trains the proxy again."""
    run = get_proxy_run(session, run_id, tenant_id)
    blob_key = run.blob_key
    session.delete(run)
    blobs.release(session, store, [blob_key])

"""``/v1/proxy-runs``: the recorded proxy runs later prune jobs reuse; list, read and delete them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import BlobsDep, CallerDep, ProxyRunIdPath, SessionDep, TextQuery
from app.schemas.proxy_runs import ProxyRunPublic, ProxyRunsPublic, proxy_run_public
from app.services import proxy_runs as service

router = APIRouter(prefix="/proxy-runs", tags=["proxy runs"])


@router.get("", response_model=ProxyRunsPublic)
def read_proxy_runs(
    caller: CallerDep,
    session: SessionDep,
    cursor: TextQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    dataset_id: TextQuery = None,
) -> ProxyRunsPublic:
    """List recorded proxy runs, newest first (optionally those of one dataset). A prune job on the same
    data with the same proxy settings and seed reuses one instead of training, whatever its score, policy or keep."""
    rows, next_cursor = service.list_proxy_runs(session, caller.tenant_id, cursor, limit, dataset_id)
    return ProxyRunsPublic(data=[proxy_run_public(r) for r in rows], next_cursor=next_cursor)


@router.get("/{run_id}", response_model=ProxyRunPublic)
def read_proxy_run(run_id: ProxyRunIdPath, caller: CallerDep, session: SessionDep) -> ProxyRunPublic:
    """Read one recorded proxy run."""
    return proxy_run_public(service.get_proxy_run(session, run_id, caller.tenant_id))


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_proxy_run(run_id: ProxyRunIdPath, caller: CallerDep, session: SessionDep, blobs: BlobsDep) -> None:
    """Delete a recorded proxy run and free its storage; the next job on its data trains the proxy again."""
    service.delete_proxy_run(session, blobs, caller.tenant_id, run_id)

"""``/v1/jobs``: submit, inspect, cancel and follow jobs, and download their artifacts."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from fastapi.responses import FileResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from app.api.deps import (
    ArtifactNamePath,
    BlobsDep,
    CallerDep,
    DatabaseDep,
    DoorbellDep,
    JobIdPath,
    SessionDep,
    SettingsDep,
    TextQuery,
)
from app.core.db import Database, database_unavailable
from app.core.problems import ProblemFileResponse
from app.models import JobEvent, JobStatus
from app.schemas.jobs import (
    ArtifactsPublic,
    JobCreate,
    JobEventPublic,
    JobEventsPublic,
    JobPublic,
    JobsPublic,
    artifacts_public,
    job_public,
)
from app.schemas.problems import problem_responses
from app.services import jobs as service
from app.services.artifacts import get_artifact, write_zip, zip_etag

router = APIRouter(prefix="/jobs", tags=["jobs"])
log = logging.getLogger(__name__)
EVENTS_PER_POLL = 500


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def create_job(
    spec: Annotated[JobCreate, Body()],
    response: Response,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
    doorbell: DoorbellDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JobPublic:
    """Queue a job; a retry with the same Idempotency-Key and body returns the original job."""
    result = service.create_job(session, spec, settings, caller.tenant_id, idempotency_key)
    if result.created:
        doorbell.ring(result.job.id, result.job.queue)  # only now: the row is committed
    response.headers["Location"] = f"/v1/jobs/{result.job.id}"
    return job_public(service.get_job(session, result.job.id, tenant_id=caller.tenant_id))


@router.get("", response_model=JobsPublic)
def read_jobs(
    caller: CallerDep,
    session: SessionDep,
    status: JobStatus | None = None,
    kind: TextQuery = None,
    dataset_id: TextQuery = None,
    cursor: TextQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobsPublic:
    """List jobs, newest first, optionally filtered."""
    rows, next_cursor = service.list_jobs(
        session, caller.tenant_id, status=status, kind=kind, dataset_id=dataset_id, cursor=cursor, limit=limit
    )
    return JobsPublic(data=[job_public(j) for j in rows], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobPublic)
def read_job(job_id: JobIdPath, caller: CallerDep, session: SessionDep) -> JobPublic:
    """Read one job: status, progress, error, metrics and artifacts."""
    return job_public(service.get_job(session, job_id, tenant_id=caller.tenant_id))


@router.delete(
    "/{job_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses({409: "still queued or running"})
)
def delete_job(job_id: JobIdPath, caller: CallerDep, session: SessionDep, blobs: BlobsDep) -> None:
    """Delete a finished job with its events and artifacts (frees the tenant's storage)."""
    service.delete_job(session, blobs, job_id, caller.tenant_id)


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=problem_responses({409: "already finished"}))
def cancel_job(job_id: JobIdPath, caller: CallerDep, session: SessionDep) -> JobPublic:
    """Cancel a queued job now, or ask a running job's worker to stop."""
    return job_public(service.request_cancel(session, job_id, caller.tenant_id))


@router.get("/{job_id}/events.json", response_model=JobEventsPublic)
def read_job_events(
    job_id: JobIdPath,
    caller: CallerDep,
    session: SessionDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JobEventsPublic:
    """List a job's events oldest first; pass ``next_cursor`` back as ``after``."""
    service.get_job(session, job_id, tenant_id=caller.tenant_id)
    rows = service.list_events(session, job_id, after=after, limit=limit)
    next_cursor = str(rows[-1].id) if len(rows) == limit else None
    return JobEventsPublic(data=[JobEventPublic.model_validate(r) for r in rows], next_cursor=next_cursor)


def _poll(db: Database, tenant_id: str, job_id: str, after: int) -> tuple[list[JobEvent], bool]:
    # Status first: the terminal status event commits with the status, so it is in the events read next.
    with db.session() as session:
        terminal = service.get_job(session, job_id, tenant_id=tenant_id).status.is_terminal
        return service.list_events(session, job_id, after=after, limit=EVENTS_PER_POLL), terminal


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def stream_job_events(
    job_id: JobIdPath,
    request: Request,
    caller: CallerDep,
    db: DatabaseDep,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0)] = 0,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
) -> EventSourceResponse:
    """Stream events as Server-Sent Events (``status``, ``progress`` and ``warning``); ends once the job has finished."""
    await run_in_threadpool(_poll, db, caller.tenant_id, job_id, 0)  # 404 before the stream starts, not inside it
    cursor = last_event_id if last_event_id is not None else after

    async def events() -> AsyncIterator[ServerSentEvent]:
        nonlocal cursor
        while not await request.is_disconnected():
            try:
                rows, terminal = await run_in_threadpool(_poll, db, caller.tenant_id, job_id, cursor)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                # End the stream cleanly instead of breaking it: the client reconnects after ``retry``
                # with Last-Event-ID and misses nothing.
                log.warning("database unavailable; ending the event stream of job %s: %s", job_id, exc)
                yield ServerSentEvent(comment="database unavailable", retry=settings.retry_after_s * 1000)
                return
            for row in rows:
                cursor = row.id
                yield ServerSentEvent(
                    JobEventPublic.model_validate(row).model_dump_json(), event=row.type, id=str(row.id)
                )
            if terminal and len(rows) < EVENTS_PER_POLL:
                return
            await anyio.sleep(settings.events_poll_interval_s)

    return EventSourceResponse(events(), ping=15)


@router.get(
    "/{job_id}/artifacts/{name}",
    response_class=FileResponse,
    responses={
        206: {"description": "partial content (Range)"},
        304: {"description": "not modified"},
        **problem_responses({400: "malformed Range", 416: "Range past the end of the file"}),
    },
)
def download_artifact(
    job_id: JobIdPath,
    name: ArtifactNamePath,
    caller: CallerDep,
    session: SessionDep,
    blobs: BlobsDep,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """Download an artifact; supports ETag/If-None-Match (sha256) and byte Ranges."""
    artifact = get_artifact(session, job_id, name, caller.tenant_id)
    etag = f'"{artifact.sha256}"'
    if if_none_match is not None and (
        if_none_match.strip() == "*" or etag in [t.strip() for t in if_none_match.split(",")]
    ):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    return ProblemFileResponse(
        blobs.path_for(artifact.blob_key),
        media_type=artifact.content_type,
        filename=artifact.name,
        headers={"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"},
    )


@router.get("/{job_id}/artifacts", response_model=ArtifactsPublic)
def read_artifacts(job_id: JobIdPath, caller: CallerDep, session: SessionDep) -> ArtifactsPublic:
    """List a job's artifacts: name, size, media type, sha256 and what each file is."""
    job = service.get_job(session, job_id, tenant_id=caller.tenant_id)
    return ArtifactsPublic(data=artifacts_public(job), zip_url=f"/v1/jobs/{job_id}/artifacts.zip")


@router.get(
    "/{job_id}/artifacts.zip",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "every artifact, under a folder named after the job"},
        304: {"description": "not modified"},
        **problem_responses({409: "the job has no artifacts yet"}),
    },
)
def download_artifacts_zip(
    job_id: JobIdPath,
    caller: CallerDep,
    session: SessionDep,
    blobs: BlobsDep,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """Download every artifact of a job in one zip; ETag/If-None-Match as for one artifact."""
    job = service.get_job(session, job_id, tenant_id=caller.tenant_id)
    etag = zip_etag(job)
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    folder = Path(tempfile.mkdtemp(prefix="condense-zip-"))
    try:
        path = write_zip(job, blobs, folder / f"{job_id}.zip")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(path, media_type="application/zip", filename=f"{job_id}.zip",
                        headers={"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"},
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


# HEAD (size and ETag without the body) for download managers; the GET operation documents both.
router.add_api_route("/{job_id}/artifacts/{name}", download_artifact, methods=["HEAD"], include_in_schema=False)

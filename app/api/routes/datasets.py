"""``/v1/datasets``: upload or register datasets, list, read and delete them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.deps import BlobsDep, CallerDep, DatasetIdPath, SessionDep, SettingsDep, TextQuery
from app.core.problems import ProblemError
from app.schemas.datasets import (
    BuiltinDatasetCreate,
    DatasetPublic,
    DatasetSamplesPublic,
    DatasetsPublic,
    SamplePublic,
    dataset_public,
)
from app.schemas.problems import problem_responses
from app.services import datasets as service
from app.services import quotas
from app.services.dataset_samples import dataset_samples
from app.services.uploads import receive_upload
from engine.data.formats import accepted_formats

router = APIRouter(prefix="/datasets", tags=["datasets"])

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"Either a multipart upload (`file`, optional `name`) of {accepted_formats()} (several files "
        'as one zip or tar(.gz) archive); or JSON `{"builtin": "digits"}` to register a dataset that ships with the '
        "engine. Jobs always reference the resulting dataset id.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}, "name": {"type": "string"}},
                }
            },
            "application/json": {"schema": BuiltinDatasetCreate.model_json_schema()},
        },
    }
}


@router.post(
    "",
    response_model=DatasetPublic,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"description": "the same content was registered before; its record is returned"},
        **problem_responses(
            {
                413: "upload or decoded dataset too large",
                415: "neither multipart/form-data nor application/json",
                422: "invalid dataset",
                429: "the tenant's storage limit is reached",
            }
        ),
    },
)
async def create_dataset(
    request: Request,
    response: Response,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
    blobs: BlobsDep,
) -> DatasetPublic:
    """Upload a dataset file, or register a built-in dataset by name."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = _parse_builtin(await request.body())
        record, created = await run_in_threadpool(
            service.register_builtin, session, settings, caller.tenant_id, body.builtin
        )
    elif content_type.startswith("multipart/form-data"):
        if (length := request.headers.get("content-length", "")).isdigit():
            # Refused before a byte is read; the multipart framing and the name field stay far below 64 KiB.
            file_at_least = max(0, int(length) - 64 * 1024)
            await run_in_threadpool(quotas.check_storage, session, settings, caller.tenant_id, file_at_least)
        with blobs.staging() as folder:
            upload = await receive_upload(
                content_type, request.headers.get("content-length"), request.stream(), folder, settings.max_upload_bytes
            )
            record, created = await run_in_threadpool(
                service.register_upload,
                session,
                blobs,
                settings,
                caller.tenant_id,
                upload,
                upload.fields.get("name") or None,
            )
    else:
        raise ProblemError(415, 'send multipart/form-data (a file) or application/json ({"builtin": ...})')
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["Location"] = f"/v1/datasets/{record.id}"
    return dataset_public(record)


def _parse_builtin(raw: bytes) -> BuiltinDatasetCreate:
    try:
        return BuiltinDatasetCreate.model_validate_json(raw)
    except ValidationError as exc:
        # Reported like FastAPI's own body errors, so the client sees one error format.
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc


@router.get("", response_model=DatasetsPublic)
def read_datasets(
    caller: CallerDep, session: SessionDep, cursor: TextQuery = None, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> DatasetsPublic:
    """List datasets, newest first."""
    rows, next_cursor = service.list_datasets(session, caller.tenant_id, cursor, limit)
    return DatasetsPublic(data=[dataset_public(r) for r in rows], next_cursor=next_cursor)


@router.get("/{dataset_id}", response_model=DatasetPublic)
def read_dataset(dataset_id: DatasetIdPath, caller: CallerDep, session: SessionDep) -> DatasetPublic:
    """Read one dataset."""
    return dataset_public(service.get_dataset(session, dataset_id, tenant_id=caller.tenant_id))


@router.get("/{dataset_id}/samples", response_model=DatasetSamplesPublic)
def read_dataset_samples(
    dataset_id: DatasetIdPath, caller: CallerDep, session: SessionDep, settings: SettingsDep, blobs: BlobsDep,
    per_class: Annotated[int, Query(ge=1, le=32)] = 8,
) -> DatasetSamplesPublic:
    """A few training images of each class, with the names of their source files or rows."""
    record = service.get_dataset(session, dataset_id, tenant_id=caller.tenant_id)
    return DatasetSamplesPublic(data=[SamplePublic(**s) for s in dataset_samples(record, blobs, settings, per_class)])


@router.delete(
    "/{dataset_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses({409: "a queued or running job uses it"}),
)
def delete_dataset(dataset_id: DatasetIdPath, caller: CallerDep, session: SessionDep, blobs: BlobsDep) -> None:
    """Delete a dataset and its file; refused while a queued or running job uses it."""
    service.delete_dataset(session, blobs, caller.tenant_id, dataset_id)

"""Dataset registration (uploads and built-ins), lookup and deletion.

Registration validates with the engine's own loaders before anything is recorded, so a dataset
that exists in the database is one a worker can load; a refused upload leaves no row and no blob.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.blobstore import BlobStore
from app.core.config import Settings
from app.core.ids import DATASET, new_id
from app.core.problems import ProblemError, invalid_field, not_found
from app.models import Baseline, Dataset, DatasetStatus, ProxyRun
from app.services import blobs, jobs, quotas
from app.services.locks import lock_row
from app.services.pagination import page_newest_first
from app.services.uploads import ReceivedUpload
from engine.data import (
    BUILTIN_DATASETS,
    DatasetError,
    DatasetSummary,
    DatasetTooLarge,
    ImageDataset,
    LoadLimits,
    inspect_dataset,
)
from engine.data.detect import BUILTIN_PREFIX
from engine.data.names import name_problem

_NAME_MAX_LENGTH: int = Dataset.__table__.c.name.type.length
_Read = TypeVar("_Read", ImageDataset, DatasetSummary)


def _problem(exc: DatasetError) -> ProblemError:
    status = 413 if isinstance(exc, DatasetTooLarge) else 422
    detail = exc.message + (f". {exc.hint}" if exc.hint else "")
    return ProblemError(
        status,
        detail,
        slug="dataset-invalid",
        title="The dataset cannot be used",
        errors=[{"field": exc.field, "message": exc.message, "hint": exc.hint}],
    )


def _load_limits(settings: Settings) -> LoadLimits:
    """The engine's limits with the ``dataset_max_*`` settings that are set."""
    given = {f.name: getattr(settings, f"dataset_{f.name}") for f in fields(LoadLimits)}
    return LoadLimits(**{name: value for name, value in given.items() if value is not None})


def read_with_settings(read: Callable[..., _Read], source: str | Path, settings: Settings, name: str | None) -> _Read:
    """``load_dataset`` (for jobs) or ``inspect_dataset`` (to register: no float32 copies) with the settings."""
    return read(
        source,
        limits=_load_limits(settings),
        test_fraction=settings.dataset_test_fraction,
        split_seed=settings.dataset_split_seed,
        name=name,
    )


def _display_name(name: str | None, filename: str) -> str:
    """The client's name, refused with a 422 on ``name`` if it cannot be stored; else the file's stem."""
    if name is None:
        # uploads.safe_filename leaves a short, plain stem; cut and checked anyway, as it becomes a column value.
        stem = filename.split(".", 1)[0][:_NAME_MAX_LENGTH]
        return stem if name_problem(stem, _NAME_MAX_LENGTH) is None else "upload"
    if problem := name_problem(name, _NAME_MAX_LENGTH):
        raise invalid_field(
            "name", f"the dataset name {problem}; use 1 to {_NAME_MAX_LENGTH} characters without control characters"
        )
    return name


def _record(
    summary: DatasetSummary,
    *,
    tenant_id: str,
    content_hash: str,
    size_bytes: int,
    blob_key: str | None = None,
    builtin: str | None = None,
) -> Dataset:
    return Dataset(
        id=new_id(DATASET),
        tenant_id=tenant_id,
        name=summary.name,
        format=summary.format,
        status=DatasetStatus.READY,
        content_hash=content_hash,
        builtin=builtin,
        blob_key=blob_key,
        size_bytes=size_bytes,
        num_train=summary.num_train,
        num_test=summary.num_test,
        classes=summary.classes,
        class_counts=summary.class_counts,
        test_class_counts=summary.test_class_counts,
        image_shape=list(summary.image_shape),
        split=summary.split.to_dict(),
    )


def _by_hash(session: Session, tenant_id: str, content_hash: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.content_hash == content_hash))


def _insert(session: Session, record: Dataset) -> tuple[Dataset, bool]:
    """Inserts, or returns the row a concurrent identical registration committed first."""
    session.add(record)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = _by_hash(session, record.tenant_id, record.content_hash)
        if existing is None:
            raise
        return existing, False
    return record, True


def register_upload(
    session: Session, store: BlobStore, settings: Settings, tenant_id: str, upload: ReceivedUpload, name: str | None
) -> tuple[Dataset, bool]:
    """Returns (record, created); the tenant's identical earlier upload is returned as it is."""
    name = _display_name(name, upload.filename)
    existing = _by_hash(session, tenant_id, upload.sha256)
    if existing is not None:
        return existing, False
    quotas.check_storage(session, settings, tenant_id, upload.size)
    try:
        summary = read_with_settings(inspect_dataset, upload.path, settings, name)
    except DatasetError as exc:
        raise _problem(exc) from exc
    suffix = "".join(Path(upload.filename).suffixes[-2:])
    try:
        # Again under the tenant's lock, held only from here to the commit (not while the file was read).
        quotas.check_storage(session, settings, tenant_id, upload.size, lock=True)
        blob = blobs.store(session, store, upload.path, suffix=suffix, sha256=upload.sha256)
        record = _record(summary, tenant_id=tenant_id, content_hash=upload.sha256, size_bytes=upload.size, blob_key=blob.key)
        return _insert(session, record)
    except BaseException:
        session.rollback()
        blobs.release(session, store, [store.key_for(upload.sha256, suffix)])
        raise


def register_builtin(session: Session, settings: Settings, tenant_id: str, builtin: str) -> tuple[Dataset, bool]:
    if builtin not in BUILTIN_DATASETS:
        raise invalid_field(
            "builtin", f"unknown built-in dataset {builtin!r}; choose one of: {', '.join(sorted(BUILTIN_DATASETS))}"
        )
    content_hash = BUILTIN_PREFIX + builtin
    existing = _by_hash(session, tenant_id, content_hash)
    if existing is not None:
        return existing, False
    summary = read_with_settings(inspect_dataset, content_hash, settings, builtin)
    record = _record(
        summary, tenant_id=tenant_id, content_hash=content_hash, size_bytes=summary.decoded_bytes, builtin=builtin
    )
    return _insert(session, record)


def get_dataset(session: Session, dataset_id: str, *, tenant_id: str | None) -> Dataset:
    """``tenant_id`` None (workers only) finds any tenant's dataset; another tenant's id is "not found"."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or (tenant_id is not None and dataset.tenant_id != tenant_id):
        raise not_found("dataset", dataset_id)
    return dataset


def list_datasets(session: Session, tenant_id: str, cursor: str | None, limit: int) -> tuple[list[Dataset], str | None]:
    return page_newest_first(session, select(Dataset).where(Dataset.tenant_id == tenant_id), Dataset.id, cursor, limit)


def delete_dataset(session: Session, store: BlobStore, tenant_id: str, dataset_id: str) -> None:
    dataset = get_dataset(session, dataset_id, tenant_id=tenant_id)
    # Locked before the in-use check, which a job created at the same moment would otherwise slip past
    # (and lose its dataset); job creation holds the same lock, so one of the two waits for the other.
    if not lock_row(session, Dataset, dataset_id):
        raise not_found("dataset", dataset_id)
    if jobs.dataset_in_use(session, dataset_id):
        raise ProblemError(
            409, f"dataset {dataset_id!r} is used by a queued or running job; cancel it first", slug="dataset-in-use"
        )
    # The proxy runs recorded on it are per-sample facts about its data, and the baselines measured on it
    # figures of its data: they go with it. (Its decoded-cache entries go at the workers' next reaper pass.)
    runs = list(session.scalars(select(ProxyRun).where(ProxyRun.dataset_id == dataset_id)))
    keys = [key for key in {dataset.blob_key, *(run.blob_key for run in runs)} if key is not None]
    for run in runs:
        session.delete(run)
    session.execute(delete(Baseline).where(Baseline.dataset_id == dataset_id))
    session.delete(dataset)
    blobs.release(session, store, keys)

"""Dataset registration (uploads and built-ins), lookup and deletion.

Registration validates with the engine's own loaders before anything is recorded, so a dataset
that exists in the database is one a worker can load; a refused upload leaves no row and no blob.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields, replace
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
    load_dataset,
)
from engine.data.cache import DecodedCache, cache_key
from engine.data.detect import BUILTIN_PREFIX
from engine.data.names import name_problem

log = logging.getLogger(__name__)
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


def _read(read: Callable[..., _Read], source: str | Path, settings: Settings, name: str | None) -> _Read:
    """``load_dataset`` (for jobs) or ``inspect_dataset`` (to register: no float32 copies) with the settings."""
    return read(
        source,
        limits=_load_limits(settings),
        test_fraction=settings.dataset_test_fraction,
        split_seed=settings.dataset_split_seed,
        name=name,
    )


def load_for_job(
    dataset: Dataset, store: BlobStore, settings: Settings, warn: Callable[[str], None] | None = None
) -> ImageDataset:
    """The same arrays and split the record describes (same source, fraction and seed). ``warn`` hears of a
    decoded-cache entry that failed its checks and was decoded again (the job records it as a warning)."""
    if dataset.blob_key and not store.exists(dataset.blob_key):
        # Said without the store's path, which is the server's business.
        raise DatasetError(
            f"the stored file of dataset {dataset.id!r} is missing", field="file", hint="upload the dataset again"
        )
    source: str | Path = BUILTIN_PREFIX + dataset.builtin if dataset.builtin else store.path_for(dataset.blob_key or "")
    if settings.dataset_cache_bytes == 0:
        return _read(load_dataset, source, settings, dataset.name)
    key = cache_key(dataset.content_hash, test_fraction=settings.dataset_test_fraction, split_seed=settings.dataset_split_seed)
    cache = DecodedCache(settings.dataset_cache_root, settings.dataset_cache_bytes)
    decoded = cache.get_or_load(key, lambda: _read(load_dataset, source, settings, dataset.name), warn)
    if (differs := _differs_from_record(decoded, dataset)) is not None:
        # An entry that passed its own hash yet is not what was registered was rewritten with a new hash:
        # never served; the source is decoded again.
        message = f"the decoded-cache entry {key} of dataset {dataset.id} differs from its record ({differs}); decoding again"
        log.warning(message)
        if warn is not None:
            warn(message)
        cache.discard(key)
        decoded = cache.get_or_load(key, lambda: _read(load_dataset, source, settings, dataset.name))
        if (differs := _differs_from_record(decoded, dataset)) is not None:
            raise DatasetError(f"dataset {dataset.id!r} no longer decodes to what was registered: {differs}",
                               field="file", hint="upload the dataset again")
    # The same bytes registered under another name (another tenant's upload) share the entry.
    return replace(decoded, name=dataset.name)


def _differs_from_record(decoded: ImageDataset, record: Dataset) -> str | None:
    """Which of the registered sizes, classes, class counts and image shape ``decoded`` does not match."""
    summary = decoded.summary()
    compared = ("num_train", "num_test", "classes", "class_counts", "test_class_counts", "image_shape")
    return next((f"{name} {summary[name]} where {getattr(record, name)} was registered" for name in compared
                 if summary[name] != getattr(record, name)), None)


def purge_decoded_cache(session: Session, settings: Settings) -> list[str]:
    """Deletes this host's decoded-cache entries of data no tenant has registered any more (a worker runs it
    every reaper pass, so a deleted dataset's decoded pixels are gone within ``reaper_interval_s``)."""
    if settings.dataset_cache_bytes == 0 or not settings.dataset_cache_root.is_dir():
        return []

    def registered(contents: set[str]) -> set[str]:
        return set(session.scalars(select(Dataset.content_hash).where(Dataset.content_hash.in_(contents))))

    return DecodedCache(settings.dataset_cache_root, settings.dataset_cache_bytes).purge(registered)


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
        summary = _read(inspect_dataset, upload.path, settings, name)
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
    summary = _read(inspect_dataset, content_hash, settings, builtin)
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

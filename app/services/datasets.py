"""Dataset registration (uploads and built-ins), lookup and deletion.

Registration validates with the engine's own loaders before anything is recorded, so a dataset
that exists in the database is one a worker can load; a refused upload leaves no row and no blob.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.blobstore import BlobStore
from app.core.config import Settings
from app.core.ids import new_id
from app.core.problems import ProblemError, invalid_field, not_found
from app.models import Artifact, Dataset, DatasetStatus, ExpertSet
from app.services import jobs
from app.services.pagination import page_newest_first
from app.services.uploads import ReceivedUpload
from engine.data import BUILTIN_DATASETS, DatasetError, DatasetTooLarge, LoadLimits, load_dataset
from engine.data.dataset import ImageDataset

BUILTIN_PREFIX = "builtin:"


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


def _load(source: str | Path, settings: Settings, name: str | None = None) -> ImageDataset:
    return load_dataset(
        source,
        limits=LoadLimits(),
        test_fraction=settings.dataset_test_fraction,
        split_seed=settings.dataset_split_seed,
        name=name,
    )


def load_for_job(dataset: Dataset, store: BlobStore, settings: Settings) -> ImageDataset:
    """The same arrays and split the record describes (same source, fraction and seed)."""
    source: str | Path = BUILTIN_PREFIX + dataset.builtin if dataset.builtin else store.path_for(dataset.blob_key or "")
    return _load(source, settings, dataset.name)


def _record(
    ds: ImageDataset, *, content_hash: str, size_bytes: int, blob_key: str | None = None, builtin: str | None = None
) -> Dataset:
    summary = ds.summary()
    return Dataset(
        id=new_id("ds"),
        name=summary["name"],
        format=summary["format"],
        status=DatasetStatus.READY,
        content_hash=content_hash,
        builtin=builtin,
        blob_key=blob_key,
        size_bytes=size_bytes,
        num_train=summary["num_train"],
        num_test=summary["num_test"],
        classes=summary["classes"],
        class_counts=summary["class_counts"],
        test_class_counts=summary["test_class_counts"],
        image_shape=summary["image_shape"],
        split=summary["split"],
    )


def _by_hash(session: Session, content_hash: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.content_hash == content_hash))


def _insert(session: Session, record: Dataset) -> tuple[Dataset, bool]:
    """Inserts, or returns the row a concurrent identical registration committed first."""
    session.add(record)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = _by_hash(session, record.content_hash)
        if existing is None:
            raise
        return existing, False
    return record, True


def register_upload(
    session: Session, store: BlobStore, settings: Settings, upload: ReceivedUpload, name: str | None
) -> tuple[Dataset, bool]:
    """Returns (record, created); an identical earlier upload is returned as it is."""
    existing = _by_hash(session, upload.sha256)
    if existing is not None:
        return existing, False
    try:
        ds = _load(upload.path, settings, name or upload.filename.split(".", 1)[0])
    except DatasetError as exc:
        raise _problem(exc) from exc
    suffix = "".join(Path(upload.filename).suffixes[-2:])
    blob = store.put_file(upload.path, suffix=suffix, sha256=upload.sha256, move=True)
    try:
        return _insert(session, _record(ds, content_hash=upload.sha256, size_bytes=upload.size, blob_key=blob.key))
    except BaseException:
        session.rollback()
        if not blob_referenced(session, blob.key):
            store.delete(blob.key)
        raise


def register_builtin(session: Session, settings: Settings, builtin: str) -> tuple[Dataset, bool]:
    if builtin not in BUILTIN_DATASETS:
        raise invalid_field(
            "builtin", f"unknown built-in dataset {builtin!r}; choose one of: {', '.join(sorted(BUILTIN_DATASETS))}"
        )
    content_hash = BUILTIN_PREFIX + builtin
    existing = _by_hash(session, content_hash)
    if existing is not None:
        return existing, False
    ds = _load(content_hash, settings, builtin)
    return _insert(
        session,
        _record(ds, content_hash=content_hash, size_bytes=int(ds.x_train.nbytes + ds.x_test.nbytes), builtin=builtin),
    )


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise not_found("dataset", dataset_id)
    return dataset


def list_datasets(session: Session, cursor: str | None, limit: int) -> tuple[list[Dataset], str | None]:
    return page_newest_first(session, select(Dataset), Dataset.id, cursor, limit)


def delete_dataset(session: Session, store: BlobStore, dataset_id: str) -> None:
    dataset = get_dataset(session, dataset_id)
    if jobs.dataset_in_use(session, dataset_id):
        raise ProblemError(
            409, f"dataset {dataset_id!r} is used by a queued or running job; cancel it first", slug="dataset-in-use"
        )
    blob_key = dataset.blob_key
    session.delete(dataset)
    session.commit()
    # Blobs are content-addressed: an artifact with the same bytes (a coreset uploaded back as a
    # dataset) shares this one, and must keep it.
    if blob_key and not blob_referenced(session, blob_key):
        store.delete(blob_key)


def blob_referenced(session: Session, key: str) -> bool:
    """Whether any dataset, artifact or expert set row points at blob ``key``."""
    return any(
        session.scalar(select(model.blob_key).where(model.blob_key == key).limit(1)) is not None
        for model in (Dataset, Artifact, ExpertSet)
    )

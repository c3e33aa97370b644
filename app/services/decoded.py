"""A registered dataset as a job reads it: the same arrays and split its record describes, decoded once per host
(the decoded cache) and checked against the record. Workers use it; the API process, which only registers and
describes datasets, does not (so it imports no torch)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.blobstore import BlobStore
from app.core.config import Settings
from app.models import Dataset
from app.services.datasets import read_with_settings
from engine.data import DatasetError, ImageDataset, load_dataset
from engine.data.cache import DecodedCache, cache_key
from engine.data.detect import BUILTIN_PREFIX

log = logging.getLogger(__name__)


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
        return read_with_settings(load_dataset, source, settings, dataset.name)
    key = cache_key(dataset.content_hash, test_fraction=settings.dataset_test_fraction, split_seed=settings.dataset_split_seed)
    cache = DecodedCache(settings.dataset_cache_root, settings.dataset_cache_bytes)
    decoded = cache.get_or_load(key, lambda: read_with_settings(load_dataset, source, settings, dataset.name), warn)
    if (differs := _differs_from_record(decoded, dataset)) is not None:
        # An entry that passed its own hash yet is not what was registered was rewritten with a new hash:
        # never served; the source is decoded again.
        message = f"the decoded-cache entry {key} of dataset {dataset.id} differs from its record ({differs}); decoding again"
        log.warning(message)
        if warn is not None:
            warn(message)
        cache.discard(key)
        decoded = cache.get_or_load(key, lambda: read_with_settings(load_dataset, source, settings, dataset.name))
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

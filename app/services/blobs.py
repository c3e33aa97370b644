"""Releasing content-addressed blobs, which several rows (of any tenant) may share."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.blobstore import BlobStore
from app.models import Artifact, Dataset, ExpertSet


def blob_referenced(session: Session, key: str) -> bool:
    """Whether any dataset, artifact or expert set row points at blob ``key``."""
    return any(
        session.scalar(select(model.blob_key).where(model.blob_key == key).limit(1)) is not None
        for model in (Dataset, Artifact, ExpertSet)
    )


def release(session: Session, store: BlobStore, keys: Iterable[str]) -> None:
    """Deletes the blobs no row references any more; call after committing the rows' deletion.
    A coreset uploaded back as a dataset, or the same upload by two tenants, shares one blob."""
    for key in set(keys):
        if not blob_referenced(session, key):
            store.delete(key)

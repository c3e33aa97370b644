"""Adding and releasing references to content-addressed blobs, which several rows (of any tenant) may share.

Both sides lock the blob's ``blobs`` row first (``hold``), so they cannot interleave: a file is deleted
only by a transaction that holds the lock and sees no reference, and a reference is committed only by
one that held the lock while it made sure the file was there. Without the lock, a dataset deleted
while another tenant uploaded the same bytes lost its file: the upload saw the file and kept it, the
deletion saw no committed reference and removed it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.blobstore import Blob, BlobStore, sha256_file
from app.models import Artifact, Dataset, ExpertSet, ProxyRun, StoredBlob
from app.services.locks import insert_if_absent, lock_row


def hold(session: Session, key: str) -> None:
    """Locks blob ``key`` (creating its row) until the transaction ends: until then nobody deletes its file."""
    while True:
        session.execute(insert_if_absent(session, StoredBlob, key=key))
        if lock_row(session, StoredBlob, key):
            return
        # A release deleted the row between the insert and the lock (PostgreSQL): insert it again.


def store(session: Session, blobs: BlobStore, src: Path, *, suffix: str = "", sha256: str | None = None) -> Blob:
    """Moves ``src`` into the store under its content key, with the blob held; call it in the transaction
    that commits the reference, and commit (or :func:`release` on failure) soon: the lock is held till then.
    Several blobs in one transaction must be stored in key order, the order in which releases lock them."""
    digest = sha256 or sha256_file(src)
    hold(session, blobs.key_for(digest, suffix))
    return blobs.put_file(src, suffix=suffix, sha256=digest, move=True)


def blob_referenced(session: Session, key: str) -> bool:
    """Whether any dataset, artifact, expert set or proxy run row points at blob ``key``."""
    return any(
        session.scalar(select(model.blob_key).where(model.blob_key == key).limit(1)) is not None
        for model in (Dataset, Artifact, ExpertSet, ProxyRun)
    )


def release(session: Session, blobs: BlobStore, keys: Iterable[str]) -> None:
    """Commits the session's pending changes (deleting the rows that referenced ``keys``) together with
    the deletion of every one of those blobs that no row references any more.

    Each such file is withdrawn from its key under the lock, before the commit, and purged after it;
    if the commit fails, it is put back."""
    session.flush()
    withdrawn: list[tuple[str, str]] = []
    try:
        for key in sorted(set(keys)):  # one order for every transaction, so two cannot deadlock
            hold(session, key)
            if not blob_referenced(session, key):
                session.execute(delete(StoredBlob).where(StoredBlob.key == key))
                if (token := blobs.withdraw(key)) is not None:
                    withdrawn.append((key, token))
        session.commit()
    except BaseException:
        session.rollback()
        for key, token in withdrawn:
            blobs.restore(key, token)
        raise
    for _, token in withdrawn:
        blobs.purge(token)


def discard_damaged(session: Session, blobs: BlobStore, key: str, row: Any | None) -> None:
    """Deletes ``row`` (the record that found blob ``key`` damaged, if it still points there) and the file
    itself, whatever else references it: its bytes are not the content its key names, so no referent can
    use it (they find it missing and compute or upload it again), and a later store of the true content
    under the same key must find the key free rather than keep the damaged file. Commits."""
    hold(session, key)
    if row is not None and row.blob_key == key:
        session.delete(row)
    session.flush()
    token = blobs.withdraw(key)
    try:
        session.commit()
    except BaseException:
        session.rollback()
        if token is not None:
            blobs.restore(key, token)
        raise
    if token is not None:
        blobs.purge(token)

"""Adding and releasing references to content-addressed blobs, which several rows (of any tenant) may share.

Both sides lock the blob's ``blobs`` row first (``hold``), so they cannot interleave: a file is deleted
only by a transaction that holds the lock and sees no reference, and a reference is committed only by
one that held the lock while it made sure the file was there. Without the lock, a dataset deleted
while another tenant uploaded the same bytes lost its file: the upload saw the file and kept it, the
deletion saw no committed reference and removed it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.blobstore import Blob, BlobStore, sha256_file
from app.models import Artifact, Dataset, ExpertSet, ProxyRun, StoredBlob
from app.services.locks import lock_row


def hold(session: Session, key: str) -> None:
    """Locks blob ``key`` (creating its row) until the transaction ends: until then nobody deletes its file."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    while True:
        session.execute(insert(StoredBlob).values(key=key).on_conflict_do_nothing())
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

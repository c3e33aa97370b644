"""Records a job's files as blobs. The files are the engine's own (``PruneResult.write``, ``SweepResult.write``,
``DistillResult.write``), the same set ``condense prune`` and ``condense distill`` write."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from app.blobstore import BlobStore, sha256_file
from app.models import Artifact
from app.services import blobs as stored_blobs

CONTENT_TYPES = {
    ".npy": "application/octet-stream",
    ".safetensors": "application/octet-stream",
    ".npz": "application/zip",
    ".zip": "application/zip",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".png": "image/png",
}


def store_artifacts(session: Session, blobs: BlobStore, job_id: str, paths: list[Path]) -> None:
    """Moves each file into the blob store (atomic put) and adds its row to the caller's transaction,
    which holds each blob until it commits (so a concurrent release cannot delete a shared one)."""
    digests = {path: sha256_file(path) for path in paths}
    for path in sorted(paths, key=lambda p: blobs.key_for(digests[p], p.suffix)):
        blob = stored_blobs.store(session, blobs, path, suffix=path.suffix, sha256=digests[path])
        session.add(
            Artifact(
                job_id=job_id,
                name=path.name,
                blob_key=blob.key,
                sha256=blob.sha256,
                size_bytes=blob.size,
                content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
            )
        )

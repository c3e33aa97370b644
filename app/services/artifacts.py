"""Artifact lookup for downloads, and a job's artifacts in one zip."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.blobstore import BlobStore
from app.core.problems import ProblemError, not_found
from app.models import Artifact, Job
from app.services.jobs import get_job


def get_artifact(session: Session, job_id: str, name: str, tenant_id: str) -> Artifact:
    get_job(session, job_id, tenant_id=tenant_id)  # an unknown job is reported as such, not as a missing artifact
    artifact = session.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))
    if artifact is None:
        raise not_found("artifact", name)
    return artifact


def zip_etag(job: Job) -> str:
    """The zip's ETag: a digest of its members' names and sha256s (the same files give the same zip)."""
    listing = "\n".join(f"{a.name}:{a.sha256}" for a in sorted(job.artifacts, key=lambda a: a.name))
    return f'"zip-{hashlib.sha256(listing.encode()).hexdigest()}"'


def write_zip(job: Job, blobs: BlobStore, path: Path) -> Path:
    """Every artifact of ``job`` into the zip ``path``, stored as they are (most are compressed already)."""
    if not job.artifacts:
        raise ProblemError(409, f"job {job.id!r} has no artifacts (yet); wait until it has succeeded",
                           slug="no-artifacts")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for artifact in sorted(job.artifacts, key=lambda a: a.name):
            archive.write(blobs.path_for(artifact.blob_key), arcname=f"{job.id}/{artifact.name}")
    return path

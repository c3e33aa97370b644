"""Artifact lookup for downloads."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.problems import not_found
from app.models import Artifact
from app.services.jobs import get_job


def get_artifact(session: Session, job_id: str, name: str, tenant_id: str) -> Artifact:
    get_job(session, job_id, tenant_id=tenant_id)  # an unknown job is reported as such, not as a missing artifact
    artifact = session.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))
    if artifact is None:
        raise not_found("artifact", name)
    return artifact

"""Expert trajectories, recorded proxy runs and evaluation baselines as reusable assets, per tenant.

The files are content-addressed blobs like every other file; a table per kind (``expert_sets``,
``proxy_runs``) maps the engine's key (a hash of everything the file depends on) to the blob, so a later
job with the same key loads the file instead of training it again. Baselines are a few numbers each and
live in their table (``baselines``) as JSON.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.blobstore import BlobStore, sha256_file
from app.core.db import Database
from app.core.ids import PROXY_RUN, new_id
from app.models import Baseline, ExpertSet, ProxyRun
from app.services import blobs

SUFFIX = ".safetensors"


class BlobFileStore:
    """One job's view of its tenant's stored files of one kind (implements ``engine.store.FileStore``).

    Attributes:
        reused_from_job: after a successful ``get``, the job that trained the file (None when that job
            is gone, or when nothing was reused).
    """

    model: ClassVar[type[ExpertSet] | type[ProxyRun]]

    def __init__(self, db: Database, blobs: BlobStore, job_id: str, tenant_id: str) -> None:
        self.db = db
        self.blobs = blobs
        self.job_id = job_id
        self.tenant_id = tenant_id
        self.reused_from_job: str | None = None

    def _row(self, session: Session, key: str) -> Any:
        model = self.model
        return session.scalars(select(model).where(model.tenant_id == self.tenant_id, model.key == key)).one_or_none()

    def _new_row(self, key: str) -> Any:
        return self.model(tenant_id=self.tenant_id, key=key)

    def get(self, key: str, dest: Path) -> bool:
        with self.db.session() as session:
            row = self._row(session, key)
            if row is None:
                return False
            blob_key, trained_by = row.blob_key, row.job_id
        if not self.blobs.exists(blob_key):  # the blob volume lost it: the job trains it again
            return False
        with self.blobs.open(blob_key) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out)
        self.reused_from_job = trained_by
        return True

    def put(self, key: str, src: Path) -> None:
        with self.blobs.staging() as folder:
            # A copy, not a move: the engine still owns (and cleans up) its file. Made before the
            # transaction, so the blob's lock is held only for the rename into place.
            copy = folder / src.name
            shutil.copyfile(src, copy)
            digest = sha256_file(copy)
            try:
                self._record(key, copy, digest)
            except IntegrityError:
                with self.db.session() as session:
                    if self._row(session, key) is None:
                        raise
                    # A concurrent job with the same key stored its file first; either serves.
                    blobs.release(session, self.blobs, [self.blobs.key_for(digest, SUFFIX)])

    def _record(self, key: str, copy: Path, digest: str) -> None:
        with self.db.session() as session:
            blob = blobs.store(session, self.blobs, copy, suffix=SUFFIX, sha256=digest)
            # An existing row means its blob was lost and the file was trained again: replace it.
            row = self._row(session, key) or self._new_row(key)
            replaced = row.blob_key if row.blob_key != blob.key else None
            row.blob_key, row.sha256, row.size_bytes, row.job_id = blob.key, blob.sha256, blob.size, self.job_id
            session.add(row)
            if replaced:
                blobs.release(session, self.blobs, [replaced])


class BlobExpertStore(BlobFileStore):
    """Expert trajectories (``engine.distill.experts``)."""

    model = ExpertSet


class BlobProxyRunStore(BlobFileStore):
    """Recorded proxy runs (``engine.pipeline.proxy_runs``), listed with the dataset and inputs they came from."""

    model = ProxyRun

    def __init__(self, db: Database, blobs: BlobStore, job_id: str, tenant_id: str, dataset_id: str,
                 summary: dict[str, Any]) -> None:
        super().__init__(db, blobs, job_id, tenant_id)
        self.dataset_id = dataset_id
        self.summary = summary

    def _new_row(self, key: str) -> ProxyRun:
        return ProxyRun(id=new_id(PROXY_RUN), tenant_id=self.tenant_id, key=key, dataset_id=self.dataset_id,
                        summary=self.summary)


class DatabaseBaselineStore:
    """A tenant's random-subset and full-data accuracies (implements ``engine.evaluate.baselines.BaselineStore``)."""

    def __init__(self, db: Database, tenant_id: str) -> None:
        self.db = db
        self.tenant_id = tenant_id

    def get(self, key: str) -> dict[str, Any] | None:
        with self.db.session() as session:
            row = session.get(Baseline, (self.tenant_id, key))
            return None if row is None else dict(row.stats)

    def put(self, key: str, stats: dict[str, Any]) -> None:
        try:
            with self.db.session() as session:
                session.add(Baseline(tenant_id=self.tenant_id, key=key, stats=stats))
        except IntegrityError:
            pass  # a concurrent job measured the same baseline first: the same protocol gives the same figures

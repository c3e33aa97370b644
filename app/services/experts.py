"""Expert trajectories as a reusable asset: the engine's ``ExpertStore`` on the blob store.

The trajectories are content-addressed blobs like every other file; the ``expert_sets`` table maps
the engine's expert key (a hash of the exact training data, model, expert training config, data
scheduler and seed) to the blob, so a later job with the same key loads them instead of training.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from app.blobstore import BlobStore, sha256_file
from app.core.db import Database
from app.models import ExpertSet
from app.services import blobs

EXPERTS_SUFFIX = ".safetensors"


class BlobExpertStore:
    """One job's view of its tenant's expert sets (implements ``engine.distill.experts.ExpertStore``).

    Attributes:
        reused_from_job: after a successful ``get``, the job that trained the experts (None when
            that job is gone, or when nothing was reused).
    """

    def __init__(self, db: Database, blobs: BlobStore, job_id: str, tenant_id: str) -> None:
        self.db = db
        self.blobs = blobs
        self.job_id = job_id
        self.tenant_id = tenant_id
        self.reused_from_job: str | None = None

    def get(self, key: str, dest: Path) -> bool:
        with self.db.session() as session:
            row = session.get(ExpertSet, (self.tenant_id, key))
            if row is None:
                return False
            blob_key, trained_by = row.blob_key, row.job_id
        if not self.blobs.exists(blob_key):  # the blob volume lost it: the job trains them again
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
                    if session.get(ExpertSet, (self.tenant_id, key)) is None:
                        raise
                    # A concurrent job with the same key stored its experts first; either set serves.
                    blobs.release(session, self.blobs, [self.blobs.key_for(digest, EXPERTS_SUFFIX)])

    def _record(self, key: str, copy: Path, digest: str) -> None:
        with self.db.session() as session:
            blob = blobs.store(session, self.blobs, copy, suffix=EXPERTS_SUFFIX, sha256=digest)
            # An existing row means its blob was lost and the experts were retrained: replace it.
            row = session.get(ExpertSet, (self.tenant_id, key)) or ExpertSet(tenant_id=self.tenant_id, key=key)
            replaced = row.blob_key if row.blob_key != blob.key else None
            row.blob_key, row.sha256, row.size_bytes, row.job_id = blob.key, blob.sha256, blob.size, self.job_id
            session.add(row)
            if replaced:
                blobs.release(session, self.blobs, [replaced])

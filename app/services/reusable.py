"""Expert trajectories, recorded proxy runs and evaluation baselines as reusable assets, per tenant.

The files are content-addressed blobs like every other file; a table per kind (``expert_sets``,
``proxy_runs``) maps the engine's key (a hash of everything the file depends on) to the blob, so a later
job with the same key loads the file instead of training it again. Baselines are a few numbers each and
live in their table (``baselines``) as JSON.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.blobstore import BlobStore, copy_and_hash, sha256_file
from app.core.db import Database
from app.core.periodic import Periodic
from app.core.ids import PROXY_RUN, new_id
from app.models import Baseline, ExpertSet, ProxyRun, ReuseClaim, utcnow
from app.services import blobs
from app.services.locks import insert_if_absent
from engine.store import WAIT_POLL_S, StoredFileDamaged, Waiting

SUFFIX = ".safetensors"
log = logging.getLogger(__name__)


class BlobFileStore:
    """One job's view of its tenant's stored files of one kind (implements ``engine.store.FileStore``).

    Attributes:
        reused_from_job: after a successful ``get``, the job that trained the file (None when that job
            is gone, or when nothing was reused).
    """

    model: ClassVar[type[ExpertSet] | type[ProxyRun]]
    kind: ClassVar[str]

    def __init__(self, db: Database, blobs: BlobStore, job_id: str, tenant_id: str, lease_s: float) -> None:
        self.db = db
        self.blobs = blobs
        self.job_id = job_id
        self.tenant_id = tenant_id
        self.lease_s = lease_s
        self.reused_from_job: str | None = None

    def _row(self, session: Session, key: str) -> Any:
        model = self.model
        return session.scalars(select(model).where(model.tenant_id == self.tenant_id, model.key == key)).one_or_none()

    def _new_row(self, key: str) -> Any:
        return self.model(tenant_id=self.tenant_id, key=key)

    def _name(self, row: Any) -> str:
        return f"{self.kind} {row.key}"

    def get(self, key: str, dest: Path) -> bool:
        with self.db.session() as session:
            row = self._row(session, key)
            if row is None:
                return False
            blob_key, recorded, trained_by, name = row.blob_key, row.sha256, row.job_id, self._name(row)
        # Read and hashed in one pass, without an exists() first: a deletion or replacement landing between
        # the two would fail the job; once open, the file stays readable whatever happens to its name.
        try:
            with self.blobs.open(blob_key) as src, dest.open("wb") as out:
                digest = copy_and_hash(src, out)
        except FileNotFoundError:  # the blob volume lost it, or it was deleted meanwhile: the job trains it again
            return False
        if digest != recorded:
            with self.db.session() as session:
                blobs.discard_damaged(session, self.blobs, blob_key, self._row(session, key))
            raise StoredFileDamaged(
                f"the stored {name} read back with sha256 {digest[:16]}..., not the {recorded[:16]}... "
                "recorded when it was stored; it was discarded"
            )
        self.reused_from_job = trained_by
        return True

    @contextmanager
    def claim(self, key: str, waiting: Waiting) -> Iterator[None]:
        """Holds ``key`` for this job while it computes the file: other jobs of the tenant that need it wait.

        A database lease (``reuse_claims``) renewed by a thread every third of ``lease_s``, as job leases
        are: when the holder's worker dies the claim expires and a waiting job takes it over.
        """
        while (holder := self._try_claim(key)) is not None:
            waiting(f"job {holder} is computing this {self.kind}")
            time.sleep(WAIT_POLL_S)
        try:
            with Periodic(lambda: self._renew(key), self.lease_s / 3, name=f"claim-{key}"):
                yield
        finally:
            with self.db.session() as session:
                session.execute(delete(ReuseClaim).where(*self._claimed(key)))
                session.commit()

    def _claimed(self, key: str) -> tuple[Any, ...]:
        return ReuseClaim.tenant_id == self.tenant_id, ReuseClaim.key == key, ReuseClaim.holder == self.job_id

    def _try_claim(self, key: str) -> str | None:
        """None when this job now holds ``key``; else the job that does."""
        now = utcnow()
        expires = now + timedelta(seconds=self.lease_s)
        with self.db.session() as session:
            session.execute(insert_if_absent(
                session, ReuseClaim, tenant_id=self.tenant_id, key=key, holder=self.job_id, expires_at=expires
            ))
            # Ours when we inserted it, hold it already (a redelivered job), or its holder stopped renewing.
            taken = session.execute(
                update(ReuseClaim)
                .where(ReuseClaim.tenant_id == self.tenant_id, ReuseClaim.key == key,
                       or_(ReuseClaim.holder == self.job_id, ReuseClaim.expires_at < now))
                .values(holder=self.job_id, expires_at=expires)
            )
            holder = session.scalar(
                select(ReuseClaim.holder).where(ReuseClaim.tenant_id == self.tenant_id, ReuseClaim.key == key)
            )
            session.commit()
        return None if taken.rowcount == 1 else holder  # type: ignore[attr-defined]

    def _renew(self, key: str) -> bool:
        try:
            with self.db.session() as session:
                session.execute(
                    update(ReuseClaim).where(*self._claimed(key))
                    .values(expires_at=utcnow() + timedelta(seconds=self.lease_s))
                )
                session.commit()
        except Exception:  # an outage: the job's own lease decides whether it goes on
            log.warning("could not renew the claim of job %s on %s", self.job_id, key, exc_info=True)
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
    kind = "expert set"


class BlobProxyRunStore(BlobFileStore):
    """Recorded proxy runs (``engine.pipeline.proxy_runs``), listed with the dataset and inputs they came from."""

    model = ProxyRun
    kind = "proxy run"

    def __init__(self, db: Database, blobs: BlobStore, job_id: str, tenant_id: str, lease_s: float, dataset_id: str,
                 summary: dict[str, Any]) -> None:
        super().__init__(db, blobs, job_id, tenant_id, lease_s)
        self.dataset_id = dataset_id
        self.summary = summary

    def _name(self, row: Any) -> str:
        return f"proxy run {row.id}"

    def _new_row(self, key: str) -> ProxyRun:
        return ProxyRun(id=new_id(PROXY_RUN), tenant_id=self.tenant_id, key=key, dataset_id=self.dataset_id,
                        summary=self.summary)


class DatabaseBaselineStore:
    """A tenant's random-subset and full-data accuracies (implements ``engine.evaluate.baselines.BaselineStore``),
    recorded against the dataset they were measured on."""

    def __init__(self, db: Database, tenant_id: str, dataset_id: str) -> None:
        self.db = db
        self.tenant_id = tenant_id
        self.dataset_id = dataset_id

    def get(self, key: str) -> dict[str, Any] | None:
        with self.db.session() as session:
            row = session.get(Baseline, (self.tenant_id, key))
            return None if row is None else dict(row.stats)

    def put(self, key: str, stats: dict[str, Any]) -> None:
        try:
            with self.db.session() as session:
                session.add(Baseline(tenant_id=self.tenant_id, key=key, stats=stats, dataset_id=self.dataset_id))
        except IntegrityError:
            pass  # a concurrent job measured the same baseline first: the same protocol gives the same figures

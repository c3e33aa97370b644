"""Tells workers that a committed job is waiting. Always called after the commit, never inside it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import Celery

from app.core.celery_client import RUN_JOB_TASK
from app.core.db import Database
from app.models import utcnow
from app.services import jobs
from app.services.broker_inspect import RedisBrokerInspector, inspector_for

log = logging.getLogger(__name__)


class Doorbell:
    def __init__(self, celery: Celery, db: Database, stale_after_s: float) -> None:
        self.celery = celery
        self.db = db
        self.stale_after = timedelta(seconds=stale_after_s)
        # None for a broker whose queues cannot be read (the filesystem broker): there only the stale
        # re-ring finds a lost doorbell, since nothing tells a lost message from one waiting in line.
        self.inspector = inspector_for(celery, RUN_JOB_TASK)
        # Job id -> doorbell_at of the ring whose message the last look into the broker did not find.
        self._missing: dict[str, datetime] = {}

    def ring(self, job_id: str, queue: str) -> bool:
        """Sends the job id; on a broker failure the job stays queued without ``doorbell_at`` and the reaper retries."""
        if not self._send(job_id, queue):
            return False
        with self.db.session() as session:
            jobs.mark_rung(session, job_id)
        return True

    def _send(self, job_id: str, queue: str) -> bool:
        try:
            self.celery.send_task(RUN_JOB_TASK, args=[job_id], queue=queue, retry=False)
        except Exception:
            log.warning("could not ring the doorbell for job %s; the reaper will retry", job_id, exc_info=True)
            return False
        return True

    def reap(self) -> list[str]:
        """Recovers jobs whose worker vanished and re-rings any whose doorbell was lost; returns the rung ids."""
        with self.db.session() as session:
            requeued = jobs.reap_expired(session)
        if requeued:
            log.warning("re-queued job(s) whose worker was lost: %s", ", ".join(requeued))
        # The backstop on every broker: a job still queued long after its doorbell rang is rung again
        # (a duplicate is a no-op), which also frees one whose message a dead worker had reserved.
        with self.db.session() as session:
            pending = jobs.unrung_jobs(session, rung_before=utcnow() - self.stale_after)
        rung = [job_id for job_id, queue in pending if self.ring(job_id, queue)]
        if self.inspector is None:
            return rung
        # Read after those rings and before the broker: a job rung after this read is not judged on it,
        # and one rung before it has its message in the broker by then (sent before doorbell_at is written).
        with self.db.session() as session:
            waiting = jobs.rung_queued_jobs(session)
        return rung + self._ring_lost(self.inspector, waiting)

    def _ring_lost(self, inspector: RedisBrokerInspector, waiting: list[tuple[str, str, datetime]]) -> list[str]:
        """Rings again each waiting job whose message (queued or reserved by a worker) the broker held on
        neither of two consecutive passes for the same ring: a broker restarted without persistence. One
        pass is not enough, since a worker is briefly in neither between taking a message and reserving it."""
        if not waiting:
            self._missing = {}
            return []
        try:
            present = inspector.job_ids_in_broker({queue for _, queue, _ in waiting})
        except Exception:
            # Nothing is rung on a guess; the next pass looks again.
            log.warning("could not read the broker's queues to look for lost doorbells", exc_info=True)
            return []
        missing = [(job_id, queue, rung_at) for job_id, queue, rung_at in waiting if job_id not in present]
        lost = [(job_id, queue, rung_at) for job_id, queue, rung_at in missing if self._missing.get(job_id) == rung_at]
        self._missing = {job_id: rung_at for job_id, _, rung_at in missing}
        rung = []
        for job_id, queue, rung_at in lost:
            # Taken in the database before sending, so of several reapers that saw it lost only one rings;
            # if the send then fails, the next passes find the new ring's message missing and ring again.
            with self.db.session() as session:
                if not jobs.take_lost_doorbell(session, job_id, rung_at):
                    continue
            if self._send(job_id, queue):
                rung.append(job_id)
        if rung:
            log.warning("the broker had lost the doorbell of queued job(s) %s; rang again", ", ".join(rung))
        return rung

    def ping(self) -> None:
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

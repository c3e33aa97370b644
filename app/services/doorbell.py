"""Tells workers that a committed job is waiting. Always called after the commit, never inside it."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Celery

from app.core.db import Database
from app.models import utcnow
from app.services import jobs
from worker.celery_app import RUN_JOB_TASK

log = logging.getLogger(__name__)


class Doorbell:
    def __init__(self, celery: Celery, db: Database, stale_after_s: float) -> None:
        self.celery = celery
        self.db = db
        self.stale_after = timedelta(seconds=stale_after_s)

    def ring(self, job_id: str, queue: str) -> bool:
        """Sends the job id; on a broker failure the job stays queued without ``doorbell_at`` and the reaper retries."""
        try:
            self.celery.send_task(RUN_JOB_TASK, args=[job_id], queue=queue, retry=False)
        except Exception:
            log.warning("could not ring the doorbell for job %s; the reaper will retry", job_id, exc_info=True)
            return False
        with self.db.session() as session:
            jobs.mark_rung(session, job_id)
        return True

    def reap(self) -> list[str]:
        """Recovers jobs whose worker vanished and re-rings any whose doorbell was lost; returns the rung ids."""
        with self.db.session() as session:
            requeued = jobs.reap_expired(session)
        if requeued:
            log.warning("re-queued job(s) whose worker was lost: %s", ", ".join(requeued))
        with self.db.session() as session:
            pending = jobs.unrung_jobs(session, rung_before=utcnow() - self.stale_after)
        return [job_id for job_id, queue in pending if self.ring(job_id, queue)]

    def ping(self) -> None:
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

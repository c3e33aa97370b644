"""The Celery task and worker life-cycle hooks; all job logic lives in :mod:`worker.runner`."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from celery import Task, signals
from celery.utils.time import get_exponential_backoff_interval

from app.core.celery_client import RUN_JOB_TASK
from app.core.config import get_settings
from app.core.db import Database, database_unavailable
from app.core.migrate import startup_step, upgrade_when_reachable
from app.services.doorbell import Doorbell
from engine.allocator import keep_freed_memory
from worker.celery_app import celery_app
from worker.lease import Reaper
from worker.runner import WorkerContext, run_job

log = logging.getLogger(__name__)
_context: tuple[int, WorkerContext] | None = None
_reaper: Reaper | None = None


def worker_context() -> WorkerContext:
    """One context per process: a forked pool child must not share its parent's database connections."""
    global _context
    pid = os.getpid()
    if _context is None or _context[0] != pid:
        if _context is not None:
            _context[1].db.engine.dispose(close=False)  # drop the parent's pool without closing its sockets
        _context = (pid, WorkerContext.create(get_settings()))
    return _context[1]


RETRY_BACKOFF_MAX_S = 30


@celery_app.task(name=RUN_JOB_TASK, ignore_result=True, bind=True, max_retries=None)
def run_job_task(self: Task, job_id: str) -> None:
    try:
        run_job(worker_context(), job_id, worker_id=f"{socket.gethostname()}:{os.getpid()}")
    except Exception as exc:
        # A doorbell taken while the database is down must not be consumed: with acks_late, Celery
        # acknowledges a failed task (acks_on_failure=False would reject it, which Redis also drops), so
        # it is sent again with a backoff until the database answers. The claim guards the job, so a
        # retry after the job was claimed (or finished) is a no-op.
        if not database_unavailable(exc):
            raise
        countdown = get_exponential_backoff_interval(1, self.request.retries, RETRY_BACKOFF_MAX_S, full_jitter=True)
        log.warning("database unavailable for job %s; retrying in %d s", job_id, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc


@signals.worker_init.connect
def _migrate(**_: Any) -> None:
    settings = get_settings()
    try:
        with startup_step("create the data folders"):
            settings.ensure_folders()
        with startup_step("migrate the database"):
            upgrade_when_reachable(settings.database_url, settings.startup_db_wait_s)
    except Exception as exc:
        # Celery logs an Exception from a signal handler and starts the worker anyway, which would then run
        # jobs on a database it could not migrate; SystemExit stops it, for a supervisor to restart.
        raise SystemExit(1) from exc


@signals.worker_init.connect
def _keep_freed_memory(**_: Any) -> None:
    # Before the pool forks, so every child inherits the heap settings.
    keep_freed_memory()


@signals.worker_ready.connect
def _start_reaper(**_: Any) -> None:
    global _reaper
    settings = get_settings()
    db = Database.for_service(settings)
    _reaper = Reaper(Doorbell(celery_app, db, settings.doorbell_stale_s), settings.reaper_interval_s, settings)
    _reaper.start()


@signals.worker_process_init.connect
def _forget_parent_connections(**_: Any) -> None:
    if _reaper is not None:
        _reaper.doorbell.db.engine.dispose(close=False)


@signals.worker_shutdown.connect
def _stop_reaper(**_: Any) -> None:
    if _reaper is not None:
        _reaper.stop()

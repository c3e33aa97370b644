"""The Celery task and worker life-cycle hooks; all job logic lives in :mod:`worker.runner`."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from celery import signals

from app.core.config import get_settings
from app.core.db import Database
from app.core.migrate import upgrade_to_head
from app.services.doorbell import Doorbell
from worker.celery_app import RUN_JOB_TASK, celery_app
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


@celery_app.task(name=RUN_JOB_TASK, ignore_result=True)
def run_job_task(job_id: str) -> None:
    run_job(worker_context(), job_id, worker_id=f"{socket.gethostname()}:{os.getpid()}")


@signals.worker_init.connect
def _migrate(**_: Any) -> None:
    settings = get_settings()
    settings.ensure_folders()
    upgrade_to_head(settings.database_url)


@signals.worker_ready.connect
def _start_reaper(**_: Any) -> None:
    global _reaper
    settings = get_settings()
    _reaper = Reaper(Doorbell(celery_app, Database(settings.database_url)), settings.reaper_interval_s)
    _reaper.start()


@signals.worker_process_init.connect
def _forget_parent_connections(**_: Any) -> None:
    if _reaper is not None:
        _reaper.doorbell.db.engine.dispose(close=False)


@signals.worker_shutdown.connect
def _stop_reaper(**_: Any) -> None:
    if _reaper is not None:
        _reaper.stop()

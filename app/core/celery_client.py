"""The Celery application's configuration, shared by the API (which only sends job ids: the doorbell) and the
workers (``worker/celery_app.py``, which run them). Cheap to import: no torch, and nothing from ``worker/``.

The broker carries only job ids. The database says what a job is and whether it should run, so a
lost, duplicated or redelivered message can delay a job but never corrupt it.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from app.core.config import Settings

RUN_JOB_TASK = "condense.run_job"
QUEUES = ("cpu", "gpu")


def create_celery(settings: Settings) -> Celery:
    app = Celery("condense", broker=settings.broker_url, include=["worker.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        # Acknowledge after the task returns, and re-queue when the worker process dies mid-task;
        # the claim in the database makes the second delivery a no-op if the first one finished.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        broker_transport_options=settings.broker_transport_options(),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.dependency_timeout_s,
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="cpu",
        worker_hijack_root_logger=False,
    )
    return app


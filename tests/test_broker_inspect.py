"""The broker inspector against messages that Celery and kombu really put into a Redis: it must find a
job's message wherever kombu keeps it (any priority list, or reserved by a worker), or the reaper would
take a waiting job's doorbell for lost and ring it again."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from app.core.celery_client import RUN_JOB_TASK, create_celery
from app.core.config import Settings
from app.services.broker_inspect import RedisBrokerInspector, UnreadableMessage, inspector_for
from tests.private_servers import PrivateRedis
from tests.service_fixtures import TEST_BROKER_ENV


@pytest.fixture
def broker_url(tmp_path: Path) -> Iterator[str]:
    """CONDENSE_TEST_BROKER_URL (flushed), else a private Redis."""
    if url := os.environ.get(TEST_BROKER_ENV):
        redis.Redis.from_url(url).flushdb()
        yield url
        return
    server = PrivateRedis(tmp_path / "redis.log")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def celery_on(url: str, tmp_path: Path, **transport_options: object) -> Celery:
    celery = create_celery(Settings(data_dir=tmp_path, broker_url=url))
    celery.conf.broker_transport_options |= transport_options
    return celery


def inspector(celery: Celery) -> RedisBrokerInspector:
    found = inspector_for(celery, RUN_JOB_TASK)
    assert found is not None
    return found


def test_finds_queued_messages_of_every_priority_and_queue(broker_url: str, tmp_path: Path) -> None:
    celery = celery_on(broker_url, tmp_path)
    celery.send_task(RUN_JOB_TASK, args=["job_plain"], queue="cpu")
    celery.send_task(RUN_JOB_TASK, args=["job_urgent"], queue="cpu", priority=7)
    celery.send_task(RUN_JOB_TASK, args=["job_gpu"], queue="gpu")
    celery.send_task("other.task", args=["job_not_a_doorbell"], queue="cpu")
    assert inspector(celery).job_ids_in_broker(["cpu"]) == {"job_plain", "job_urgent"}
    assert inspector(celery).job_ids_in_broker(["cpu", "gpu"]) == {"job_plain", "job_urgent", "job_gpu"}


def test_finds_a_message_a_worker_reserved(broker_url: str, tmp_path: Path) -> None:
    celery = celery_on(broker_url, tmp_path)
    celery.send_task(RUN_JOB_TASK, args=["job_taken"], queue="cpu")
    with celery.connection_for_read() as connection:
        message = connection.default_channel.basic_get(queue="cpu", no_ack=False)  # as a worker, before its ack
        assert message is not None
        assert redis.Redis.from_url(broker_url).llen("cpu") == 0  # out of the queue, into ``unacked``
        assert inspector(celery).job_ids_in_broker(["cpu"]) == {"job_taken"}
        message.ack()
    assert inspector(celery).job_ids_in_broker(["cpu"]) == set()


def test_follows_the_transport_options_that_rename_keys(broker_url: str, tmp_path: Path) -> None:
    celery = celery_on(broker_url, tmp_path, global_keyprefix="condense:", sep=":", priority_steps=list(range(10)))
    celery.send_task(RUN_JOB_TASK, args=["job_prefixed"], queue="cpu", priority=4)
    celery.send_task(RUN_JOB_TASK, args=["job_reserved"], queue="cpu")
    with celery.connection_for_read() as connection:
        assert connection.default_channel.basic_get(queue="cpu", no_ack=False) is not None
        keys = set(redis.Redis.from_url(broker_url).keys("condense:*"))
        assert {b"condense:cpu:4", b"condense:unacked"} <= keys
        assert inspector(celery).job_ids_in_broker(["cpu"]) == {"job_prefixed", "job_reserved"}


def test_an_unreadable_doorbell_is_an_error_not_a_missing_job(broker_url: str, tmp_path: Path) -> None:
    celery = celery_on(broker_url, tmp_path)
    celery.send_task(RUN_JOB_TASK, args=[], queue="cpu")  # no job id in it
    with pytest.raises(UnreadableMessage):
        inspector(celery).job_ids_in_broker(["cpu"])


def test_the_filesystem_broker_is_not_inspected(tmp_path: Path) -> None:
    assert inspector_for(create_celery(Settings(data_dir=tmp_path)), RUN_JOB_TASK) is None

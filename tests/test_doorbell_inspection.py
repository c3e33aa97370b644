"""The reaper on a Redis broker looks for each waiting job's message instead of waiting for its doorbell
to go stale: a message lost from the broker is rung again on the second pass that misses it, by one
reaper only, and a message still queued or reserved by a worker is never rung twice."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from app.core.celery_client import create_celery
from app.core.config import Settings
from app.core.db import Database
from app.services.doorbell import Doorbell
from tests.service_fixtures import (  # noqa: F401 - fixtures
    SERVERS,
    TEST_BROKER_ENV,
    TEST_DATABASE_ENV,
    client,
    db,
    settings,
    tiny_prune_spec,
)

STALE_S = 300  # the default: the stale re-ring plays no part here


@pytest.fixture(scope="module")
def backend() -> str:
    if not (os.environ.get(TEST_DATABASE_ENV) and os.environ.get(TEST_BROKER_ENV)):
        pytest.skip(f"set {TEST_DATABASE_ENV} and {TEST_BROKER_ENV} to run on Postgres and Redis (.ci/run does)")
    return SERVERS


@pytest.fixture
def broker(settings: Settings) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(settings.broker_url) as client:
        yield client


@pytest.fixture
def job_id(client: TestClient) -> str:
    """A queued job, rung by the API; no worker consumes its message."""
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    response = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def reaper(settings: Settings, db: Database) -> Doorbell:
    """The doorbell of a worker's reaper."""
    return Doorbell(create_celery(settings), db, STALE_S)


def messages_for(broker: redis.Redis, job_id: str) -> int:
    """The job's messages anywhere in the broker: the queue lists (any priority) and the reserved hash."""
    values = [v for key in broker.keys("cpu*") for v in broker.lrange(key, 0, -1)] + broker.hvals("unacked")
    return sum(job_id.encode() in value for value in values)  # argsrepr carries the id in plain text


def test_a_lost_message_is_rung_again_on_the_second_pass_that_misses_it(
    settings: Settings, db: Database, broker: redis.Redis, job_id: str
) -> None:
    doorbell = reaper(settings, db)
    celery = create_celery(settings)
    with celery.connection_for_read() as connection:
        # A worker reserves the message and has not claimed the job yet: it is in ``unacked``, not the queue.
        assert connection.default_channel.basic_get(queue="cpu", no_ack=False) is not None
        for _ in range(3):
            assert doorbell.reap() == []
        assert messages_for(broker, job_id) == 1
        broker.flushdb()  # Redis restarted without persistence
        assert doorbell.reap() == []  # once is not enough: a worker between BRPOP and HSET holds it nowhere
        assert doorbell.reap() == [job_id]
        assert messages_for(broker, job_id) == 1
        for _ in range(3):
            assert doorbell.reap() == []  # the new message is there
        assert messages_for(broker, job_id) == 1


def test_two_reapers_that_saw_a_message_lost_ring_it_once(
    settings: Settings, db: Database, broker: redis.Redis, job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = reaper(settings, db), reaper(settings, db)
    broker.flushdb()
    assert first.reap() == [] and second.reap() == []  # both saw it missing once
    assert second.inspector is not None
    read_broker = second.inspector.job_ids_in_broker
    first_rang: list[str] = []

    def read_then_let_the_other_pass(queues: Iterable[str]) -> set[str]:
        # The race of two workers' reapers: the first one does a whole pass between the second one's
        # look into the broker and its decision.
        present = read_broker(queues)
        first_rang.extend(first.reap())
        return present

    monkeypatch.setattr(second.inspector, "job_ids_in_broker", read_then_let_the_other_pass)
    assert second.reap() == []  # it too saw the message missing twice, but lost the race
    assert first_rang == [job_id]
    assert messages_for(broker, job_id) == 1

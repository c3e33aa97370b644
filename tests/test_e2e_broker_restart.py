"""End to end: a Redis without persistence restarts under a busy worker and loses the jobs queued in it.

The worker's reaper sees their messages gone from the broker and rings them again within seconds,
not after ``CONDENSE_DOORBELL_STALE_S`` (kept at its default of 300 s here), and only once: the broker
never holds two messages for one job, before the restart or after it, and each job runs once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.private_servers import PrivateRedis
from tests.service_fixtures import (  # noqa: F401 - fixtures
    SERVERS,
    TEST_BROKER_ENV,
    TEST_DATABASE_ENV,
    TERMINAL,
    LiveService,
    live_service,
    real_subset_npz,
    tiny_prune_spec,
    wait_for_job,
    wait_until,
)

pytestmark = pytest.mark.slow
BOUND_S = 30  # far below the default doorbell_stale_s of 300 s
PASSES = 5  # reaper passes (CONDENSE_REAPER_INTERVAL_S is 1 s in the service tests) that must ring nothing
# Every message in the broker, read atomically: the queue lists (one per priority step) and the hash of
# messages reserved by workers. Key names do not matter here, so the check does not lean on kombu's.
SNAPSHOT = """
local messages = {}
for _, key in ipairs(redis.call('KEYS', '*')) do
  local kind = redis.call('TYPE', key)['ok']
  local values = {}
  if kind == 'list' then values = redis.call('LRANGE', key, 0, -1)
  elseif kind == 'hash' then values = redis.call('HVALS', key) end
  for _, value in ipairs(values) do table.insert(messages, value) end
end
return messages
"""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("redis") / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def backend() -> str:
    # PostgreSQL of CONDENSE_TEST_DATABASE_URL; the broker is this module's own Redis, which it restarts.
    if not (os.environ.get(TEST_DATABASE_ENV) and os.environ.get(TEST_BROKER_ENV)):
        pytest.skip(f"set {TEST_DATABASE_ENV} and {TEST_BROKER_ENV} to run on Postgres and Redis (.ci/run does)")
    return SERVERS


@pytest.fixture(scope="module")
def service_overrides(broker: PrivateRedis) -> dict[str, str]:
    return {"CONDENSE_BROKER_URL": broker.url}


class MessageCounter(threading.Thread):
    """Counts, many times a second, the broker's messages for each job; keeps the most seen at once."""

    def __init__(self, url: str, job_ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.job_ids = job_ids
        self.most = dict.fromkeys(job_ids, 0)
        self.snapshots = 0
        self._done = threading.Event()

    def count(self) -> dict[str, int]:
        messages: list[bytes] = self.client.eval(SNAPSHOT, 0)
        # The job id is in the message's headers (argsrepr) in plain text.
        return {job_id: sum(job_id.encode() in m for m in messages) for job_id in self.job_ids}

    def run(self) -> None:
        while not self._done.wait(0.05):
            try:
                counts = self.count()
            except redis.RedisError:  # the broker is restarting
                continue
            self.snapshots += 1
            self.most = {job_id: max(n, counts[job_id]) for job_id, n in self.most.items()}

    def stop(self) -> None:
        self._done.set()
        self.join()


def _upload(live_service: LiveService, path: Path) -> str:
    with path.open("rb") as f:
        response = live_service.client.post("/v1/datasets", files={"file": (path.name, f)})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_jobs_lost_in_a_broker_restart_are_rung_again_soon_and_once(
    live_service: LiveService, broker: PrivateRedis, real_subset_npz: Path
) -> None:
    assert live_service.settings.doorbell_stale_s == 300  # the stale re-ring cannot be what saves them
    client = live_service.client
    dataset_id = _upload(live_service, real_subset_npz)
    # Keeps the only worker busy through the whole restart; canceled once the others are rung again.
    long_spec = tiny_prune_spec(dataset_id, proxy={"epochs": 1000, "width": 16}, evaluation=None)
    busy = client.post("/v1/jobs", json=long_spec)
    assert busy.status_code == 202, busy.text
    busy_id = busy.json()["id"]
    wait_for_job(client, busy_id, {"running"})
    waiting = [
        client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None)).json()["id"] for _ in range(3)
    ]
    counter = MessageCounter(broker.url, [busy_id, *waiting])
    one_each = dict.fromkeys(waiting, 1)
    wait_until(lambda: {j: counter.count()[j] for j in waiting} == one_each, 10, "one message per queued job")
    counter.start()
    try:
        time.sleep(PASSES * float(live_service.env["CONDENSE_REAPER_INTERVAL_S"]))
        assert {j: counter.count()[j] for j in waiting} == one_each  # the reaper rang none of them again

        broker.stop()  # no persistence: the three queued messages are gone
        broker.start()
        restarted = time.monotonic()
        assert {j: counter.count()[j] for j in waiting} == dict.fromkeys(waiting, 0)
        deadline = restarted + BOUND_S
        while {j: counter.count()[j] for j in waiting} != one_each:
            statuses = {j: client.get(f"/v1/jobs/{j}").json()["status"] for j in waiting}
            assert time.monotonic() < deadline, (
                f"not rung again {BOUND_S} s after the broker restarted: {counter.count()}, {statuses}"
            )
            time.sleep(0.2)
        rerung_s = time.monotonic() - restarted
        assert client.get(f"/v1/jobs/{busy_id}").json()["status"] == "running"  # nobody took them yet
        time.sleep(PASSES * float(live_service.env["CONDENSE_REAPER_INTERVAL_S"]))
        assert {j: counter.count()[j] for j in waiting} == one_each, "rung more than once"

        assert client.post(f"/v1/jobs/{busy_id}/cancel").status_code == 200
        finished = [wait_for_job(client, job_id, TERMINAL, timeout_s=120) for job_id in waiting]
    finally:
        counter.stop()

    print(f"rung again {rerung_s:.1f} s after the restart; {counter.snapshots} broker snapshots")
    assert counter.snapshots > 50
    assert max(counter.most.values()) == 1, f"a job had two messages at once: {counter.most}"
    worker_log = (live_service.logs / "worker.log").read_text()
    for job in finished:
        assert job["status"] == "succeeded" and job["attempt"] == 1, job
        events = client.get(f"/v1/jobs/{job['id']}/events.json", params={"limit": 1000}).json()["data"]
        statuses = [(e["data"]["status"], e["data"].get("attempt")) for e in events if e["type"] == "status"]
        assert statuses == [("queued", None), ("running", 1), ("succeeded", None)]
        assert f"job {job['id']} is not claimable" not in worker_log  # no second delivery reached a worker

"""End to end: PostgreSQL or Redis stopped for a while under a running API and worker.

The service runs on a private cluster and a private Redis (tests/private_servers.py) that the tests
stop and start again. While one is down the API answers 503 problem+json with Retry-After instead of
hanging or crashing, and /readyz names the dependency; when it returns, everything recovers without
a manual step and jobs queued before the outage run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from app import launch
from app.core.celery_client import RUN_JOB_TASK, create_celery
from tests.private_servers import PrivatePostgres, PrivateRedis
from tests.service_fixtures import (  # noqa: F401 - fixtures
    EMBEDDED,
    TERMINAL,
    LiveService,
    assert_problem,
    live_service,
    random_npz_bytes,
    tiny_prune_spec,
    wait_for_job,
)

pytestmark = pytest.mark.slow
RETRY_AFTER_S = 7
TIMEOUT_S = 2  # CONDENSE_DEPENDENCY_TIMEOUT_S: no request may wait much longer on a dead server
STATEMENT_TIMEOUT_S = 3  # CONDENSE_STATEMENT_TIMEOUT_S: nor on a server that stopped answering


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


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
    # live_service's URLs come from service_overrides (this module's own servers), so there is
    # nothing of CONDENSE_TEST_* to wipe.
    return EMBEDDED


@pytest.fixture(scope="module")
def service_overrides(postgres: PrivatePostgres, broker: PrivateRedis) -> dict[str, str]:
    return {
        "CONDENSE_DATABASE_URL": postgres.url,
        "CONDENSE_BROKER_URL": broker.url,
        "CONDENSE_RETRY_AFTER_S": str(RETRY_AFTER_S),
        "CONDENSE_DEPENDENCY_TIMEOUT_S": str(TIMEOUT_S),
        "CONDENSE_STATEMENT_TIMEOUT_S": str(STATEMENT_TIMEOUT_S),
        "CONDENSE_DOORBELL_STALE_S": "3",
        # device "auto" then goes to the gpu queue, which no worker here consumes: a parked job.
        "CONDENSE_GPU_WORKER_AVAILABLE": "true",
    }


@pytest.fixture(scope="module")
def dataset_id(live_service: LiveService) -> str:
    response = live_service.client.post("/v1/datasets", files={"file": ("random.npz", random_npz_bytes())})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def timed(call: Callable[[], httpx.Response]) -> httpx.Response:
    """The response, after checking that a dead dependency did not hang the request."""
    started = time.monotonic()
    response = call()
    assert time.monotonic() - started < 3 * TIMEOUT_S + 2, "the request waited on the dead server"
    return response


def assert_unavailable(response: httpx.Response, dependency: str) -> None:
    body = assert_problem(response, 503)
    assert body["type"] == "urn:condense:problem:dependency-unavailable"
    assert dependency in body["detail"]
    assert response.headers["Retry-After"] == str(RETRY_AFTER_S)


def assert_not_ready(client: httpx.Client, dependency: str) -> None:
    response = timed(lambda: client.get("/readyz"))
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
    body = response.json()
    assert body["unavailable"] == [dependency]
    assert body["checks"][dependency]["status"] == "error"


def wait_ready(client: httpx.Client, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").text
        time.sleep(0.2)


def worker_log(live_service: LiveService) -> str:
    return (live_service.logs / "worker.log").read_text()


class EventStream(threading.Thread):
    """Reads a job's SSE stream in the background, keeping every line, until the server ends it."""

    def __init__(self, client: httpx.Client, job_id: str) -> None:
        super().__init__(daemon=True)
        self.client, self.job_id = client, job_id
        self.lines: list[str] = []
        self.error: BaseException | None = None
        self.opened = threading.Event()

    def run(self) -> None:
        try:
            with self.client.stream("GET", f"/v1/jobs/{self.job_id}/events", timeout=60) as response:
                assert response.status_code == 200
                self.opened.set()
                self.lines.extend(response.iter_lines())
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc


def test_database_outage(live_service: LiveService, postgres: PrivatePostgres, dataset_id: str) -> None:
    client = live_service.client
    parked = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, device="auto", evaluation=None)).json()
    assert parked["status"] == "queued"  # on the gpu queue
    stream = EventStream(client, parked["id"])
    stream.start()
    assert stream.opened.wait(10)

    postgres.stop()
    try:
        assert_unavailable(timed(lambda: client.get(f"/v1/jobs/{parked['id']}")), "database")
        assert_unavailable(timed(lambda: client.get("/v1/jobs")), "database")
        assert_unavailable(timed(lambda: client.post("/v1/jobs", json=tiny_prune_spec(dataset_id))), "database")
        assert_not_ready(client, "database")
        stream.join(10)  # the event stream ends cleanly, telling the client when to reconnect
        assert not stream.is_alive() and stream.error is None, stream.error
        assert f"retry: {RETRY_AFTER_S * 1000}" in stream.lines

        # The worker takes a doorbell while the database is down; it must not swallow it.
        create_celery(live_service.settings).send_task(RUN_JOB_TASK, args=[parked["id"]], queue="cpu")
        deadline = time.monotonic() + 20
        while f"database unavailable for job {parked['id']}; retrying" not in worker_log(live_service):
            assert time.monotonic() < deadline, worker_log(live_service)[-3000:]
            time.sleep(0.2)
    finally:
        postgres.start()

    wait_ready(client)
    # Only the retried message can run it: the reaper would ring the gpu queue, which nobody reads.
    job = wait_for_job(client, parked["id"], TERMINAL, timeout_s=60)
    assert job["status"] == "succeeded" and job["attempt"] == 1, job
    fresh = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None))
    assert fresh.status_code == 202, fresh.text
    assert wait_for_job(client, fresh.json()["id"], TERMINAL, timeout_s=60)["status"] == "succeeded"


FROZEN_S = 25


def test_frozen_database(live_service: LiveService, postgres: PrivatePostgres, dataset_id: str) -> None:
    """A database that hangs instead of refusing (SIGSTOP: connections stay open, nothing answers) gets
    the same 503 + Retry-After as one that is down, within the statement timeout, not after the hang."""
    client = live_service.client
    assert client.get("/v1/jobs").status_code == 200  # the API holds pooled connections to the server
    # The pooled connection's ping waits out the statement bound, then a new connection its connect timeout.
    bound_s = STATEMENT_TIMEOUT_S + 2 + TIMEOUT_S + 2
    postgres.freeze()
    thaw = threading.Timer(FROZEN_S, postgres.thaw)
    thaw.start()
    try:
        for path in ("/v1/jobs", f"/v1/datasets/{dataset_id}"):
            started = time.monotonic()
            response = client.get(path, timeout=FROZEN_S + 10)
            waited = time.monotonic() - started
            assert waited < bound_s, f"GET {path} waited {waited:.1f} s on the frozen database ({response.status_code})"
            assert_unavailable(response, "database")
        started = time.monotonic()
        ready = client.get("/readyz", timeout=FROZEN_S + 10)
        assert time.monotonic() - started < bound_s and ready.status_code == 503, ready.text
        assert ready.json()["unavailable"] == ["database"]
    finally:
        thaw.cancel()
        postgres.thaw()
    wait_ready(client)
    job = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None))
    assert job.status_code == 202, job.text
    assert wait_for_job(client, job.json()["id"], TERMINAL, timeout_s=60)["status"] == "succeeded"


def test_broker_outage(live_service: LiveService, broker: PrivateRedis, dataset_id: str) -> None:
    client = live_service.client
    broker.stop()
    try:
        assert_not_ready(client, "broker")
        # The job is kept in the database; only its doorbell waits for the broker.
        response = timed(lambda: client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None)))
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
    finally:
        broker.start()
    wait_ready(client)
    assert wait_for_job(client, job_id, TERMINAL, timeout_s=60)["status"] == "succeeded"


def test_job_survives_the_loss_of_its_queued_message(
    live_service: LiveService, broker: PrivateRedis, dataset_id: str
) -> None:
    client = live_service.client
    assert live_service.worker is not None
    launch.stop(live_service.worker)  # nobody takes the message before it is lost
    job: dict[str, Any] = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None)).json()
    assert job["status"] == "queued"
    broker.stop()  # no persistence: the queued message is gone
    broker.start()
    # Not start_worker(): its readiness ping would reuse this process's broker connection from before the restart.
    live_service.worker = launch.start_worker(live_service.env, live_service.logs / "worker.log")
    # The doorbell rang and was lost; the reaper rings it again once it is stale.
    assert wait_for_job(client, job["id"], TERMINAL, timeout_s=60)["status"] == "succeeded"

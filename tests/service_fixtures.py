"""Fixtures for the service tests (API, worker, end to end), imported explicitly by those modules.

Every test gets its own data folder and runs once per backend: the embedded default (SQLite,
filesystem broker), and "servers" (Postgres + Redis) when ``CONDENSE_TEST_DATABASE_URL`` and
``CONDENSE_TEST_BROKER_URL`` point at them (CI); those are wiped before each use.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import launch
from app.core.celery_client import create_celery
from app.core.config import Settings
from app.core.db import Database
from app.core.migrate import upgrade_to_head
from app.main import create_app
from app.models import Base
from app.services.auth import create_key
from engine.data import load_dataset, save_npz
from tests.conftest import shared_datasets_dir

TEST_DATABASE_ENV = "CONDENSE_TEST_DATABASE_URL"
TEST_BROKER_ENV = "CONDENSE_TEST_BROKER_URL"
TERMINAL = {"succeeded", "failed", "canceled"}
# The artifacts of every prune job, with or without an evaluation.
PRUNE_ARTIFACTS = {
    "scores.npy", "ranking.npy", "indices.npy", "kept.csv", "scores.csv", "indices.json", "coreset.npz", "subset.zip",
    "samples.json", "report.json", "preview.png",
}

# Intervals short enough that progress, cancellation and lease expiry show up within a test.
FAST_INTERVALS = {
    "CONDENSE_PROGRESS_INTERVAL_S": "0.2",
    "CONDENSE_CANCEL_CHECK_INTERVAL_S": "0.2",
    "CONDENSE_EVENTS_POLL_INTERVAL_S": "0.1",
    "CONDENSE_REAPER_INTERVAL_S": "1",
    "CONDENSE_LEASE_S": "6",
}


def _wipe_external_backends() -> None:
    if url := os.environ.get(TEST_DATABASE_ENV):
        db = Database(url)
        Base.metadata.drop_all(db.engine)
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.dispose()
    if url := os.environ.get(TEST_BROKER_ENV):
        import redis

        redis.Redis.from_url(url).flushdb()


EMBEDDED, SERVERS = "embedded", "servers"


@pytest.fixture(scope="module", params=[EMBEDDED, SERVERS])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == SERVERS and not (os.environ.get(TEST_DATABASE_ENV) and os.environ.get(TEST_BROKER_ENV)):
        pytest.skip(f"set {TEST_DATABASE_ENV} and {TEST_BROKER_ENV} to run on Postgres and Redis (.ci/run does)")
    return str(request.param)


def service_environment(data_dir: Path, backend: str) -> dict[str, str]:
    """``CONDENSE_*`` variables for one isolated service; for "servers" the database and broker are wiped."""
    env = {"CONDENSE_DATA_DIR": str(data_dir), **FAST_INTERVALS}
    if backend == SERVERS:
        _wipe_external_backends()
        env["CONDENSE_DATABASE_URL"] = os.environ[TEST_DATABASE_ENV]
        env["CONDENSE_BROKER_URL"] = os.environ[TEST_BROKER_ENV]
    return env


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> Settings:
    for key, value in service_environment(tmp_path / "data", backend).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    settings.ensure_folders()
    upgrade_to_head(settings.database_url)
    return settings


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def served_in_thread(app: FastAPI) -> Iterator[int]:
    """``app`` behind a real uvicorn in a thread, yielding its port: TestClient has no real connections,
    so it cannot hang up in the middle of a body or show what happens to a keep-alive connection."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=launch.free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield server.config.port
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def local_client(settings: Settings) -> Iterator[TestClient]:
    """An app on ``settings``, called as the embedded default's local user (whose key it makes at start-up)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        test_client.headers.update(bearer(settings.local_key_file.read_text().strip()))
        yield test_client


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with local_client(settings) as test_client:
        yield test_client


def client_for_tenant(client: TestClient, db: Database, tenant: str) -> TestClient:
    """Another caller of the same running app, with a new key of ``tenant``."""
    with db.session() as session:
        _, token = create_key(session, tenant)
    return TestClient(client.app, raise_server_exceptions=False, headers=bearer(token))


@pytest.fixture
def other_client(client: TestClient, db: Database) -> TestClient:
    """A second tenant's caller, to show that it sees none of the first one's objects."""
    return client_for_tenant(client, db, "other")


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


def _read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _per_class(y: np.ndarray, per_class: int) -> np.ndarray:
    return np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])


@pytest.fixture(scope="session")
def real_subset_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real dataset as an .npz: 60 train / 20 test MNIST images per class, else the built-in digits."""
    path = tmp_path_factory.mktemp("datasets") / "mnist-subset.npz"
    shared = shared_datasets_dir()
    if shared is not None and (shared / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        x, y = (
            _read_idx(shared / "mnist/train-images-idx3-ubyte.gz"),
            _read_idx(shared / "mnist/train-labels-idx1-ubyte.gz"),
        )
        xt, yt = (
            _read_idx(shared / "mnist/t10k-images-idx3-ubyte.gz"),
            _read_idx(shared / "mnist/t10k-labels-idx1-ubyte.gz"),
        )
        train, test = _per_class(y, 60), _per_class(yt, 20)
        save_npz(
            path,
            x[train][:, None],
            y[train],
            x_test=xt[test][:, None],
            y_test=yt[test],
            classes=[str(c) for c in range(10)],
        )
    else:
        ds = load_dataset("builtin:digits")
        save_npz(path, ds.x_train, ds.y_train, x_test=ds.x_test, y_test=ds.y_test, classes=ds.classes)
    return path


def random_npz_bytes(n: int = 120, classes: int = 3, side: int = 8, seed: int = 0) -> bytes:
    """A small valid .npz with random pixels (for tests about the upload path, not about accuracy)."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    np.savez(buffer, x=rng.integers(0, 256, (n, 1, side, side), dtype=np.uint8), y=np.arange(n) % classes)
    return buffer.getvalue()


def tiny_prune_spec(dataset_id: str, **overrides: Any) -> dict[str, Any]:
    """A prune job that finishes in seconds on two CPU cores."""
    spec: dict[str, Any] = {
        "kind": "prune",
        "dataset_id": dataset_id,
        "method": "el2n",
        "keep_fraction": 0.3,
        "device": "cpu",
        "proxy": {"epochs": 1, "width": 8, "batch_size": 64},
        "evaluation": {"seeds": 1, "epochs": 1, "width": 8, "compare_random": True, "full_data": False},
    }
    return spec | overrides


TINY_TRAJECTORY = {"syn_steps": 5, "expert_epochs": 1, "max_start_epoch": 1}
TINY_EXPERTS = {"count": 2, "epochs": 3, "batch_size": 128}


def tiny_distill_spec(dataset_id: str, kind: str = "distill", **overrides: Any) -> dict[str, Any]:
    """A distill (or prune_then_distill) job that finishes in seconds on two CPU cores: DM by default;
    ``method="mtt"`` with ``trajectory=TINY_TRAJECTORY, experts=TINY_EXPERTS`` for trajectory matching."""
    spec: dict[str, Any] = {
        "kind": kind,
        "dataset_id": dataset_id,
        "method": "dm",
        "ipc": 2,
        "iterations": 5,
        "width": 8,
        "device": "cpu",
        "proxy": {"epochs": 1, "width": 8, "batch_size": 64},
        "evaluation": {"seeds": 1, "epochs": 10, "width": 8, "compare_random": True, "full_data": False},
    }
    return spec | overrides


def wait_for_job(
    client: httpx.Client | TestClient, job_id: str, statuses: set[str], timeout_s: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {statuses} in {timeout_s} s; last: {job}")


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {timeout_s} s"
        time.sleep(0.05)


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    assert body["status"] == status
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


def api_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every API route the app serves, HEAD-only routes included.

    Newer FastAPI keeps each included router as one nested entry of ``app.routes`` (so a plain walk of it
    finds no API route at all), and ``iter_route_contexts`` yields its routes with their full paths;
    older versions copied the routes themselves into ``app.routes``.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        routes = [(route, route) for route in app.routes]
    else:
        routes = [(context.original_route, context) for context in iter_route_contexts(app.routes)]
    operations = {
        (method, route.path) for original, route in routes if isinstance(original, APIRoute) for method in route.methods
    }
    assert operations, "no API route found: has FastAPI changed how it keeps included routers?"
    return operations


def run_job_in_process(settings: Settings, job_id: str, worker_id: str = "test-worker") -> None:
    """What a Celery worker does with a doorbell, without Celery: for fast worker and artifact tests."""
    from worker.runner import WorkerContext, run_job

    context = WorkerContext.create(settings)
    try:
        run_job(context, job_id, worker_id)
    finally:
        context.db.dispose()


def run_to_success(client: httpx.Client | TestClient, settings: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    """Submits ``spec``, runs it in process (:func:`run_job_in_process`) and returns the job, which must have succeeded."""
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 202, response.text
    run_job_in_process(settings, response.json()["id"])
    job = client.get(f"/v1/jobs/{response.json()['id']}").json()
    assert job["status"] == "succeeded", job["error"]
    return dict(job)


@dataclass
class LiveService:
    """A real API (uvicorn) and a real Celery worker, as subprocesses, on one isolated data folder."""

    base_url: str
    client: httpx.Client
    settings: Settings
    env: dict[str, str]
    logs: Path
    api: subprocess.Popen[bytes]
    port: int
    worker: subprocess.Popen[bytes] | None = None
    extra_workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self) -> None:
        self.worker = launch.start_worker(self.env, self.logs / "worker.log")
        _wait_for_worker(self.settings, self.worker)

    def add_worker(self, name: str) -> subprocess.Popen[bytes]:
        """Another worker beside the running ones (stopped with the service); returns once it consumes.

        Readiness is read from its own log, not from a ping: workers started by one process share a
        node name, so a ping cannot tell them apart."""
        log = self.logs / f"{name}.log"
        worker = launch.start_worker(self.env, log)
        self.extra_workers.append(worker)
        wait_until(lambda: worker.poll() is None and " ready." in log.read_text(), 60, f"{name} ready")
        return worker

    def restart_api(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stops the API with ``sig`` (SIGKILL: no goodbye, SIGTERM: uvicorn's graceful stop) and starts
        a new one on the same port, as a supervisor would."""
        os.killpg(self.api.pid, sig)
        self.api.wait(30)
        self.api = launch.start_api(self.env, self.port, self.logs / "api.log")
        launch.wait_ready(self.base_url, self.api)


@pytest.fixture(scope="module")
def live_service(
    tmp_path_factory: pytest.TempPathFactory, backend: str, service_overrides: dict[str, str]
) -> Iterator[LiveService]:
    root = tmp_path_factory.mktemp("service")
    overrides = service_environment(root / "data", backend) | service_overrides
    env = launch.service_env(overrides, isolated=True)
    settings = Settings.from_variables(overrides)
    port = launch.free_port()
    base_url = f"http://127.0.0.1:{port}"
    api = launch.start_api(env, port, root / "api.log")
    # Beside the API, not after it: their seconds of imports overlap, and starting both at once on a
    # fresh database is safe (the migrations run under a lock; tests/test_startup_race.py).
    worker = launch.start_worker(env, root / "worker.log")
    service = None
    try:
        launch.wait_ready(base_url, api)
        headers = launch.local_auth_headers(root / "data")
        with httpx.Client(base_url=base_url, timeout=30, headers=headers) as client:
            service = LiveService(base_url, client, settings, env, root, api=api, port=port, worker=worker)
            _wait_for_worker(settings, worker)
            yield service
    finally:
        procs = [service.worker, *service.extra_workers, service.api] if service else [worker, api]
        for proc in procs:
            if proc is not None:
                launch.stop(proc)
        for log in sorted(root.glob("*.log")):
            print(f"----- {log.name} (tail) -----\n" + "\n".join(log.read_text().splitlines()[-40:]))


@pytest.fixture(scope="module")
def uploaded_dataset(live_service: LiveService, real_subset_npz: Path) -> dict[str, Any]:
    """The real dataset subset, uploaded once per module to the live service."""
    with real_subset_npz.open("rb") as f:
        response = live_service.client.post("/v1/datasets", files={"file": (real_subset_npz.name, f)})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _wait_for_worker(settings: Settings, worker: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Until the worker answers a remote-control ping (which also proves the broker's fanout works)."""
    control = create_celery(settings).control
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}")
        if control.ping(timeout=0.5):
            return
    raise TimeoutError("the worker did not answer a ping")


def follow_events(client: httpx.Client, job_id: str, timeout_s: float = 300) -> list[dict[str, Any]]:
    """Reads the job's SSE stream until the server ends it (the job finished); returns the events."""
    events = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=timeout_s) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line.split(":", 1)[1]))
    return events

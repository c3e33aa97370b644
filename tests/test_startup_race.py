"""The API and a worker started at the same moment on a fresh database both come up: the migrations run
once, under a lock, and the second process finds the database at head (without the lock the loser of the
race died on ``table datasets already exists``). A start-up that fails says at which step."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from app import launch
from app.core.config import Settings
from app.core.paths import REPO_ROOT
from app.main import create_app
from tests.service_fixtures import TEST_DATABASE_ENV, wait_until

# Whole services started together; the race itself is repeated more cheaply by
# test_concurrent_upgrades_run_one_after_another (four bare upgrades at one instant, three rounds).
TRIES = 2
UNREACHABLE_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/condense"  # port 1 refuses connections


@contextmanager
def fresh_postgres_database(name: str) -> Iterator[str]:
    """A new, empty database on the server of ``CONDENSE_TEST_DATABASE_URL``, dropped afterwards."""
    url = make_url(os.environ[TEST_DATABASE_ENV])
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not os.environ.get(TEST_DATABASE_ENV):
        pytest.skip(f"set {TEST_DATABASE_ENV} to race the migrations on PostgreSQL")
    return str(request.param)


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[dict[str, str]]:
    """``CONDENSE_*`` variables of a service on a database nobody has migrated yet (filesystem broker)."""
    env = {"CONDENSE_DATA_DIR": str(folder / "data")}
    if kind == "sqlite":
        yield env
        return
    with fresh_postgres_database(f"{make_url(os.environ[TEST_DATABASE_ENV]).database}_{folder.name}") as url:
        yield env | {"CONDENSE_DATABASE_URL": url}


@pytest.fixture
def settings_unreachable(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=UNREACHABLE_DATABASE, startup_db_wait_s=0)


def start_together(overrides: dict[str, str], folder: Path) -> list[str]:
    """Starts the API and a worker at once; returns what went wrong (nothing when both became ready)."""
    env = launch.service_env(overrides, isolated=True)
    port = launch.free_port()
    api_log, worker_log = folder / "api.log", folder / "worker.log"
    api = launch.start_api(env, port, api_log)
    worker = launch.start_worker(env, worker_log)
    problems = []
    try:
        try:
            launch.wait_ready(f"http://127.0.0.1:{port}", api, timeout_s=120)
        except (RuntimeError, TimeoutError) as exc:
            problems.append(f"API: {exc}")
        try:
            wait_until(lambda: worker.poll() is not None or " ready." in worker_log.read_text(), 120, "worker ready")
            if worker.poll() is not None:
                problems.append(f"worker exited with code {worker.returncode}")
        except AssertionError as exc:
            problems.append(f"worker: {exc}")
    finally:
        for proc in (worker, api):
            launch.stop(proc)
    for name, log in (("API", api_log), ("worker", worker_log)):
        text_ = log.read_text()
        if "Traceback" in text_:
            problems.append(f"{name} log has a traceback: {last_error(text_)}")
    return problems


# Each child imports everything first, says so, then waits for the go file: the upgrades start within a millisecond.
UPGRADE_AT_GO = """
import os, sys, time
import app.models
from app.core.migrate import upgrade_to_head
print("imported", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.001)
upgrade_to_head(os.environ["CONDENSE_DATABASE_URL"])
"""


def last_error(output: str) -> str:
    return ([line for line in output.splitlines() if "Error" in line] or ["(no error line)"])[-1]


def test_concurrent_upgrades_run_one_after_another(kind: str, tmp_path: Path) -> None:
    """The race itself, without the seconds of service imports around it: four processes upgrade a fresh
    database at the same instant, a few times over."""
    failures = {}
    for n in range(3):
        folder = tmp_path / f"upgrade{n}"
        folder.mkdir()
        with fresh_database(kind, folder) as overrides:
            url = overrides.get("CONDENSE_DATABASE_URL") or Settings.from_variables(overrides).database_url
            Path(overrides["CONDENSE_DATA_DIR"]).mkdir()
            go = folder / "go"
            env = launch.service_env({"CONDENSE_DATABASE_URL": url}, isolated=True)
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", UPGRADE_AT_GO, str(go)], env=env, cwd=REPO_ROOT,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                )
                for _ in range(4)
            ]
            for proc in procs:
                assert proc.stdout is not None and proc.stdout.readline() == "imported\n"
            go.touch()
            outputs = [proc.communicate(timeout=60)[0] for proc in procs]
            if failed := [last_error(out) for proc, out in zip(procs, outputs) if proc.returncode]:
                failures[n] = failed
    assert not failures, f"{len(failures)} of 3 rounds had failed upgrades: {failures}"


def test_api_start_up_failure_names_the_step(settings_unreachable: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(Exception), TestClient(create_app(settings_unreachable)):
        pass
    assert "start-up failed at step 'migrate the database': OperationalError" in caplog.text


def test_worker_start_up_failure_names_the_step_and_stops_the_worker(tmp_path: Path) -> None:
    """Celery logs an error of a worker_init handler and starts anyway; this worker must stop instead."""
    env = launch.service_env(
        {"CONDENSE_DATA_DIR": str(tmp_path / "data"), "CONDENSE_DATABASE_URL": UNREACHABLE_DATABASE,
         "CONDENSE_STARTUP_DB_WAIT_S": "0"},
        isolated=True,
    )
    worker = launch.start_worker(env, tmp_path / "worker.log")
    try:
        assert worker.wait(30) != 0
    finally:
        launch.stop(worker)
    log = (tmp_path / "worker.log").read_text()
    assert "start-up failed at step 'migrate the database': OperationalError" in log
    assert " ready." not in log


@pytest.mark.slow
def test_api_and_worker_started_together_both_come_up(kind: str, tmp_path: Path) -> None:
    failures = {}
    for n in range(TRIES):
        folder = tmp_path / f"race{n}"
        folder.mkdir()
        with fresh_database(kind, folder) as overrides:
            if problems := start_together(overrides, folder):
                failures[n] = problems
    assert not failures, f"{len(failures)} of {TRIES} tries failed: {failures}"

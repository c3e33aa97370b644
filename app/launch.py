"""Start and stop the service's processes (uvicorn API, Celery worker) as real subprocesses.

Used by ``condense demo`` and by the end-to-end tests, so both exercise exactly what runs in production.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.core.paths import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(overrides: Mapping[str, str], *, isolated: bool = False) -> dict[str, str]:
    """This process's environment plus ``CONDENSE_*`` overrides, with the repository importable.

    ``isolated`` drops every other ``CONDENSE_*`` variable, so the service runs on its embedded defaults.
    """
    inherited = {k: v for k, v in os.environ.items() if not (isolated and k.startswith("CONDENSE_"))}
    env = {**inherited, **overrides}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


CELERY_APP = "worker.celery_app:celery_app"


def celery_worker_argv(queues: str, concurrency: int, max_tasks_per_child: int | None) -> list[str]:
    """Arguments of ``celery -A <app> ...``, from the ``worker`` sub-command on."""
    argv = [
        "worker",
        "--queues",
        queues,
        "--concurrency",
        str(concurrency),
        "--pool",
        "prefork",
        "--loglevel",
        "INFO",
        "--hostname",
        f"{queues.replace(',', '-')}-{os.getpid()}@%h",
        # Peers are not needed (the database coordinates); skipping them makes start-up quicker.
        "--without-mingle",
        "--without-gossip",
    ]
    if max_tasks_per_child is not None:
        argv += ["--max-tasks-per-child", str(max_tasks_per_child)]
    return argv


def start_api(env: Mapping[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
    return _spawn(argv, env, log_path)


def start_worker(
    env: Mapping[str, str],
    log_path: Path,
    queues: str = "cpu",
    concurrency: int = 1,
    max_tasks_per_child: int | None = None,
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        CELERY_APP,
        *celery_worker_argv(queues, concurrency, max_tasks_per_child),
    ]
    return _spawn(argv, env, log_path)


def _spawn(argv: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        # A session of its own: a Ctrl-C meant for the caller does not hit the service before its own clean stop.
        return subprocess.Popen(
            argv, env=dict(env), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API process exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} was not ready after {timeout_s} s")


def local_auth_headers(data_dir: Path) -> dict[str, str]:
    """The ``Authorization`` header of the local user's key, which the embedded API writes at start-up."""
    from app.core.config import Settings

    token = Settings(data_dir=data_dir).local_key_file.read_text().strip()
    return {"Authorization": f"Bearer {token}"}


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM (Celery: warm shutdown, uvicorn: graceful), then SIGKILL if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running_service(root: Path, overrides: Mapping[str, str], worker_concurrency: int = 1) -> Iterator[str]:
    """An API and one Celery worker on loopback with these ``CONDENSE_*`` overrides, logging under ``root``;
    yields the API's base URL and stops both on exit."""
    env = service_env(overrides, isolated=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    api = start_api(env, port, root / "api.log")
    worker = None
    try:
        wait_ready(base_url, api)
        worker = start_worker(env, root / "worker.log", concurrency=worker_concurrency)
        yield base_url
    finally:
        for proc in (worker, api):
            if proc is not None:
                stop(proc)

"""A PostgreSQL cluster and a Redis server of a test's own, on free ports, that the test may stop and
start again (the shared servers of CONDENSE_TEST_* must never be stopped).

Both come from the Debian packages that .ci/run installs. Without them the tests skip, except where
CONDENSE_TEST_DATABASE_URL is set (CI): there a missing binary is a broken setup and fails the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from app import launch

PG_ROOT = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"  # initdb refuses to run as root


def require_binary(path: Path | None, what: str) -> Path:
    if path is not None and path.is_file():
        return path
    message = f"{what} not found; install the postgresql and redis-server packages (.ci/run does)"
    if os.environ.get("CONDENSE_TEST_DATABASE_URL"):
        pytest.fail(message)
    pytest.skip(message)


def _pg_bin() -> Path | None:
    versions = sorted(PG_ROOT.glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


class PrivatePostgres:
    """An ``initdb`` cluster in a temporary folder owned by the postgres user, listening on 127.0.0.1 only."""

    def __init__(self) -> None:
        bin_dir = _pg_bin()
        self.pg_ctl = require_binary(bin_dir and bin_dir / "pg_ctl", "PostgreSQL's pg_ctl")
        initdb = require_binary(bin_dir and bin_dir / "initdb", "PostgreSQL's initdb")
        self.port = launch.free_port()
        # Not under pytest's tmp folders: those are private to root, and the server runs as postgres.
        self.folder = Path(tempfile.mkdtemp(prefix="condense-test-pg-"))
        shutil.chown(self.folder, SERVICE_USER)
        self.data = self.folder / "data"
        self._as_postgres([str(initdb), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, argv: list[str]) -> None:
        command = ["runuser", "-u", SERVICE_USER, "--"] if os.geteuid() == 0 else []
        subprocess.run([*command, *argv], check=True, capture_output=True, cwd=self.folder)

    def start(self) -> None:
        # fsync off: the cluster is thrown away, and its restarts must be quick.
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        log = self.folder / "log"
        self._as_postgres([str(self.pg_ctl), "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start"])

    def stop(self) -> None:
        """A fast shutdown: open connections are closed, new ones refused."""
        self._as_postgres([str(self.pg_ctl), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def _processes(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, ...)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True)
        return [postmaster, *map(int, children.stdout.split())]

    def freeze(self) -> None:
        """SIGSTOP the whole cluster: its sockets stay open and the kernel still acknowledges what clients
        send, but nothing answers (a hung server or host, as opposed to one that is down)."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():  # still running
            self.thaw()
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A ``redis-server`` without persistence, like CI's: a restart loses every queued message."""

    def __init__(self, log_path: Path) -> None:
        found = shutil.which("redis-server")
        self.binary = require_binary(Path(found) if found else None, "redis-server")
        self.port = launch.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [str(self.binary), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with code {self.process.returncode}") from None
                time.sleep(0.05)
        raise TimeoutError("redis-server did not answer a ping")

    def stop(self) -> None:
        if self.process is not None:
            launch.stop(self.process)
            self.process = None

"""Apply Alembic migrations from code, so the API, the workers and ``condense migrate`` share one path."""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

from app.core.db import database_unavailable
from app.core.paths import REPO_ROOT

# Any fixed bigint; it only has to differ from the other advisory locks taken on the same database.
PG_MIGRATION_LOCK = int.from_bytes(b"condense", "big")
log = logging.getLogger(__name__)


@contextmanager
def startup_step(name: str) -> Iterator[None]:
    """Says which step of a process's start-up failed (uvicorn and Celery only show the exception),
    so the operator knows what to fix: the database, the data folder, the broker..."""
    try:
        yield
    except Exception as exc:
        log.error("start-up failed at step %r: %s: %s", name, type(exc).__name__, exc)
        raise


@contextmanager
def locked_connection(engine: Engine) -> Iterator[Connection]:
    """A connection of ``engine`` under the migration lock, so concurrent upgrades of one database run
    one after another: the API and the workers all migrate at start-up, and two processes started
    together would otherwise both find the database empty and both create its tables (the second
    fails). The one that waited then finds it at head.

    PostgreSQL: a session-level advisory lock, held across Alembic's own transaction (the server drops
    it if the process dies). SQLite: an exclusive ``flock`` on a file beside the database (the kernel
    drops it if the process dies), taken before connecting: its DDL is not transactional, so a lock
    inside the database would not do, and opening a fresh file switches it to WAL, which fails with
    "database is locked" rather than waiting when several processes do it at the same instant.
    """
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        path = Path(database)
        with path.with_name(f"{path.name}.migrate-lock").open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file is closed
            with engine.connect() as connection:
                yield connection
        return
    with engine.connect() as connection:
        if engine.dialect.name != "postgresql":
            yield connection
            return
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        connection.commit()  # Alembic commits only a transaction it began itself
        try:
            yield connection
        finally:
            if not connection.invalidated:  # a lost connection has released the lock already
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_MIGRATION_LOCK})
                connection.commit()


def alembic_config(database_url: str) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    # ConfigParser interpolation would read a '%' in a password as a placeholder.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def upgrade_when_reachable(database_url: str, wait_s: float) -> None:
    """``upgrade_to_head``, retried with backoff while the database cannot be reached, for up to ``wait_s``.

    A service started together with its database (or restarted during a short outage) then comes up
    by itself; an outage longer than ``wait_s`` still ends in the connection error, so a supervisor
    sees a clear failure instead of a process that never becomes ready.
    """
    if database_url.startswith("sqlite"):
        # A local file has no outage to wait for, and SQLite reports a failing migration as an
        # OperationalError too, which must not be retried.
        upgrade_to_head(database_url)
        return
    deadline = time.monotonic() + wait_s
    delay = 0.5
    while True:
        try:
            upgrade_to_head(database_url)
            return
        except Exception as exc:
            if not database_unavailable(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("database unreachable (%s); retrying the migrations in %.1f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

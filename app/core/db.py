"""Engine and session factory; one ``Database`` per process (API or worker child)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the API read while a worker writes; busy_timeout waits for a writer instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, timeout_s: float | None = None) -> Engine:
    """``timeout_s`` bounds connecting to a server and waiting for a pooled connection, so a database
    that is down fails a request (503) within seconds instead of hanging it; None keeps the drivers' waits."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if timeout_s is None:
        return create_engine(url, pool_pre_ping=True)
    # Keepalives notice a server host that vanished without closing its connections.
    connect_args = {"connect_timeout": max(1, round(timeout_s)), "keepalives_idle": 10, "keepalives_interval": 5}
    return create_engine(url, pool_pre_ping=True, pool_timeout=timeout_s, connect_args=connect_args)


# SQLite reports a syntax error or a missing table as OperationalError too; only these mean "try later".
_SQLITE_TRANSIENT = ("database is locked", "unable to open database file", "disk i/o error")


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or gave no connection in time (as opposed to refusing a statement).

    Server drivers report a refused or lost connection as OperationalError or InterfaceError; a
    connection that broke under another error type is flagged ``connection_invalidated``.
    """
    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.Error):
        return any(reason in str(exc.orig).lower() for reason in _SQLITE_TRANSIENT)
    return isinstance(exc, OperationalError | InterfaceError)


class Database:
    def __init__(self, url: str, timeout_s: float | None = None) -> None:
        self.engine = make_engine(url, timeout_s)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block succeeds, rolled back when it raises."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()

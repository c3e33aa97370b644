"""Engine and session factory; one ``Database`` per process (API or worker child)."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.errors import _WaitTimeout
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the API read while a worker writes; busy_timeout waits for a writer instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class AnsweringConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait on the server is bounded by ``io_timeout_s``.

    A server that keeps its sockets open but stops answering (a frozen process or VM, a host under
    SIGSTOP) is invisible to TCP: the kernel still acknowledges the bytes, so keepalives and
    ``tcp_user_timeout`` never fire, and a server-side ``statement_timeout`` cannot run. psycopg waits
    for every statement, commit, rollback and ping in ``wait``, so bounding it here bounds them all.
    """

    io_timeout_s: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            return super().wait(gen, interval, timeout if timeout is not None else self.io_timeout_s)
        except _WaitTimeout as exc:  # psycopg's own timeout type; it leaves the protocol mid-exchange
            self.pgconn.finish()  # so the connection is closed and never reused (SQLAlchemy sees it broken)
            raise psycopg.OperationalError(
                f"the database did not answer within {self.io_timeout_s:g} s; the connection was closed"
            ) from exc


def finite_json(value: Any) -> str:
    """JSON for the JSON columns, with NaN and infinities written as null.

    Python's json writes them as ``NaN``/``Infinity``, which SQLite stores but PostgreSQL refuses (the
    whole statement fails: a lost baseline, a failed job), so the same write would succeed on one backend
    and fail on the other. They have no JSON form; null is what the reports use for an undefined figure.
    """
    return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def make_engine(url: str, timeout_s: float | None = None, statement_timeout_s: float | None = None) -> Engine:
    """``timeout_s`` bounds connecting to a server and waiting for a pooled connection, so a database
    that is down fails a request (503) within seconds instead of hanging it; ``statement_timeout_s``
    bounds each statement: the server cancels it after that long, and a server that stops answering
    altogether has its connection closed a little later. None keeps the drivers' waits (migrations)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, json_serializer=finite_json, connect_args={"check_same_thread": False, "timeout": 30}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if timeout_s is None:
        return create_engine(url, json_serializer=finite_json, pool_pre_ping=True)
    # Keepalives notice a server host that vanished without closing its connections.
    connect_args: dict[str, Any] = {
        "connect_timeout": max(1, round(timeout_s)),
        "keepalives_idle": 10,
        "keepalives_interval": 5,
    }
    if statement_timeout_s is not None:
        connect_args["options"] = f"-c statement_timeout={round(statement_timeout_s * 1000)}"
    engine = create_engine(
        url, json_serializer=finite_json, pool_pre_ping=True, pool_timeout=timeout_s, connect_args=connect_args
    )
    if statement_timeout_s is not None and engine.dialect.driver == "psycopg":
        # The server's own cancel (a clean error, the connection kept) comes first; this is for a server
        # that cannot send it.
        io_timeout_s = statement_timeout_s + STATEMENT_GRACE_S

        @event.listens_for(engine, "do_connect")
        def _connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> AnsweringConnection:
            connection = AnsweringConnection.connect(*cargs, **cparams)
            connection.io_timeout_s = io_timeout_s
            return connection

    return engine


STATEMENT_GRACE_S = 2.0


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
    def __init__(self, url: str, timeout_s: float | None = None, statement_timeout_s: float | None = None) -> None:
        self.engine = make_engine(url, timeout_s, statement_timeout_s)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def for_service(cls, settings: Settings) -> Database:
        """The API's and the workers' database: every wait on it bounded by the settings."""
        return cls(settings.database_url, settings.dependency_timeout_s, settings.statement_timeout_s)

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

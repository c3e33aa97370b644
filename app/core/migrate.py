"""Apply Alembic migrations from code, so the API, the workers and ``condense migrate`` share one path."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.core.db import database_unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)


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

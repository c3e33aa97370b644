"""The Alembic migrations build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.core.db import make_engine
from app.core.migrate import alembic_config, upgrade_to_head
from app.models import Base
from tests.service_fixtures import SERVERS, TEST_DATABASE_ENV, service_environment


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    url = os.environ.get(TEST_DATABASE_ENV)
    if not url:
        pytest.skip(f"set {TEST_DATABASE_ENV} to check the migrations against Postgres")
    service_environment(tmp_path, SERVERS)  # wipes the database
    return url


def test_models_and_migrations_agree(database_url: str) -> None:
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_removes_everything(database_url: str) -> None:
    upgrade_to_head(database_url)
    upgrade_to_head(database_url)  # applying twice is a no-op (API and worker both migrate at start)
    command.downgrade(alembic_config(database_url), "base")
    engine = make_engine(database_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()

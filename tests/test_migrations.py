"""The Alembic migrations build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

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


def test_rows_from_before_tenants_go_to_the_local_tenant(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "0002")
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO datasets (id, name, format, status, content_hash, size_bytes, num_train, num_test,"
                " classes, class_counts, test_class_counts, image_shape, split, created_at) VALUES"
                " ('ds_old', 'old', 'npz', 'ready', 'sha', 1, 1, 1, '[]', '[]', '[]', '[]', '{}', '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO expert_sets (key, blob_key, sha256, size_bytes, created_at)"
                " VALUES ('k', 'b', 's', 1, '2026-01-01')"
            )
        )
    upgrade_to_head(database_url)
    with engine.connect() as connection:
        tenants = connection.execute(text("SELECT id, name FROM tenants")).all()
        assert [name for _, name in tenants] == ["local"]
        owners = {
            row[0] for t in ("datasets", "expert_sets") for row in connection.execute(text(f"SELECT tenant_id FROM {t}"))
        }
        assert owners == {tenants[0][0]}
    engine.dispose()

"""tenants and API keys; datasets, jobs and expert sets owned by a tenant

Rows that exist before this revision are given to a tenant named ``local`` (the embedded
default's single user), so an upgraded installation keeps its data under its local key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:40:00
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite reflects 0001's unique constraints without names; batch mode needs names to drop them.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s", "pk": "pk_%(table_name)s"}
_OWNED = ("datasets", "jobs", "expert_sets")
# Unique across the service before, unique within a tenant now: dedupe and idempotency are per tenant.
_UNIQUE_PER_TENANT = (("datasets", "content_hash"), ("jobs", "idempotency_key"))


def _old_unique_name(table: str, column: str) -> str:
    if op.get_bind().dialect.name == "sqlite":
        return f"uq_{table}_{column}"
    return f"{table}_{column}_key"  # Postgres's own name for an unnamed UNIQUE


def _old_primary_key_name(table: str) -> str:
    return f"pk_{table}" if op.get_bind().dialect.name == "sqlite" else f"{table}_pkey"


def _add_owner_column(table: str, tenant_id: str | None) -> None:
    op.add_column(table, sa.Column("tenant_id", sa.String(length=40), nullable=True))
    if tenant_id is not None:
        op.execute(sa.text(f"UPDATE {table} SET tenant_id = :tenant").bindparams(tenant=tenant_id))


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("max_active_jobs", sa.Integer(), nullable=True),
        sa.Column("max_stored_bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"], unique=False)

    bind = op.get_bind()
    has_rows = any(bind.execute(sa.text(f"SELECT 1 FROM {t} LIMIT 1")).first() for t in _OWNED)
    local = None
    if has_rows:
        local = f"tn_{int(time.time() * 1000):012x}{secrets.token_hex(8)}"
        tenants = sa.table("tenants", sa.column("id"), sa.column("name"), sa.column("created_at", sa.DateTime(True)))
        op.bulk_insert(tenants, [{"id": local, "name": "local", "created_at": datetime.now(UTC)}])
    for table in _OWNED:
        _add_owner_column(table, local)

    for table, column in _UNIQUE_PER_TENANT:
        with op.batch_alter_table(table, naming_convention=_SQLITE_NAMES) as batch:
            batch.alter_column("tenant_id", existing_type=sa.String(length=40), nullable=False)
            batch.drop_constraint(_old_unique_name(table, column), type_="unique")
            batch.create_unique_constraint(f"uq_{table}_tenant_{column}", ["tenant_id", column])
            batch.create_foreign_key(f"fk_{table}_tenant_id_tenants", "tenants", ["tenant_id"], ["id"])
            batch.create_index(batch.f(f"ix_{table}_tenant_id"), ["tenant_id"], unique=False)
    with op.batch_alter_table("expert_sets", naming_convention=_SQLITE_NAMES) as batch:
        batch.alter_column("tenant_id", existing_type=sa.String(length=40), nullable=False)
        batch.drop_constraint(_old_primary_key_name("expert_sets"), type_="primary")
        batch.create_primary_key("expert_sets_pkey", ["tenant_id", "key"])
        batch.create_foreign_key("fk_expert_sets_tenant_id_tenants", "tenants", ["tenant_id"], ["id"])


def downgrade() -> None:
    # Refuses (unique violation) when two tenants hold the same content: that cannot be one global set.
    with op.batch_alter_table("expert_sets") as batch:
        batch.drop_constraint("fk_expert_sets_tenant_id_tenants", type_="foreignkey")
        batch.drop_constraint("expert_sets_pkey", type_="primary")
        batch.create_primary_key("expert_sets_pkey", ["key"])
        batch.drop_column("tenant_id")
    for table, column in _UNIQUE_PER_TENANT:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(batch.f(f"ix_{table}_tenant_id"))
            batch.drop_constraint(f"fk_{table}_tenant_id_tenants", type_="foreignkey")
            batch.drop_constraint(f"uq_{table}_tenant_{column}", type_="unique")
            batch.create_unique_constraint(f"{table}_{column}_key", [column])
            batch.drop_column("tenant_id")
    op.drop_index(op.f("ix_api_keys_tenant_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")

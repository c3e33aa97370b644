"""reuse claims and baselines by dataset: one job computes a reusable file (proxy run, expert set) while
concurrent jobs needing it wait (``reuse_claims``); baselines name the dataset they were measured on, so
deleting it deletes them. Baselines stored before this revision were keyed by the training data only
(a test set of other labels found them: issue 33) and are dropped: no later key can match them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 22:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reuse_claims",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("holder", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
    )
    op.execute("DELETE FROM baselines")
    with op.batch_alter_table("baselines") as batch:
        batch.add_column(sa.Column("dataset_id", sa.String(length=40), nullable=True))
        batch.create_foreign_key("fk_baselines_dataset_id_datasets", "datasets", ["dataset_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_baselines_dataset_id", ["dataset_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("baselines") as batch:
        batch.drop_index("ix_baselines_dataset_id")
        batch.drop_constraint("fk_baselines_dataset_id_datasets", type_="foreignkey")
        batch.drop_column("dataset_id")
    op.drop_table("reuse_claims")

"""blobs: one row per stored file, whose row lock serialises adding a reference to a shared blob with
deleting it (a dataset deleted while another tenant uploaded the same bytes lost its file)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Every file referenced today gets its row, so each stored blob has one from now on.
    op.execute(
        "INSERT INTO blobs (key, created_at) SELECT blob_key, MIN(created_at) FROM ("
        " SELECT blob_key, created_at FROM datasets WHERE blob_key IS NOT NULL"
        " UNION ALL SELECT blob_key, created_at FROM artifacts"
        " UNION ALL SELECT blob_key, created_at FROM expert_sets) AS referenced GROUP BY blob_key"
    )


def downgrade() -> None:
    op.drop_table("blobs")

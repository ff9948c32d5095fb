"""users.marketing_opted_out_at: Meta's 131050 (the user stopped marketing messages)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Non-destructive: one nullable column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("marketing_opted_out_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("marketing_opted_out_at")

"""conversations.burst_started_at / burst_count: the per-user rate limit

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Non-destructive: a nullable column and a counter defaulting to 0, on the row every
inbound message already locks and updates (no extra statement per message).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("burst_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("burst_count", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("burst_count")
        batch.drop_column("burst_started_at")

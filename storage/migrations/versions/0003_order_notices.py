"""orders.jastiper_notified_at: new orders are gathered into one notice

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Non-destructive: a nullable column, backfilled so that orders placed before this
release are not announced again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("jastiper_notified_at", sa.DateTime(timezone=True),
                                   nullable=True))
    op.execute("UPDATE orders SET jastiper_notified_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("jastiper_notified_at")

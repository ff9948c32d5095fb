"""outbox.priority: a purchase step's reply goes ahead of browsing at the number's cap

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07

Non-destructive: a column with a default; every existing row is an ordinary reply (0).
When the number sends at its tier's cap and replies queue, the senders claim the rows of
the purchase steps (checkout, confirmation, payment instructions) first (issue #28).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("priority")

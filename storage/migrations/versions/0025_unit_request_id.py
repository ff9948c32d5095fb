"""inbound_updates.request_id, outbox.request_id + trip_id, broadcasts.request_id

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07

Non-destructive: nullable columns, empty for every existing row. The webhook's
X-Request-Id is kept with the units it stored, the replies and the broadcasts they
caused, so the work done later (in another process) logs the same id (issue #24).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_updates") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("trip_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("request_id")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("trip_id")
        batch.drop_column("request_id")
    with op.batch_alter_table("inbound_updates") as batch:
        batch.drop_column("request_id")

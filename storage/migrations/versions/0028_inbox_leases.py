"""inbound_updates.lane, inbox_leases: one process at a time holds a user's units

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07

Non-destructive: a nullable column (empty for every existing row: such a unit is a lane
of its own) and a new table. On Postgres a process leases a user's lane before it parses
that user's units, so several workers (and several API instances) share the inbox
backlog without parsing the same unit twice and keep each user's order (issue #28).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_updates") as batch:
        batch.add_column(sa.Column("lane", sa.String(64), nullable=True))
        batch.create_index(batch.f("ix_inbound_updates_lane"), ["lane"], unique=False)
    op.create_table(
        "inbox_leases",
        sa.Column("lane", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lane", name=op.f("pk_inbox_leases")),
    )


def downgrade() -> None:
    op.drop_table("inbox_leases")
    with op.batch_alter_table("inbound_updates") as batch:
        batch.drop_index(batch.f("ix_inbound_updates_lane"))
        batch.drop_column("lane")

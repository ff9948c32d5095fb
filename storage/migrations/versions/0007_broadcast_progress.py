"""broadcasts.progress_at: when the fan-out last moved (stalled broadcasts go again)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Non-destructive: one nullable column. Broadcasts already dispatched or sending have
none, so the scheduler's first pass treats them as stalled and dispatches them again
(the fan-out is idempotent: nobody gets a second message).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("progress_at")

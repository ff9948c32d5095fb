"""jastipers.qris: the merchant's static QRIS for payment instructions

Revision ID: 0020
Revises: 0016
Create Date: 2026-12-07

Non-destructive: one nullable column (sealed like the other names: the payload names the
merchant), empty for every existing jastiper.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jastipers") as batch:
        batch.add_column(sa.Column("qris", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jastipers") as batch:
        batch.drop_column("qris")

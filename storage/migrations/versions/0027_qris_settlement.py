"""jastipers.qris_bank_name, jastipers.qris_account_number

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07

Non-destructive: nullable columns, empty for every existing row. The account a
jastiper's QRIS payments settle into (``/qris rekening BANK NOMOR``), so that ``/mutasi``
takes that account's statement for orders paid by QRIS (issue #22).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jastipers") as batch:
        batch.add_column(sa.Column("qris_bank_name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("qris_account_number", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jastipers") as batch:
        batch.drop_column("qris_account_number")
        batch.drop_column("qris_bank_name")

"""orders.refund_due, orders.refunded, order_items.refunded_quantity: items not found

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

Non-destructive: three integer columns, 0 for every existing row. Shipping (``/ongkir``)
uses the existing ``orders.shipping`` column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("refund_due", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("refunded", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("order_items") as batch:
        batch.add_column(
            sa.Column("refunded_quantity", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("order_items") as batch:
        batch.drop_column("refunded_quantity")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("refunded")
        batch.drop_column("refund_due")

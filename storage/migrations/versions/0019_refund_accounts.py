"""orders.refund_account (sealed), orders.paid, orders.refund_owed_at: refunds paid back
through the chat, and what a buyer has transferred for an order

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-07

Non-destructive: three new columns. ``refund_account`` holds the bank or e-wallet a buyer
gave for a refund, sealed with the PII key (NULL until asked). ``paid`` is what was
received for the order, unique digits included; existing rows are backfilled from their
status (exact for orders paid in one transfer, the best reading for the rest).
``refund_owed_at`` is when the refund now owed became owed (``/refunds`` lists the
longest waiting first).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("refund_account", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("paid", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("refund_owed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE orders SET paid = total + unique_cents + refund_due + refunded "
        "WHERE status IN ('paid', 'bought', 'shipped', 'done')"
    )
    op.execute(
        "UPDATE orders SET paid = amount_due + refund_due + refunded WHERE status = 'dp_paid'"
    )
    op.execute(
        "UPDATE orders SET paid = total - amount_due + 2 * unique_cents "
        "WHERE status = 'awaiting_balance' AND total > amount_due"
    )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("refund_owed_at")
        batch.drop_column("paid")
        batch.drop_column("refund_account")

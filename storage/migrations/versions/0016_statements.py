"""statement_credits: bank statement lines that confirmed a payment (``/mutasi``)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

Non-destructive: a new table. Each credit line of a statement that confirmed a payment
is kept under its digest, so the same statement sent again changes nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "statement_credits",
        sa.Column("id", ID, nullable=False),
        sa.Column("jastiper_id", ID, nullable=False),
        sa.Column("line_key", sa.String(length=64), nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("credited_on", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["jastiper_id"],
            ["jastipers.id"],
            name=op.f("fk_statement_credits_jastiper_id_jastipers"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_statement_credits_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_credits")),
        sa.UniqueConstraint(
            "jastiper_id", "line_key", name=op.f("uq_statement_credits_jastiper_id")
        ),
    )
    op.create_index(
        op.f("ix_statement_credits_order_id"), "statement_credits", ["order_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_statement_credits_order_id"), table_name="statement_credits")
    op.drop_table("statement_credits")

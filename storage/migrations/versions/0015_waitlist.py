"""waitlist_entries: buyers waiting for a sold-out product, and the unit held for the
one offered it

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

Non-destructive: one new table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "waitlist_entries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("product_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hold_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_waitlist_entries_product_id_products"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_waitlist_entries_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
        sa.UniqueConstraint("product_id", "user_id", name=op.f("uq_waitlist_entries_product_id")),
    )
    for column in ("product_id", "user_id", "status"):
        op.create_index(
            op.f(f"ix_waitlist_entries_{column}"), "waitlist_entries", [column], unique=False
        )


def downgrade() -> None:
    for column in ("status", "user_id", "product_id"):
        op.drop_index(op.f(f"ix_waitlist_entries_{column}"), table_name="waitlist_entries")
    op.drop_table("waitlist_entries")

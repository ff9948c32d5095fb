"""questions relayed between buyers and jastipers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ref", sa.String(length=12), nullable=False),
        sa.Column("trip_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("buyer_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.ForeignKeyConstraint(["buyer_user_id"], ["users.id"],
                                name=op.f("fk_questions_buyer_user_id_users")),
        sa.ForeignKeyConstraint(["trip_id"], ["trips.id"], name=op.f("fk_questions_trip_id_trips")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questions")),
        sa.UniqueConstraint("ref", name=op.f("uq_questions_ref")),
    )
    op.create_index(op.f("ix_questions_trip_id"), "questions", ["trip_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_questions_trip_id"), table_name="questions")
    op.drop_table("questions")

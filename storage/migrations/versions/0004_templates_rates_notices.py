"""templates and rates as data; broadcast kinds; product notices, summaries, reminders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Non-destructive: two new tables and nullable or defaulted columns. Products and orders
that exist before this release are marked as already announced / reminded, so the
first scheduler pass after the upgrade does not message everyone about old news.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("id", _ID, nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_templates")),
        sa.UniqueConstraint("purpose", "locale", name=op.f("uq_message_templates_purpose")),
    )
    op.create_table(
        "message_rates",
        sa.Column("id", _ID, nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("rupiah", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_rates")),
    )
    op.create_index(op.f("ix_message_rates_category"), "message_rates", ["category"],
                    unique=False)
    with op.batch_alter_table("trips") as batch:
        batch.add_column(sa.Column("summary_every", sa.String(length=8),
                                   server_default="weekly", nullable=False))
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE products SET announced_at = created_at")
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE orders SET reminded_at = created_at")
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), server_default="manual",
                                   nullable=False))
        batch.add_column(sa.Column("category", sa.String(length=16),
                                   server_default="marketing", nullable=False))
        batch.add_column(sa.Column("allow_paid", sa.Boolean(), server_default=sa.true(),
                                   nullable=False))
        batch.add_column(sa.Column("dedupe_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("data", sa.JSON(), nullable=True))
        batch.create_unique_constraint(op.f("uq_broadcasts_dedupe_key"), ["dedupe_key"])
    with op.batch_alter_table("broadcast_deliveries") as batch:
        batch.add_column(sa.Column("mode", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcast_deliveries") as batch:
        batch.drop_column("mode")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_constraint(op.f("uq_broadcasts_dedupe_key"), type_="unique")
        batch.drop_column("data")
        batch.drop_column("dedupe_key")
        batch.drop_column("allow_paid")
        batch.drop_column("category")
        batch.drop_column("kind")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("reminded_at")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("announced_at")
    with op.batch_alter_table("trips") as batch:
        batch.drop_column("summary_every")
    op.drop_index(op.f("ix_message_rates_category"), table_name="message_rates")
    op.drop_table("message_rates")
    op.drop_table("message_templates")

"""jastiper_web_links and jastiper_web_sessions: a jastiper's one-time web link (/web)
and the session it starts

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-02

Non-destructive: two new tables. Both store only a SHA-256 of the random token (the
link's, the cookie's), so a copy of the database opens nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jastiper_web_links",
        sa.Column("id", BigId, nullable=False),
        sa.Column("jastiper_id", BigId, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["jastiper_id"],
            ["jastipers.id"],
            name=op.f("fk_jastiper_web_links_jastiper_id_jastipers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jastiper_web_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_jastiper_web_links_token_hash")),
    )
    op.create_index(
        op.f("ix_jastiper_web_links_jastiper_id"),
        "jastiper_web_links",
        ["jastiper_id"],
        unique=False,
    )
    op.create_table(
        "jastiper_web_sessions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("jastiper_id", BigId, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["jastiper_id"],
            ["jastipers.id"],
            name=op.f("fk_jastiper_web_sessions_jastiper_id_jastipers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jastiper_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_jastiper_web_sessions_token_hash")),
    )
    op.create_index(
        op.f("ix_jastiper_web_sessions_jastiper_id"),
        "jastiper_web_sessions",
        ["jastiper_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_jastiper_web_sessions_jastiper_id"), table_name="jastiper_web_sessions")
    op.drop_table("jastiper_web_sessions")
    op.drop_index(op.f("ix_jastiper_web_links_jastiper_id"), table_name="jastiper_web_links")
    op.drop_table("jastiper_web_links")

"""pii_key_canary: the PII key is checked at start (a canary sealed with it)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

Non-destructive: a new table. ``jastipin db upgrade`` runs with the deployment's PII
key: the canary is sealed with it here, for a new database and for an existing one
alike, after checking that the key opens the values already sealed (a wrong key stops
the upgrade, nothing changes). Run without a key (tests, ``storage.migrate.upgrade``
with none), the table stays empty and the first process that checks its key claims it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pii_key_canary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("next_key_id", sa.String(length=32), nullable=True),
        sa.Column("next_sealed", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pii_key_canary")),
    )
    key = op.get_context().config.attributes.get("pii_key")  # type: ignore[union-attr]
    if key:
        from storage.crypto import PiiCipher
        from storage.keycheck import check_sync

        check_sync(op.get_bind(), PiiCipher(key), claim=True)


def downgrade() -> None:
    op.drop_table("pii_key_canary")

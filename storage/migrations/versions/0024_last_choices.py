"""conversations.choices: the last interactive message's choices, for typed labels

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07

Non-destructive: one nullable JSON column, empty for every existing conversation (a
label typed before the next interactive message goes the normal way). Written with the
row every inbound message already locks and updates: no extra statement per message.
Titles are kept only as keyed digests (a button may carry a person's name).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("choices", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("choices")

"""jastipers.bio, links, avatar_key: the profile on the jastiper's public page

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-07

Non-destructive: three nullable columns, empty for every existing jastiper. The bio and
the links are sealed like the other texts a person types about themselves; the avatar
is a media key (the photo itself is in media storage, like product photos).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jastipers") as batch:
        batch.add_column(sa.Column("bio", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("links", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("avatar_key", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jastipers") as batch:
        batch.drop_column("avatar_key")
        batch.drop_column("links")
        batch.drop_column("bio")

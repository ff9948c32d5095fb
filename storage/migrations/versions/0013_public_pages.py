"""jastipers.slug, short_links.trip_id, link_clicks: the public pages and counted links

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Non-destructive: a nullable unique column (backfilled from the names, as new jastipers
get theirs), a nullable foreign key and a new table. ``short_links.hits`` stays and is
no longer written; clicks are counted per link and day in ``link_clicks``.
"""

from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _slugify(name: str) -> str:
    # frozen copy of storage.repo.jastipers.slugify as of this revision
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")
    return slug or "jastiper"


def upgrade() -> None:
    with op.batch_alter_table("jastipers") as batch:
        batch.add_column(sa.Column("slug", sa.String(length=48), nullable=True))
        batch.create_unique_constraint(batch.f("uq_jastipers_slug"), ["slug"])
    with op.batch_alter_table("short_links") as batch:
        batch.add_column(sa.Column("trip_id", ID, nullable=True))
        batch.create_foreign_key(
            batch.f("fk_short_links_trip_id_trips"), "trips", ["trip_id"], ["id"]
        )
        batch.create_index(batch.f("ix_short_links_trip_id"), ["trip_id"], unique=False)
    op.create_table(
        "link_clicks",
        sa.Column("link_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["short_links.id"], name=op.f("fk_link_clicks_link_id_short_links")
        ),
        sa.PrimaryKeyConstraint("link_id", "day", name=op.f("pk_link_clicks")),
    )
    bind = op.get_bind()
    jastipers = sa.table("jastipers", sa.column("id"), sa.column("name"), sa.column("slug"))
    taken: set[str] = set()
    for row in bind.execute(sa.select(jastipers.c.id, jastipers.c.name).order_by(jastipers.c.id)):
        base = _slugify(row.name or "")
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug)
        bind.execute(jastipers.update().where(jastipers.c.id == row.id).values(slug=slug))


def downgrade() -> None:
    op.drop_table("link_clicks")
    with op.batch_alter_table("short_links") as batch:
        batch.drop_index(batch.f("ix_short_links_trip_id"))
        batch.drop_constraint(batch.f("fk_short_links_trip_id_trips"), type_="foreignkey")
        batch.drop_column("trip_id")
    with op.batch_alter_table("jastipers") as batch:
        batch.drop_constraint(batch.f("uq_jastipers_slug"), type_="unique")
        batch.drop_column("slug")

"""Short links (``/s/<slug>``) and their clicks per day."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LinkClick, ShortLink


async def get(session: AsyncSession, slug: str) -> ShortLink | None:
    stmt = select(ShortLink).where(ShortLink.slug == slug)
    return (await session.execute(stmt)).scalar_one_or_none()


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    stmt = select(ShortLink.id).where(ShortLink.slug == slug)
    return (await session.execute(stmt)).first() is not None


SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud, typed by hand
SLUG_LENGTH = 6


async def free_slug(session: AsyncSession) -> str:
    """A random short slug no link has yet (``k7pq2x``)."""
    while True:
        slug = "".join(secrets.choice(SLUG_ALPHABET) for _ in range(SLUG_LENGTH))
        if not await slug_taken(session, slug):
            return slug


async def of_trip(session: AsyncSession, trip_id: int) -> ShortLink | None:
    """The trip's short link (its first, should it have several)."""
    stmt = select(ShortLink).where(ShortLink.trip_id == trip_id).order_by(ShortLink.id).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def add(
    session: AsyncSession, slug: str, target: str, *, trip_id: int | None = None
) -> ShortLink:
    link = ShortLink(slug=slug, target=target, trip_id=trip_id, hits=0)
    session.add(link)
    await session.flush()
    return link


async def count_click(session: AsyncSession, link_id: int, day: dt.date) -> None:
    """One more click on ``day``: a single ``INSERT … ON CONFLICT DO UPDATE`` (no read
    first, so concurrent clicks on two API instances both count)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(LinkClick).values(link_id=link_id, day=day, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LinkClick.link_id, LinkClick.day],
        set_={"count": LinkClick.count + 1},
    )
    await session.execute(stmt)


async def clicks(session: AsyncSession, link_id: int, today: dt.date) -> tuple[int, int]:
    """(all clicks, clicks today) of a link."""
    stmt = select(
        func.coalesce(func.sum(LinkClick.count), 0),
        func.coalesce(func.sum(LinkClick.count).filter(LinkClick.day == today), 0),
    ).where(LinkClick.link_id == link_id)
    total, on_day = (await session.execute(stmt)).one()
    return int(total), int(on_day)

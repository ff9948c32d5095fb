"""Short links (``/s/<slug>``) and their click counts."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ShortLink


async def follow(session: AsyncSession, slug: str) -> str | None:
    """The link's target, counting the click; None for an unknown slug."""
    link = (
        await session.execute(select(ShortLink).where(ShortLink.slug == slug))
    ).scalar_one_or_none()
    if link is None:
        return None
    await session.execute(
        update(ShortLink).where(ShortLink.id == link.id).values(hits=ShortLink.hits + 1)
    )
    return link.target

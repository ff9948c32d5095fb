"""The waitlist of sold-out products: who waits in which order, the unit held for the
buyer offered it, and the holds that ran out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Product, Trip, TripStatus, WaitlistEntry, WaitlistStatus
from storage.repo._sql import insert_ignoring_conflicts, move_status

W = WaitlistStatus
ACTIVE = (W.WAITING.value, W.OFFERED.value)
CLOSED = (W.ORDERED.value, W.LAPSED.value)


async def entry(session: AsyncSession, product_id: int, user_id: int) -> WaitlistEntry | None:
    stmt = select(WaitlistEntry).where(
        WaitlistEntry.product_id == product_id, WaitlistEntry.user_id == user_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def join(
    session: AsyncSession, product_id: int, user_id: int, now: dt.datetime
) -> tuple[WaitlistEntry, bool]:
    """The buyer's entry for the product, put at the end of the line unless it is
    active already; True when they were not waiting before."""
    await session.execute(
        insert_ignoring_conflicts(session, WaitlistEntry, ["product_id", "user_id"]).values(
            product_id=product_id,
            user_id=user_id,
            status=W.LAPSED.value,  # closed until the conditional update below opens it
            joined_at=now,
            held=0,
            created_at=now,
        )
    )
    row = await entry(session, product_id, user_id)
    assert row is not None
    joined = await move_status(
        session, row, CLOSED, W.WAITING.value, joined_at=now, held=0, hold_until=None
    )
    return row, joined


async def place(session: AsyncSession, row: WaitlistEntry) -> int:
    """1 for the first in line: the waiting entries of the product ahead of ``row``."""
    ahead = await session.execute(
        select(func.count(WaitlistEntry.id)).where(
            WaitlistEntry.product_id == row.product_id,
            WaitlistEntry.status == W.WAITING.value,
            or_(
                WaitlistEntry.joined_at < row.joined_at,
                and_(WaitlistEntry.joined_at == row.joined_at, WaitlistEntry.id < row.id),
            ),
        )
    )
    return int(ahead.scalar_one()) + 1


async def first_waiting(session: AsyncSession, product_id: int) -> WaitlistEntry | None:
    stmt = (
        select(WaitlistEntry)
        .where(WaitlistEntry.product_id == product_id, WaitlistEntry.status == W.WAITING.value)
        .order_by(WaitlistEntry.joined_at, WaitlistEntry.id)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def move(
    session: AsyncSession, row: WaitlistEntry, sources: Iterable[str], to: str, **values: Any
) -> bool:
    """One conditional update of the entry's status (see ``move_status``)."""
    return await move_status(session, row, sources, to, **values)


async def active_of(
    session: AsyncSession, user_id: int, product_ids: Iterable[int]
) -> list[WaitlistEntry]:
    """The buyer's waiting or offered entries for these products."""
    stmt = select(WaitlistEntry).where(
        WaitlistEntry.user_id == user_id,
        WaitlistEntry.product_id.in_(tuple(product_ids)),
        WaitlistEntry.status.in_(ACTIVE),
    )
    return list((await session.execute(stmt)).scalars())


async def counts(session: AsyncSession, product_ids: Iterable[int]) -> dict[int, int]:
    """Product id → how many buyers wait for it (offered ones included)."""
    ids = tuple(product_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(WaitlistEntry.product_id, func.count(WaitlistEntry.id))
        .where(WaitlistEntry.product_id.in_(ids), WaitlistEntry.status.in_(ACTIVE))
        .group_by(WaitlistEntry.product_id)
    )
    return {int(p): int(n) for p, n in rows.all()}


async def holds_due(session: AsyncSession, now: dt.datetime) -> list[WaitlistEntry]:
    """Offered entries whose hold ran out, oldest first."""
    stmt = (
        select(WaitlistEntry)
        .where(WaitlistEntry.status == W.OFFERED.value, WaitlistEntry.hold_until <= now)
        .order_by(WaitlistEntry.hold_until, WaitlistEntry.id)
    )
    return list((await session.execute(stmt)).scalars())


async def offerable(session: AsyncSession, product_id: int) -> Product | None:
    """The product, if freed units of it may be offered: visible, in an open trip."""
    stmt = (
        select(Product)
        .join(Trip, Trip.id == Product.trip_id)
        .where(
            Product.id == product_id,
            Product.hidden.is_(False),
            Trip.status == TripStatus.OPEN.value,
        )
    )
    return (await session.execute(stmt)).scalar_one_or_none()

"""Trips and their participants."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from storage.models import Participant, Product, Trip, utcnow
from storage.repo._sql import InsertIgnoring, adopt


class TripNotFound(Exception):
    """No trip has that code."""


# built once: asked on most inbound messages (hot path)
_BY_CODE = select(Trip).where(Trip.code == bindparam("code")).options(joinedload(Trip.jastiper))
_PARTICIPANT = select(Participant).where(
    Participant.trip_id == bindparam("trip_id"), Participant.user_id == bindparam("user_id")
)


async def get_trip_by_code(session: AsyncSession, code: str) -> Trip:
    found = await session.execute(_BY_CODE, {"code": code.strip().upper()})
    trip = found.scalar_one_or_none()
    if trip is None:
        raise TripNotFound(code)
    return trip


async def get(session: AsyncSession, trip_id: int) -> Trip | None:
    return await session.get(Trip, trip_id)


async def code_taken(session: AsyncSession, code: str) -> bool:
    return (await session.execute(select(Trip.id).where(Trip.code == code))).first() is not None


async def add(session: AsyncSession, **values: Any) -> Trip:
    trip = Trip(**values)
    session.add(trip)
    await session.flush()
    return trip


async def of_jastiper(
    session: AsyncSession, jastiper_id: int, *, status: str | None = None
) -> list[Trip]:
    """A jastiper's trips, newest first (``status``: only open or only closed)."""
    stmt = select(Trip).where(Trip.jastiper_id == jastiper_id).order_by(Trip.id.desc())
    if status is not None:
        stmt = stmt.where(Trip.status == status)
    return list((await session.execute(stmt)).scalars().all())


async def with_status(session: AsyncSession, status: str) -> list[Trip]:
    return list((await session.execute(select(Trip).where(Trip.status == status))).scalars())


async def join_trip(session: AsyncSession, trip: Trip, user_id: int) -> tuple[Participant, bool]:
    """Make the user a participant of the trip; idempotent. Returns (participant, is_new).
    A new participant is one INSERT (the object is built from what was written)."""
    now = utcnow()
    values: dict[str, Any] = {
        "trip_id": trip.id,
        "user_id": user_id,
        "created_at": now,
        "last_active_at": now,
        "consent_at": None,
        "unsubscribed_at": None,
    }
    new_id = (await session.execute(_JOIN(session), values)).scalar_one_or_none()
    if new_id is not None:
        return adopt(session, Participant(id=new_id, **values)), True
    found = await session.execute(_PARTICIPANT, {"trip_id": trip.id, "user_id": user_id})
    participant = found.scalar_one()
    participant.last_active_at = now
    return participant, False


_PARTICIPANTS = cast(Table, Participant.__table__)
_JOIN = InsertIgnoring(_PARTICIPANTS, ["trip_id", "user_id"], _PARTICIPANTS.c.id)


# built once: the menu asks it on most messages of a user without a current trip
_USER_TRIPS = (
    select(Trip)
    .join(Participant, Participant.trip_id == Trip.id)
    .where(Participant.user_id == bindparam("user_id"))
    .order_by(Participant.last_active_at.desc().nulls_last(), Trip.id.desc())
)


async def user_trips(session: AsyncSession, user_id: int) -> list[Trip]:
    return list((await session.execute(_USER_TRIPS, {"user_id": user_id})).scalars().all())


async def count_participants(session: AsyncSession, trip_id: int) -> int:
    stmt = select(func.count()).select_from(Participant).where(Participant.trip_id == trip_id)
    return int((await session.execute(stmt)).scalar_one())


async def visible_products(session: AsyncSession, trip_id: int) -> list[Product]:
    stmt = (
        select(Product)
        .where(Product.trip_id == trip_id, Product.hidden.is_(False))
        .order_by(Product.position)
    )
    return list((await session.execute(stmt)).scalars().all())


async def purge_unsubscribed(session: AsyncSession, before: dt.datetime) -> int:
    """Remove participants who unsubscribed before ``before``; how many went."""
    result = await session.execute(
        delete(Participant).where(
            Participant.unsubscribed_at.is_not(None), Participant.unsubscribed_at < before
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)

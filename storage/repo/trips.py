"""Trips, products and participants."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Participant, Product, Trip, utcnow
from storage.repo._sql import insert_ignoring_conflicts


class TripNotFound(Exception):
    """No trip has that code."""


async def get_trip_by_code(session: AsyncSession, code: str) -> Trip:
    trip = (
        await session.execute(
            select(Trip)
            .where(Trip.code == code.strip().upper())
            .options(selectinload(Trip.jastiper))
        )
    ).scalar_one_or_none()
    if trip is None:
        raise TripNotFound(code)
    return trip


async def join_trip(session: AsyncSession, trip: Trip, user_id: int) -> tuple[Participant, bool]:
    """Make the user a participant of the trip; idempotent. Returns (participant, is_new)."""
    result = await session.execute(
        insert_ignoring_conflicts(session, Participant, ["trip_id", "user_id"])
        .values(trip_id=trip.id, user_id=user_id, created_at=utcnow(), last_active_at=utcnow())
        .returning(Participant.id)
    )
    new_id = result.scalar_one_or_none()
    participant = (
        await session.execute(
            select(Participant).where(
                Participant.trip_id == trip.id, Participant.user_id == user_id
            )
        )
    ).scalar_one()
    participant.last_active_at = utcnow()
    return participant, new_id is not None


async def user_trips(session: AsyncSession, user_id: int) -> list[Trip]:
    stmt = (
        select(Trip)
        .join(Participant, Participant.trip_id == Trip.id)
        .where(Participant.user_id == user_id)
        .order_by(Participant.last_active_at.desc().nulls_last(), Trip.id.desc())
    )
    return list((await session.execute(stmt)).scalars().all())


async def count_products(session: AsyncSession, trip_id: int) -> int:
    stmt = select(func.count()).where(Product.trip_id == trip_id, Product.hidden.is_(False))
    return int((await session.execute(stmt)).scalar_one())


async def visible_products(session: AsyncSession, trip_id: int) -> list[Product]:
    stmt = (
        select(Product)
        .where(Product.trip_id == trip_id, Product.hidden.is_(False))
        .order_by(Product.position)
    )
    return list((await session.execute(stmt)).scalars().all())

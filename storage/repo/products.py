"""Products of a trip: catalogue reads, the jastiper's edits, and stock moves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Product, Trip, TripStatus


async def get(session: AsyncSession, product_id: int) -> Product | None:
    return await session.get(Product, product_id)


async def of_trip(
    session: AsyncSession, trip_id: int, *, visible_only: bool = False
) -> list[Product]:
    """A trip's products in catalogue order (``visible_only``: not hidden)."""
    stmt = select(Product).where(Product.trip_id == trip_id).order_by(Product.position)
    if visible_only:
        stmt = stmt.where(Product.hidden.is_(False))
    return list((await session.execute(stmt)).scalars().all())


async def by_position(session: AsyncSession, trip_id: int, position: int) -> Product | None:
    stmt = select(Product).where(Product.trip_id == trip_id, Product.position == position)
    return (await session.execute(stmt)).scalar_one_or_none()


async def add(session: AsyncSession, trip_id: int, **values: Any) -> Product:
    """A new product at the end of the trip's catalogue."""
    last = (
        await session.execute(
            select(func.coalesce(func.max(Product.position), 0)).where(Product.trip_id == trip_id)
        )
    ).scalar_one()
    product = Product(trip_id=trip_id, position=int(last) + 1, **values)
    session.add(product)
    await session.flush()
    return product


async def reserve(session: AsyncSession, product_id: int, quantity: int) -> bool:
    """One conditional update: take ``quantity`` only if that much is left."""
    result = await session.execute(
        update(Product)
        .where(
            Product.id == product_id,
            Product.hidden.is_(False),
            (Product.stock.is_(None)) | (Product.stock >= quantity),
        )
        .values(stock=Product.stock - quantity)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def release(session: AsyncSession, product_id: int, quantity: int) -> None:
    """Give reserved units back (a product with unlimited stock stays unlimited)."""
    await session.execute(
        update(Product)
        .where(Product.id == product_id, Product.stock.is_not(None))
        .values(stock=Product.stock + quantity)
    )


async def stock_of(session: AsyncSession, product_id: int) -> int | None:
    stmt = select(Product.stock).where(Product.id == product_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def unannounced_by_trip(session: AsyncSession) -> list[tuple[int, dt.datetime, int]]:
    """(trip id, newest creation, highest id) of open trips with products nobody was
    told about yet."""
    rows = await session.execute(
        select(Product.trip_id, func.max(Product.created_at), func.max(Product.id))
        .join(Trip, Trip.id == Product.trip_id)
        .where(
            Product.announced_at.is_(None),
            Product.hidden.is_(False),
            Trip.status == TripStatus.OPEN.value,
        )
        .group_by(Product.trip_id)
    )
    return [(int(t), newest, int(last)) for t, newest, last in rows.all()]


async def unannounced_ids(session: AsyncSession, trip_id: int, up_to: int) -> list[int]:
    stmt = select(Product.id).where(
        Product.trip_id == trip_id,
        Product.announced_at.is_(None),
        Product.hidden.is_(False),
        Product.id <= up_to,
    )
    return list((await session.execute(stmt)).scalars())


async def mark_announced(session: AsyncSession, ids: Iterable[int], at: dt.datetime) -> None:
    await session.execute(
        update(Product).where(Product.id.in_(tuple(ids))).values(announced_at=at)
    )


async def visible_by_ids(session: AsyncSession, ids: Iterable[int]) -> list[Product]:
    stmt = (
        select(Product)
        .where(Product.id.in_(tuple(ids)), Product.hidden.is_(False))
        .order_by(Product.position)
    )
    return list((await session.execute(stmt)).scalars())


async def names_since(session: AsyncSession, trip_id: int, since: dt.datetime) -> list[str]:
    stmt = (
        select(Product.name)
        .where(Product.trip_id == trip_id, Product.hidden.is_(False), Product.created_at >= since)
        .order_by(Product.position)
    )
    return list((await session.execute(stmt)).scalars())


async def first_photos(session: AsyncSession, trip_ids: list[int]) -> dict[int, Product]:
    """Trip id → its first visible product with a photo (the trip's cover)."""
    if not trip_ids:
        return {}
    stmt = (
        select(Product)
        .where(
            Product.trip_id.in_(trip_ids),
            Product.hidden.is_(False),
            Product.image_key.is_not(None),
        )
        .order_by(Product.trip_id, Product.position.desc())
    )
    # positions descending: each trip's lowest position comes last and wins the dict
    return {p.trip_id: p for p in (await session.execute(stmt)).scalars().all()}

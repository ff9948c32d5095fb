"""The fast tier: a service against an in-memory SQLite, no app, no Graph API, no
network. A rule is tested here, where it lives; the dialogue and panel tests show the
doors still say it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from storage.models import Base, Jastiper, JastiperStatus, Order, OrderStatus, Trip, User
from storage.uow import Session


@pytest.fixture
async def session() -> AsyncIterator[AsyncSession]:
    """A session on a fresh in-memory SQLite holding every table (no migrations run),
    with a unit of work as ``Database``'s: what it staged is written by ``commit()``."""
    engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with async_sessionmaker(engine, class_=Session, expire_on_commit=False)() as session:
        yield session
    await engine.dispose()


@pytest.fixture
async def order(session: AsyncSession) -> Order:
    """A paid order of a buyer in an open trip of an approved jastiper."""
    owner, buyer = User(locale="id"), User(locale="en")
    session.add_all([owner, buyer])
    await session.flush()
    jastiper = Jastiper(user_id=owner.id, name="Tina", status=JastiperStatus.APPROVED.value)
    session.add(jastiper)
    await session.flush()
    trip = Trip(jastiper_id=jastiper.id, code="UNIT", title="Unit", destination="Tokyo")
    session.add(trip)
    await session.flush()
    row = Order(code="UNIT-1", trip_id=trip.id, user_id=buyer.id, status=OrderStatus.PAID.value)
    session.add(row)
    await session.flush()
    return row

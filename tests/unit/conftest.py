"""The fast tier: a service against an in-memory SQLite, no app, no Graph API, no
network. A rule is tested here, where it lives; the dialogue and panel tests show the
doors still say it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from storage.models import Base


@pytest.fixture
async def session() -> AsyncIterator[AsyncSession]:
    """A session on a fresh in-memory SQLite holding every table (no migrations run)."""
    engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield session
    await engine.dispose()

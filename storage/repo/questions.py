"""Buyers' questions to a trip's jastiper, answered by reference."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Question


async def add(
    session: AsyncSession,
    *,
    ref: str,
    trip_id: int,
    buyer_user_id: int,
    text: str,
    created_at: dt.datetime,
) -> Question:
    question = Question(
        ref=ref, trip_id=trip_id, buyer_user_id=buyer_user_id, text=text, created_at=created_at
    )
    session.add(question)
    return question


async def count_since(
    session: AsyncSession, *, trip_id: int, buyer_user_id: int, since: dt.datetime
) -> int:
    """How many questions the buyer relayed to this trip since ``since`` (on the trip
    index: a trip's questions are few)."""
    stmt = select(func.count(Question.id)).where(
        Question.trip_id == trip_id,
        Question.buyer_user_id == buyer_user_id,
        Question.created_at >= since,
    )
    return int((await session.execute(stmt)).scalar_one())


async def by_ref(session: AsyncSession, ref: str) -> Question | None:
    stmt = select(Question).where(Question.ref == ref.upper())
    return (await session.execute(stmt)).scalar_one_or_none()

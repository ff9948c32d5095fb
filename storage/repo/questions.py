"""Buyers' questions to a trip's jastiper, answered by reference."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Question


async def add(
    session: AsyncSession, *, ref: str, trip_id: int, buyer_user_id: int, text: str
) -> Question:
    question = Question(ref=ref, trip_id=trip_id, buyer_user_id=buyer_user_id, text=text)
    session.add(question)
    return question


async def by_ref(session: AsyncSession, ref: str) -> Question | None:
    stmt = select(Question).where(Question.ref == ref.upper())
    return (await session.execute(stmt)).scalar_one_or_none()

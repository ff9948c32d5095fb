"""Conversation rows: the per-user state and the per-user lock."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Conversation, utcnow
from storage.repo._sql import insert_ignoring_conflicts, is_postgres


async def lock_conversation(session: AsyncSession, user_id: int) -> Conversation:
    """The user's conversation, created if missing, locked for this transaction.

    On Postgres this is ``SELECT … FOR UPDATE``: a second update of the same user
    waits here until the first one commits, then sees its state.
    """
    stmt = select(Conversation).where(Conversation.user_id == user_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    stmt = stmt.execution_options(populate_existing=True)
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is not None:  # the usual case: one statement
        return found
    await session.execute(
        insert_ignoring_conflicts(session, Conversation, ["user_id"]).values(
            user_id=user_id, flow="menu", state="idle", data={}, version=0, updated_at=utcnow()
        )
    )
    return (await session.execute(stmt)).scalar_one()


async def get_conversation(session: AsyncSession, user_id: int) -> Conversation | None:
    return (
        await session.execute(select(Conversation).where(Conversation.user_id == user_id))
    ).scalar_one_or_none()

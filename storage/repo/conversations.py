"""Conversation rows: the per-user state and the per-user lock."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Conversation, utcnow
from storage.repo._sql import insert_ignoring_conflicts, is_postgres

# built once: every inbound message locks its conversation (hot path)
_LOCK = (
    select(Conversation)
    .where(Conversation.user_id == bindparam("user_id"))
    .execution_options(populate_existing=True)
)
_LOCK_PG = _LOCK.with_for_update()


async def lock_conversation(session: AsyncSession, user_id: int) -> Conversation:
    """The user's conversation, created if missing, locked for this transaction.

    On Postgres this is ``SELECT … FOR UPDATE``: a second update of the same user
    waits here until the first one commits, then sees its state.
    """
    stmt = _LOCK_PG if is_postgres(session) else _LOCK
    found = (await session.execute(stmt, {"user_id": user_id})).scalar_one_or_none()
    if found is not None:  # the usual case: one statement
        return found
    await session.execute(
        insert_ignoring_conflicts(session, Conversation, ["user_id"]).values(
            user_id=user_id, flow="menu", state="idle", data={}, version=0, updated_at=utcnow()
        )
    )
    return (await session.execute(stmt, {"user_id": user_id})).scalar_one()


async def get_conversation(session: AsyncSession, user_id: int) -> Conversation | None:
    return (
        await session.execute(select(Conversation).where(Conversation.user_id == user_id))
    ).scalar_one_or_none()

"""Conversation rows: the per-user state and the per-user lock."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Conversation, utcnow
from storage.repo._sql import adopt, insert_ignoring_conflicts, is_postgres

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
    return await new_conversation(session, user_id)


async def new_conversation(session: AsyncSession, user_id: int) -> Conversation:
    """Create the conversation of a user who has none (a new user: one INSERT, no SELECT
    before or after). The inserted row is locked by this transaction; if another
    transaction created it first, theirs is read (waiting for its lock on Postgres)."""
    values: dict[str, Any] = {
        "user_id": user_id,
        "flow": "menu",
        "state": "idle",
        "data": {},
        "version": 0,
        "updated_at": utcnow(),
        "burst_started_at": None,
        "burst_count": 0,
    }
    dialect = "postgresql" if is_postgres(session) else "sqlite"
    insert = _INSERT.get(dialect)
    if insert is None:
        insert = _INSERT[dialect] = insert_ignoring_conflicts(
            session, _CONVERSATIONS, ["user_id"]
        ).returning(_CONVERSATIONS.c.id)
    new_id = (await session.execute(insert, values)).scalar_one_or_none()
    if new_id is not None:
        return adopt(session, Conversation(id=new_id, **values))
    stmt = _LOCK_PG if is_postgres(session) else _LOCK
    return (await session.execute(stmt, {"user_id": user_id})).scalar_one()


_CONVERSATIONS = cast(Table, Conversation.__table__)
_INSERT: dict[str, Any] = {}


async def get_conversation(session: AsyncSession, user_id: int) -> Conversation | None:
    return (
        await session.execute(select(Conversation).where(Conversation.user_id == user_id))
    ).scalar_one_or_none()

"""Conversation rows: the per-user state and the per-user lock.

Every inbound message reads its user's conversation and writes it back (the hot path,
docs/BENCHMARKS.md), so the row travels as a plain row: read with one Core SELECT
(``… FOR UPDATE`` on Postgres), handed to the flows as a :class:`ConversationRow` — not
an ORM object: the unit of work never flushes it, autoflush never writes it half-way —
and written back once at the end with :func:`save`: staged on the transaction's unit of
work (``storage/uow.py``) and written by one cached UPDATE, run as one executemany for
all the conversations a batch of messages changed, just before commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import uow
from storage.models import Conversation, ConversationRow, utcnow
from storage.repo._sql import InsertIgnoring, is_postgres

_CONVERSATIONS = cast(Table, Conversation.__table__)
_COLUMNS = tuple(c.name for c in _CONVERSATIONS.c)
# built once
_LOCK = select(_CONVERSATIONS).where(_CONVERSATIONS.c.user_id == bindparam("user_id"))
_LOCK_PG = _LOCK.with_for_update()
_INSERT = InsertIgnoring(_CONVERSATIONS, ["user_id"], _CONVERSATIONS.c.id)


if {f.name for f in dataclasses.fields(ConversationRow)} != set(_COLUMNS):
    raise RuntimeError("ConversationRow no longer matches the conversations table")


def _detached(values: Any) -> ConversationRow:
    return ConversationRow(**{name: values[name] for name in _COLUMNS})


async def lock_conversation(session: AsyncSession, user_id: int) -> ConversationRow:
    """The user's conversation, created if missing, locked for this transaction.

    On Postgres this is ``SELECT … FOR UPDATE``: a second update of the same user
    waits here until the first one commits, then sees its state. Changes to the
    returned object reach the database only through :func:`save`.
    """
    stmt = _LOCK_PG if is_postgres(session) else _LOCK
    found = (await session.execute(stmt, {"user_id": user_id})).mappings().first()
    if found is not None:  # the usual case: one statement
        return _detached(found)
    return await new_conversation(session, user_id)


async def new_conversation(session: AsyncSession, user_id: int) -> ConversationRow:
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
        "choices": None,
    }
    new_id = (await session.execute(_INSERT(session), values)).scalar_one_or_none()
    if new_id is not None:
        return _detached({"id": new_id, **values})
    stmt = _LOCK_PG if is_postgres(session) else _LOCK
    return _detached((await session.execute(stmt, {"user_id": user_id})).mappings().one())


async def lock_conversations(
    session: AsyncSession, user_ids: Sequence[int]
) -> dict[int, ConversationRow]:
    """:func:`lock_conversation` for a batch of users: one SELECT (locking in user order
    on Postgres, the same order for every batch) and one INSERT for those without one."""
    wanted = sorted(set(user_ids))
    stmt = _LOCK_MANY_PG if is_postgres(session) else _LOCK_MANY
    found = (await session.execute(stmt, {"ids": wanted})).mappings().all()
    out = {row["user_id"]: _detached(row) for row in found}
    missing = [uid for uid in wanted if uid not in out]
    if missing:
        now = utcnow()
        rows = [{**_NEW, "data": {}, "user_id": uid, "updated_at": now} for uid in missing]
        inserted = (await session.execute(_INSERT_MANY(session), rows)).all()
        by_user = {row["user_id"]: row for row in rows}
        for new_id, uid in inserted:
            out[uid] = _detached({"id": new_id, **by_user[uid]})
        for uid in missing:
            if uid not in out:  # created meanwhile by another transaction
                out[uid] = await lock_conversation(session, uid)
    return out


def save(session: AsyncSession, conv: ConversationRow) -> None:
    """Write the conversation back with the transaction: staged on its unit of work and
    written, with every other conversation the transaction saved, in one executemany
    just before it commits (a batch of messages: one statement). Saved twice: the last
    state is written."""
    uow.of(session).conversation(
        conv.id, {name: getattr(conv, name) for name in uow.CONVERSATION_WRITTEN}
    )


_NEW: dict[str, Any] = {
    "flow": "menu",
    "state": "idle",
    "version": 0,
    "burst_started_at": None,
    "burst_count": 0,
    "choices": None,
}
_LOCK_MANY = (
    select(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.user_id.in_(bindparam("ids", expanding=True)))
    .order_by(_CONVERSATIONS.c.user_id)
)
_LOCK_MANY_PG = _LOCK_MANY.with_for_update()
_INSERT_MANY = InsertIgnoring(
    _CONVERSATIONS, ["user_id"], _CONVERSATIONS.c.id, _CONVERSATIONS.c.user_id
)

"""The unit of work: what one write transaction stages and writes at its end.

A batch of messages (or a job, or a web request) opens one write transaction with
:meth:`storage.db.Database.transaction`; its session owns one :class:`UnitOfWork`.
The hot path stages rows on it instead of writing them one by one: the replies
(``outbox.queue``) and the conversations' write-backs (``conversations.save``).
``Database.transaction`` writes them — one executemany each, replies first — right
before it commits; when the transaction rolls back they go with the session. Nothing
else writes them: no session listeners, nothing kept in ``session.info``.

Order rules: replies are numbered in the order queued; :meth:`UnitOfWork.savepoint`
writes the replies queued so far before it opens the savepoint, and a reply queued
while a savepoint is open goes through the ORM instead (``outbox.queue``), so rolling
the savepoint back takes it along. A conversation saved twice is written once, in its
last state.

The unit of work is reached from the session in one place, :func:`of` (the session is
a :class:`Session`, ``Database``'s session class): passing it beside the session to
every flow and service would change every signature that takes one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Conversation, OutboxMessage

_OUTBOX = cast(Table, OutboxMessage.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)

CONVERSATION_WRITTEN = (
    "flow",
    "state",
    "data",
    "version",
    "updated_at",
    "burst_started_at",
    "burst_count",
    "choices",
)
"""What a flow may change of a conversation: the columns its write-back sets."""

# built once: SQLAlchemy's compiled cache serves every transaction
_WRITE_REPLIES = insert(_OUTBOX)
_WRITE_CONVERSATIONS = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == bindparam("conv_id"))
    .values({name: bindparam(name) for name in CONVERSATION_WRITTEN})
)


class UnitOfWork:
    """The rows one transaction stages: written by :meth:`write` just before it commits."""

    __slots__ = ("conversations", "replies")

    def __init__(self) -> None:
        self.replies: list[dict[str, Any]] = []  # outbox rows, in the order queued
        self.conversations: dict[int, dict[str, Any]] = {}  # by conversation id

    def reply(self, row: dict[str, Any]) -> None:
        """Stage an outbox row (every column but the id)."""
        self.replies.append(row)

    def conversation(self, conv_id: int, values: dict[str, Any]) -> None:
        """Stage a conversation's write-back (a second one replaces the first)."""
        self.conversations[conv_id] = {**values, "conv_id": conv_id}

    async def write_replies(self, session: AsyncSession) -> None:
        """Write the replies staged so far, now, in one INSERT (before a savepoint opens,
        before a row whose id is needed now: what was said first is numbered first)."""
        if self.replies:
            rows, self.replies = self.replies, []
            await session.execute(_WRITE_REPLIES, rows)

    async def write(self, session: AsyncSession) -> None:
        """Write everything staged: called right before the transaction commits."""
        await self.write_replies(session)
        if self.conversations:
            rows = list(self.conversations.values())
            self.conversations = {}
            await session.execute(_WRITE_CONVERSATIONS, rows)

    def drop(self) -> None:
        """Forget what was staged (the transaction rolled back)."""
        self.replies = []
        self.conversations = {}

    @contextlib.asynccontextmanager
    async def savepoint(self, session: AsyncSession) -> AsyncIterator[None]:
        """``session.begin_nested()`` for code that may reply inside it: the replies
        queued before are written first, outside the savepoint, so rolling it back
        cannot take them along and what is said inside comes after them."""
        await self.write_replies(session)
        async with session.begin_nested():
            yield


class Session(AsyncSession):
    """``Database``'s session: an ``AsyncSession`` that owns the unit of work of its
    transaction. ``Database.transaction`` writes it before committing; a session used
    on its own (a script, the unit tests) writes it in :meth:`commit`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uow = UnitOfWork()

    async def commit(self) -> None:
        await self.uow.write(self)
        await super().commit()

    async def rollback(self) -> None:
        self.uow.drop()
        await super().rollback()

    async def close(self) -> None:
        self.uow.drop()  # an open transaction is rolled back by closing
        await super().close()


def of(session: AsyncSession) -> UnitOfWork:
    """The unit of work of ``session``'s transaction: the one place it is reached from a
    session. Every session ``Database`` hands out is a :class:`Session`."""
    if not isinstance(session, Session):
        raise TypeError("this session has no unit of work: open it with Database (storage.uow)")
    return session.uow

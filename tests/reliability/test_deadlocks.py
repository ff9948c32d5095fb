"""A status webhook racing the record of its own send (Postgres): the two take their
row locks in the same order, and a sending worker whose record is picked as a
deadlock's victim records again instead of leaving a sent message to be sent twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from bot.keys import OUTBOX
from services import replies
from storage.db import Database, lock_conflict
from storage.models import OutboxMessage, User
from storage.repo import outbox as outbox_repo
from storage.repo.users import upsert_user
from tests.conftest import Harness, _truncate, phone


async def _deadlock(url: str) -> DBAPIError:
    """Two transactions updating two user rows in opposite orders: Postgres rolls one
    back with "deadlock detected". Returns that error."""
    await _truncate(url)
    db = Database(url)
    try:
        async with db.transaction() as session:
            session.add_all([User(locale="id"), User(locale="id")])
        async with db.read() as session:
            a, b = (await session.execute(select(User.id).order_by(User.id))).scalars().all()
        both_hold = asyncio.Barrier(2)

        async def one(first: int, second: int) -> None:
            async with db.transaction() as session:
                await session.execute(update(User).where(User.id == first).values(locale="en"))
                async with asyncio.timeout(30):  # the other fails before it: no wait for ever
                    await both_hold.wait()
                await session.execute(update(User).where(User.id == second).values(locale="en"))

        results = await asyncio.gather(one(a, b), one(b, a), return_exceptions=True)
    finally:
        await db.dispose()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], DBAPIError)
    return errors[0]


async def test_a_deadlock_is_told_apart_from_other_database_errors(pg_url: str) -> None:
    error = await _deadlock(pg_url)
    assert lock_conflict(error)
    db = Database(pg_url)
    try:
        with pytest.raises(DBAPIError) as unique:
            async with db.transaction() as session:
                session.add_all([User(bsuid="same"), User(bsuid="same")])
    finally:
        await db.dispose()
    assert not lock_conflict(unique.value)


@pytest.fixture
def database_url(pg_url: str) -> str:
    """Only Postgres: SQLite has one writer and no deadlocks between transactions."""
    asyncio.run(_truncate(pg_url))
    return pg_url


async def test_a_send_whose_record_deadlocked_is_recorded_and_never_sent_again(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    deadlock = await _deadlock(h.settings.database_url)
    number = phone()
    async with h.db.transaction() as session:
        user = await upsert_user(session, h.cipher, bsuid=None, wa_id=number)
        outbox_repo.queue(session, user.id, replies.text("Pesananmu sudah dicatat"))

    real = outbox_repo.mark_sent_batch
    calls: list[int] = []

    async def first_one_deadlocks(session: Any, rows: list[dict[str, Any]]) -> None:
        calls.append(len(rows))
        if len(calls) == 1:
            raise deadlock  # Postgres picked this transaction as the victim
        await real(session, rows)

    monkeypatch.setattr(outbox_repo, "mark_sent_batch", first_one_deadlocks)
    await h.app[OUTBOX].flush()
    assert calls == [1, 1]
    async with h.db.read() as session:
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    assert row.status == "sent" and row.wa_message_id and row.lease_until is None
    # lease recovery finds nothing to resend: the buyer got it once
    await h.app[OUTBOX].recover()
    await h.app[OUTBOX].flush()
    assert [m["text"]["body"] for m in h.fake.sent_to(number)] == ["Pesananmu sudah dicatat"]

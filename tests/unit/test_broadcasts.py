"""Broadcast rules (``services/broadcasts.py``) both doors (chat, panel) rely on."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from locales import Translator
from services import broadcasts
from services.errors import InvalidInput, NotAllowed
from storage.models import Broadcast, BroadcastStatus, Jastiper, Order, Trip, User

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_a_text_at_the_limit_fits_and_one_more_is_refused_naming_the_limit() -> None:
    """The refusal says the limit and the length, in Indonesian and English."""
    broadcasts.check_text("x" * broadcasts.TEXT_MAX)
    with pytest.raises(InvalidInput) as refused:
        broadcasts.check_text("x" * (broadcasts.TEXT_MAX + 1))
    error = refused.value
    said = {loc: Translator(loc)(error.message, **error.params) for loc in ("id", "en")}
    assert "1001 karakter; paling banyak 1000" in said["id"]
    assert "1001" in said["en"] and "1000" in said["en"] and "karakter" not in said["en"]


async def test_a_too_long_draft_is_refused_not_cut_and_one_at_the_limit_is_kept_whole(
    session: AsyncSession, order: Order
) -> None:
    """No draft is written for a text over the limit (it used to be cut silently)."""
    trip = await session.get(Trip, order.trip_id)
    jastiper = await session.get(Jastiper, trip.jastiper_id) if trip else None
    author = await session.get(User, jastiper.user_id) if jastiper else None
    assert trip is not None and author is not None
    with pytest.raises(InvalidInput):
        await broadcasts.draft(
            session, trip, author, "y" * 1001, segment="all", default_rate=500, now=NOW
        )
    assert (await session.execute(select(Broadcast))).first() is None
    row, _est = await broadcasts.draft(
        session, trip, author, "y" * 1000, segment="all", default_rate=500, now=NOW
    )
    assert row.text == "y" * 1000 and row.status == "draft"


def test_the_moves_table_names_every_status_and_reaches_each_from_a_draft() -> None:
    """Every broadcast status has a row, and each one is reachable from a draft."""
    assert set(broadcasts.MOVES) == set(BroadcastStatus)
    reached, todo = {BroadcastStatus.DRAFT.value}, [BroadcastStatus.DRAFT.value]
    while todo:
        for nxt in broadcasts.MOVES[todo.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    assert reached == {s.value for s in BroadcastStatus}
    assert broadcasts.sources_of(BroadcastStatus.DONE) == ("sending",)
    assert broadcasts.sources_of(BroadcastStatus.DISPATCHED) == ("queued",)


async def test_a_cancelled_broadcast_cannot_be_confirmed_nor_dispatched(
    session: AsyncSession, order: Order
) -> None:
    """Once cancelled a broadcast stays so: confirming is refused, and the scheduler's
    move (a conditional update) changes nothing."""
    trip = await session.get(Trip, order.trip_id)
    jastiper = await session.get(Jastiper, trip.jastiper_id) if trip else None
    author = await session.get(User, jastiper.user_id) if jastiper else None
    assert trip is not None and author is not None
    row, _est = await broadcasts.draft(
        session, trip, author, "Halo", segment="all", default_rate=500, now=NOW
    )
    broadcasts.cancel(session, row)
    with pytest.raises(NotAllowed):
        broadcasts.confirm(session, row, paid=True)
    await session.flush()
    assert not await broadcasts.mark_dispatched(session, row.id, NOW)
    await session.refresh(row)
    assert row.status == BroadcastStatus.CANCELLED

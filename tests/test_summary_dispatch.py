"""A scheduled summary goes to the Dramatiq actor once per moment a buyer comes due and
once at its evening hour — not on every scheduler pass from morning to evening (issue
#21: with the default weekly summary the actor would have run every 20 s all Sunday)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from bot import jobs
from bot.keys import ACTORS, BROKER, OUTBOX
from services import notices
from services.sends import WINDOW
from storage.models import Broadcast, Trip, utcnow
from tests.conftest import Harness
from tests.journeys import joined, order_one, run_actor

SUMMARY = "🗓️ Ringkasan"


async def test_a_summary_is_handed_to_the_actor_once_then_at_its_evening_hour(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    buyers = [await joined(h, name) for name in ("Ani", "Budi")]
    for buyer in buyers:
        await order_one(h, buyer, "Daiso Storage Box", "1")
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(summary_every="daily"))
    morning = (utcnow() + dt.timedelta(days=1)).astimezone(notices.JAKARTA).replace(hour=8)
    assert await jobs.schedule_summaries(h.db, now=morning) == 1
    await run_actor(h)  # its first pass: nobody is due yet
    # the passes of the morning: nobody comes due, so nothing goes to the actor
    for _ in range(3):
        assert await jobs.dispatch_queued_broadcasts(h.db, h.app[ACTORS]) == 0
    assert h.app[BROKER].queues["broadcasts"].qsize() == 0, "no message for the actor"
    await h.app[OUTBOX].flush()
    assert all(not [t for t in h.fake.texts_to(b) if SUMMARY in t] for b in buyers)

    # the evening hour comes: one more hand-over, each buyer gets it once, it is done
    async with h.db.transaction() as session:
        row = (await session.execute(select(Broadcast))).scalar_one()
        row.data = {**(row.data or {}), "deliver_at": utcnow().isoformat()}
    await run_actor(h)
    await h.app[OUTBOX].flush()
    for buyer in buyers:
        assert len([t for t in h.fake.texts_to(buyer) if SUMMARY in t]) == 1
    assert await jobs.dispatch_queued_broadcasts(h.db, h.app[ACTORS]) == 0
    async with h.db.read() as session:
        assert (await session.execute(select(Broadcast.status))).scalar_one() == "done"


def test_the_next_run_is_when_the_next_buyer_comes_due() -> None:
    evening = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)  # Sunday 19.00 WIB
    summary = Broadcast(kind="summary", data={"deliver_at": evening.isoformat()})
    morning = evening - dt.timedelta(hours=11)  # 08.00 WIB
    closes = evening - dt.timedelta(hours=9)  # a buyer's window closes at 10.00 WIB
    wrote = [None, closes - WINDOW, morning - dt.timedelta(minutes=5)]
    comes_due = closes - notices.WINDOW_CLOSING
    assert notices.summary_next_run(summary, wrote, morning) == comes_due
    assert notices.summary_next_run(summary, wrote, comes_due) == evening, "then the evening"
    assert notices.summary_next_run(summary, wrote, evening) is None, "then never again"

    assert notices.summary_run_due(summary, morning), "not fanned out yet"
    summary.data = {**(summary.data or {}), "next_run": comes_due.isoformat()}
    assert not notices.summary_run_due(summary, morning)
    assert notices.summary_run_due(summary, comes_due)
    summary.data = {**summary.data, "next_run": None}
    assert not notices.summary_run_due(summary, evening + dt.timedelta(hours=1))

"""The scheduler keeps going: a periodic job that raises fails alone (logged without
anyone's data, counted, tried again on the next pass), and a broadcast whose Dramatiq
message was lost — or whose worker died half-way — is dispatched again, with every
recipient still getting exactly one message, even when the original turns out to be
running after all (on SQLite and on Postgres)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import dramatiq
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from bot import jobs
from bot.keys import ACTORS, BROKER, OUTBOX
from bot.logs import JsonFormatter
from bot.worker import run_scheduler
from services import broadcasts, orders
from storage.db import Database
from storage.demo import DEMO_PHONE
from storage.models import Broadcast, Order, OrderStatus, Product, utcnow
from storage.repo import broadcasts as broadcasts_repo
from storage.repo import trips as trips_repo
from storage.repo.users import upsert_user
from tests.conftest import Harness
from tests.journeys import joined, tina

TEXT = "Royce Nama Chocolate restock besok!"
BUYER_NAME = "Sari Wulan"


@contextlib.asynccontextmanager
async def dramatiq_worker(h: Harness) -> AsyncIterator[None]:
    """A real Dramatiq worker on the app's (stub) broker, running the actors."""
    worker = dramatiq.Worker(h.app[BROKER], worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        yield
    finally:
        await asyncio.to_thread(worker.stop)


async def _drain_actors(h: Harness) -> None:
    """Wait until every queued actor message ran (raising if one failed)."""
    await asyncio.to_thread(h.app[BROKER].join, "broadcasts", fail_fast=True, timeout=60_000)


def _queued_messages(h: Harness) -> int:
    return int(h.app[BROKER].queues["broadcasts"].qsize())


async def _broadcast(h: Harness, buyers: int) -> tuple[list[str], int]:
    """``buyers`` join the demo trip, the first sends STOP, Tina confirms a broadcast."""
    await h.seed_demo()
    await tina(h, "/summary DEMO off")  # the automatic summary is not part of this test
    numbers = [await joined(h, f"B{i}") for i in range(buyers)]
    await h.say(numbers[0], "STOP")
    await tina(h, f"/broadcast DEMO {TEXT}")
    await h.tap_title(DEMO_PHONE, "Kirim")
    async with h.db.read() as session:
        broadcast_id = (
            await session.execute(select(Broadcast.id).where(Broadcast.kind == "manual"))
        ).scalar_one()
    return numbers, broadcast_id


async def _still_since(h: Harness, broadcast_id: int) -> None:
    """As if the stall period passed without the fan-out moving."""
    stall = dt.timedelta(seconds=h.settings.broadcast_stall_seconds)
    async with h.db.transaction() as session:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .values(progress_at=utcnow() - stall - dt.timedelta(seconds=1))
        )


async def _assert_each_got_it_once(h: Harness, numbers: list[str], broadcast_id: int) -> None:
    await h.app[OUTBOX].flush()
    got = {n: sum(TEXT in t for t in h.fake.texts_to(n)) for n in numbers}
    assert got == {numbers[0]: 0, **dict.fromkeys(numbers[1:], 1)}, got
    summaries = [t for t in h.fake.texts_to(DEMO_PHONE) if "Broadcast DEMO selesai" in t]
    assert len(summaries) == 1, summaries
    assert f"Broadcast DEMO selesai: {len(numbers) - 1} terkirim, 0 gagal" in summaries[0]
    async with h.db.read() as session:
        assert await broadcasts_repo.counts(session, broadcast_id) == {"sent": len(numbers) - 1}


# --- a failing job fails alone ---------------------------------------------------------------


def _failures(job: str) -> float:
    value = REGISTRY.get_sample_value("jastipin_scheduler_job_failures_total", {"job": job})
    return value or 0.0


async def _overdue_order(h: Harness, number: str) -> str:
    """An unpaid order of the buyer's whose payment deadline has passed."""
    async with h.db.transaction() as session:
        trip = await trips_repo.get_trip_by_code(session, "DEMO")
        product = (
            await session.execute(select(Product).where(Product.name.like("Hada%")))
        ).scalar_one()
        buyer = await upsert_user(session, h.cipher, bsuid=None, wa_id=number)
        order = await orders.place_order(
            session,
            trip=trip,
            buyer=buyer,
            lines=[orders.Line(product, 1)],
            address_enc=None,
            now=utcnow() - dt.timedelta(days=2),
        )
        return order.code


async def _order_status(h: Harness, code: str) -> str:
    async with h.db.read() as session:
        return str(
            (await session.execute(select(Order.status).where(Order.code == code))).scalar_one()
        )


async def test_a_failing_job_stops_neither_the_others_nor_the_next_pass(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The expiry job (the first of a pass) raises, its error quoting the buyer's number
    and name: the broadcast confirmed meanwhile still goes out in that very pass, the
    failure is logged without the number or the name and counted, the next pass runs
    everything again, and once the fault is gone the overdue order is expired."""
    h = harness
    await h.seed_demo()
    buyer = await joined(h, BUYER_NAME)
    numbers, broadcast_id = await _broadcast(h, buyers=3)
    numbers.append(buyer)  # among the broadcast's recipients too
    code = await _overdue_order(h, buyer)
    real_expire_due = orders.expire_due

    async def broken_expire_due(session: Any, now: dt.datetime) -> Any:
        raise RuntimeError(f"cannot expire {code} of {BUYER_NAME} ({buyer})")

    monkeypatch.setattr(orders, "expire_due", broken_expire_due)
    before = _failures("expire_orders")
    caplog.set_level(logging.INFO, logger="bot.jobs")

    async with dramatiq_worker(h):
        done = await jobs.run_periodic(h.db, h.app[ACTORS], h.settings)
        assert done["failed"] == 1 and "expired" not in done, done
        assert done["broadcasts"] == 1, "the jobs after the failing one ran in the same pass"
        await _drain_actors(h)
        await _assert_each_got_it_once(h, numbers, broadcast_id)
        assert _failures("expire_orders") == before + 1

        # the next pass: the fault is still there, everything else runs again
        done = await jobs.run_periodic(h.db, h.app[ACTORS], h.settings)
        assert done["failed"] == 1 and done["finished"] == 0, done
        assert _failures("expire_orders") == before + 2
        assert await _order_status(h, code) == OrderStatus.AWAITING_PAYMENT.value

        # fault gone: the job that failed twice does its work on the pass after
        monkeypatch.setattr(orders, "expire_due", real_expire_due)
        done = await jobs.run_periodic(h.db, h.app[ACTORS], h.settings)
        assert (done["failed"], done["expired"]) == (0, 1), done
    assert await _order_status(h, code) == OrderStatus.EXPIRED.value
    await h.app[OUTBOX].flush()
    assert any(f"Pesanan {code} dibatalkan otomatis" in t for t in h.fake.texts_to(buyer))
    assert _failures("expire_orders") == before + 2

    failures = [r for r in caplog.records if getattr(r, "job", None) == "expire_orders"]
    assert len(failures) == 2 and all(r.levelno == logging.ERROR for r in failures)
    assert failures[0].error == "RuntimeError"  # type: ignore[attr-defined]
    assert "expire_due" in failures[0].where  # type: ignore[attr-defined]
    formatter = JsonFormatter("scheduler")
    for record in failures:
        raw = " ".join([record.getMessage(), *map(str, record.__dict__.values())])
        line = formatter.format(record)
        for secret in (buyer, buyer[-8:], BUYER_NAME, "Wulan"):
            assert secret not in raw and secret not in line, f"personal data in: {line}"
        assert record.exc_info is None  # a traceback's message would quote the buyer


async def test_the_scheduler_command_survives_a_failing_job(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``jastipin scheduler --once`` with a job that raises finishes its pass (outbox
    recovery included) instead of dying, and says the pass had a failure (the command
    exits 1 on it, so a cron line or a deploy step sees it)."""
    h = harness
    await h.seed_demo()

    async def broken_purge(session: Any, now: dt.datetime, *, days: int) -> int:
        raise ConnectionResetError("the database went away")

    from services import trips

    monkeypatch.setattr(trips, "purge_unsubscribed", broken_purge)
    before = _failures("purge_unsubscribed"), _failures("outbox_recovery")
    assert await run_scheduler(h.settings, once=True) == 1
    assert (_failures("purge_unsubscribed"), _failures("outbox_recovery")) == (
        before[0] + 1,
        before[1],
    )


# --- a stalled broadcast goes again ----------------------------------------------------------


async def test_a_broadcast_whose_message_was_lost_is_dispatched_again_once_each(
    harness: Harness,
) -> None:
    """The scheduler marks the broadcast dispatched, then its Dramatiq message is lost
    (Redis restarted without its data). While it is fresh nothing happens; once it has
    stayed still for BROADCAST_STALL_SECONDS it is dispatched again, goes out to every
    subscribed buyer exactly once, and is not dispatched a third time."""
    h = harness
    numbers, broadcast_id = await _broadcast(h, buyers=6)
    done = await jobs.run_periodic(h.db, h.app[ACTORS], h.settings)
    assert (done["broadcasts"], done["redispatched"]) == (1, 0), done
    assert _queued_messages(h) == 1
    h.app[BROKER].flush_all()  # the message is lost
    async with h.db.read() as session:
        status = (await session.execute(select(Broadcast.status))).scalar_one()
    assert status == "dispatched"

    done = await jobs.run_periodic(h.db, h.app[ACTORS], h.settings)
    assert done["redispatched"] == 0, "dispatched again before it could have stalled"
    assert _queued_messages(h) == 0

    await _still_since(h, broadcast_id)
    async with dramatiq_worker(h):
        done = await jobs.run_periodic(h.db, h.app[ACTORS], h.settings)
        assert done["redispatched"] == 1, done
        await _drain_actors(h)
    await _assert_each_got_it_once(h, numbers, broadcast_id)

    await _still_since(h, broadcast_id)
    done = await jobs.run_periodic(h.db, h.app[ACTORS], h.settings)
    assert done["redispatched"] == 0 and _queued_messages(h) == 0, "a finished one went again"


async def test_a_fan_out_that_died_half_way_is_resumed_without_a_second_message(
    harness: Harness,
) -> None:
    """The worker died after queuing the first recipients (its message then dead after
    its retries): the broadcast stays ``sending`` with recipients not yet queued. The
    scheduler dispatches it again; those already queued are not queued twice, the rest
    get it, and nobody who joined the trip since gets a broadcast they were not counted
    in."""
    h = harness
    numbers, broadcast_id = await _broadcast(h, buyers=7)
    async with h.db.transaction() as session:
        await broadcasts.mark_dispatched(session, broadcast_id, utcnow())
    async with h.db.transaction() as session:
        assert await broadcasts.start_fan_out(session, broadcast_id, utcnow())
    async with h.db.transaction() as session:
        assert await broadcasts.queue_batch(session, broadcast_id, utcnow(), limit=2) == 2
    late = await joined(h, "Late")  # joins after the audience was fixed

    done = await jobs.run_periodic(h.db, h.app[ACTORS], h.settings)
    assert done["redispatched"] == 0, "a fan-out that just moved is not stalled"
    await _still_since(h, broadcast_id)
    async with dramatiq_worker(h):
        done = await jobs.run_periodic(h.db, h.app[ACTORS], h.settings)
        assert done["redispatched"] == 1, done
        await _drain_actors(h)
    await _assert_each_got_it_once(h, numbers, broadcast_id)
    assert not any(TEXT in t for t in h.fake.texts_to(late))


@dataclasses.dataclass
class _Pause:
    """Holds the original fan-out just after it read a batch of pending recipients (the
    moment a second fan-out of the same broadcast could read the same ones)."""

    mine: contextvars.ContextVar[bool] = dataclasses.field(
        default_factory=lambda: contextvars.ContextVar("original_fan_out", default=False)
    )
    reads: int = 0
    holding: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    release: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


async def test_dispatching_again_while_the_original_still_runs_sends_nobody_two_messages(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original message is merely slow: its fan-out (another worker process, with a
    database handle of its own) has read its second batch of recipients and not yet
    queued them when the scheduler, seeing no progress for the stall period, dispatches
    the broadcast again. The second fan-out runs to its end, then the original resumes:
    every subscribed buyer gets the broadcast exactly once."""
    h = harness
    numbers, broadcast_id = await _broadcast(h, buyers=9)
    async with h.db.transaction() as session:
        await broadcasts.mark_dispatched(session, broadcast_id, utcnow())

    pause = _Pause()
    read_pending = broadcasts_repo.pending_deliveries

    async def pending_deliveries(session: Any, broadcast_id: int, limit: int) -> Any:
        rows = await read_pending(session, broadcast_id, limit)
        if pause.mine.get():
            pause.reads += 1
            if pause.reads == 2:
                pause.holding.set()
                await pause.release.wait()
        return rows

    monkeypatch.setattr(broadcasts_repo, "pending_deliveries", pending_deliveries)

    async def original() -> int:
        pause.mine.set(True)
        other_process = Database(h.settings.database_url)
        try:
            return await jobs.fan_out(other_process, broadcast_id, chunk=3)
        finally:
            await other_process.dispose()

    first = asyncio.create_task(original())
    try:
        await asyncio.wait_for(pause.holding.wait(), timeout=60)
        await _still_since(h, broadcast_id)
        async with dramatiq_worker(h):
            done = await jobs.run_periodic(h.db, h.app[ACTORS], h.settings)
            assert done["redispatched"] == 1, done
            await _drain_actors(h)
    finally:
        pause.release.set()
        await first
    await _assert_each_got_it_once(h, numbers, broadcast_id)

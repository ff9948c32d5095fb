"""Logs an on-call person can tie together: every answer carries an ``X-Request-Id`` (a
proxy's is kept), every line written while answering carries it as ``requestId``, each
request has an access line (the route's template, never a token in the path), and ``ts``
is UTC with its offset. The release names the commit.

A message is followed by its id (docs/RUNBOOK.md): the unit the webhook stored, its
processing, the replies it caused and their sends, and the jobs it caused, each written
with the request id and the trip / participant / user ids — never a number or a name."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from sqlalchemy import select, update

from bot import jobs, simulate
from bot.inbox import split_update
from bot.keys import ACTORS, BROKER, OUTBOX, PROCESSOR
from bot.logs import JsonFormatter
from bot.reports import EventGate, release
from storage import trace
from storage.demo import DEMO_PHONE
from storage.models import InboundUpdate, Order, OutboxMessage, Trip, utcnow
from storage.repo import inbox as inbox_repo
from tests.conftest import Harness, phone, user_named
from tests.journeys import ROYCE, joined, order_one, run_actor


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    formatter = JsonFormatter("api")
    return [json.loads(formatter.format(r)) for r in caplog.records]


async def test_a_webhook_answer_carries_its_request_id_into_the_log(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="jastipin.access")  # whatever an earlier test set
    resp = await h.post(simulate.text(phone(), "HALO", name="Sari"))
    assert resp.status == 200
    request_id = resp.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    access = [
        line
        for line in _lines(caplog)
        if line.get("logger") == "jastipin.access" and line.get("requestId") == request_id
    ]
    assert len(access) == 1
    assert access[0]["msg"] == "POST /api/webhooks/whatsapp 200"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", str(access[0]["ts"]))

    # a proxy's id is kept; a header that is not an id is replaced
    kept = await h.client.get("/health", headers={"X-Request-Id": "edge-7f3a9c21"})
    assert kept.headers["X-Request-Id"] == "edge-7f3a9c21"
    assert (await kept.json())["version"] == release()  # the release Sentry names too
    junk = await h.client.get("/health", headers={"X-Request-Id": "x\u00e9<script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", junk.headers["X-Request-Id"])
    # refused requests too (a 4xx raised, not returned)
    missing = await h.client.get("/t/NOPE99")
    assert missing.status == 404 and missing.headers.get("X-Request-Id")


async def test_an_access_line_names_the_route_not_the_token(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="jastipin.access")  # whatever an earlier test set
    token = "A" * 43
    await harness.client.get(f"/j-web/{token}")
    text = "\n".join(json.dumps(line) for line in _lines(caplog))
    assert token not in text


def test_the_release_names_the_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import reports

    reports._commit.cache_clear()
    monkeypatch.setenv("JASTIPIN_COMMIT", "0123456789abcdef")
    try:
        assert release().endswith("+0123456789ab")
        assert release().startswith("jastipin@")
    finally:
        reports._commit.cache_clear()


@contextlib.contextmanager
def _json_log() -> Iterator[list[dict[str, Any]]]:
    """The lines the product writes, formatted as ``setup_logging`` formats them: when
    written, in the context of the work that wrote them (a unit, a send, a job thread)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("api"))
    root = logging.getLogger()
    root.addHandler(handler)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def _no_number(lines: list[dict[str, Any]], *numbers: str) -> None:
    text = json.dumps(lines, ensure_ascii=False)
    for number in numbers:
        assert number not in text and number[2:] not in text  # 62812… nor 812…


async def _demo_trip_id(h: Harness) -> int:
    async with h.db.read() as session:
        return int(
            (await session.execute(select(Trip.id).where(Trip.code == "DEMO"))).scalar_one()
        )


@pytest.fixture
async def demo(harness: Harness, caplog: pytest.LogCaptureFixture) -> Harness:
    """The harness with the demo trip, and the product's INFO lines on (restored after
    the test)."""
    caplog.set_level(logging.INFO)
    await harness.seed_demo()
    return harness


def _edge_id() -> str:
    """A request id as a proxy names one (a 9-digit run in it would be no number)."""
    return "edge-" + uuid.uuid4().hex[:12]


async def test_a_message_is_followed_by_its_request_id_through_its_unit_and_its_reply(
    demo: Harness,
) -> None:
    h = demo
    trip_id = await _demo_trip_id(h)
    buyer = phone()
    request_id = _edge_id()
    # Given a proxy that named the webhook request, when the buyer's JOIN goes through
    with _json_log() as lines:
        resp = await h.post(simulate.text(buyer, "JOIN DEMO", name="Sari"), request_id=request_id)
        assert resp.status == 200 and resp.headers["X-Request-Id"] == request_id
        await h.settle()
    ours = [line for line in lines if line.get("requestId") == request_id]
    # then the unit's processing and its reply's send are written with the same id, the
    # trip and the participant, by ids only
    (handled,) = [line for line in ours if line["msg"] == "inbox unit handled"]
    assert handled["tripId"] == trip_id and handled["kind"] == "message"
    assert isinstance(handled["participantId"], int) and isinstance(handled["userId"], int)
    assert str(handled["unit"]).startswith("w:")
    sends = [line for line in ours if line["msg"] == "outbox row sent"]
    assert sends and all(line["tripId"] == trip_id for line in sends)
    assert all(line["userId"] == handled["userId"] for line in sends)
    assert h.fake.sent_to(buyer), "the reply went out"
    # and never the buyer's number or name
    _no_number(ours, buyer)
    assert "Sari" not in json.dumps(ours)
    # the id is kept with the unit, for a process that takes it up later
    async with h.db.read() as session:
        stored = (await session.execute(select(InboundUpdate.request_id))).scalars().all()
    assert request_id in stored


async def test_a_unit_taken_up_later_logs_the_request_that_stored_it(demo: Harness) -> None:
    h = demo
    buyer = phone()
    request_id = _edge_id()
    # Given a unit stored by one request and left pending (its process stopped)
    units = split_update(simulate.text(buyer, "JOIN DEMO", name="Budi"))
    for unit in units:
        unit["request_id"] = request_id
    async with h.db.transaction() as session:
        await inbox_repo.store_units(session, units)
    # when a sweeper takes it up, outside any request
    with _json_log() as lines:
        assert await h.app[PROCESSOR].sweep(older_than_seconds=0) == 1
        await h.app[OUTBOX].flush()
    # then its lines and its reply's carry the id of the request that stored it
    ours = [line for line in lines if line.get("requestId") == request_id]
    assert {"inbox unit handled", "outbox row sent"} <= {line["msg"] for line in ours}
    _no_number(lines, buyer)


async def test_a_job_a_message_caused_runs_with_its_request_id(demo: Harness) -> None:
    h = demo
    buyer = await joined(h, "Rina")
    await h.say(DEMO_PHONE, "/broadcast DEMO Matcha sudah datang!", name="Tina")
    (send_id,) = [pid for title, pid in h.last_choices(DEMO_PHONE) if title == "Kirim"]
    request_id = _edge_id()
    with _json_log() as lines:
        # Given the jastiper's "Kirim" tap, posted with a known request id
        resp = await h.post(simulate.tap(DEMO_PHONE, send_id, "Kirim"), request_id=request_id)
        assert resp.status == 200
        await h.settle()
        # when the scheduler hands the broadcast to the actor and a real worker runs it
        await run_actor(h)
        await h.app[OUTBOX].flush()
    # then the job's line carries the request id, and so does every reply it queued
    (fanned,) = [line for line in lines if line["msg"] == "broadcast fanned out"]
    assert fanned["requestId"] == request_id and fanned["job"] == "send_broadcast"
    assert any("Matcha sudah datang" in t for t in h.fake.texts_to(buyer))
    async with h.db.read() as session:
        causes = (
            (
                await session.execute(
                    select(OutboxMessage.request_id).where(OutboxMessage.broadcast_id.is_not(None))
                )
            )
            .scalars()
            .all()
        )
    assert causes and set(causes) == {request_id}
    _no_number(lines, buyer, DEMO_PHONE)


async def _causes_of_broadcast_rows(h: Harness) -> list[str | None]:
    async with h.db.read() as session:
        stmt = select(OutboxMessage.request_id).where(OutboxMessage.broadcast_id.is_not(None))
        return list((await session.execute(stmt)).scalars())


async def test_a_stalled_broadcast_dispatched_again_keeps_the_request_that_confirmed_it(
    demo: Harness,
) -> None:
    h = demo
    buyer = await joined(h, "Rina")
    await h.say(DEMO_PHONE, "/broadcast DEMO Matcha sudah datang!", name="Tina")
    (send_id,) = [pid for title, pid in h.last_choices(DEMO_PHONE) if title == "Kirim"]
    request_id = _edge_id()
    broker = h.app[BROKER]
    # Given a broadcast confirmed by a known request, handed to the actor, and its
    # Dramatiq message lost (Redis restarted without its data)
    resp = await h.post(simulate.tap(DEMO_PHONE, send_id, "Kirim"), request_id=request_id)
    assert resp.status == 200
    await h.settle()
    assert await jobs.dispatch_queued_broadcasts(h.db, h.app[ACTORS]) == 1
    broker.flush_all()
    # when the scheduler finds it stalled and dispatches it again, and a worker runs it
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    with _json_log() as lines:
        worker.start()
        try:
            assert await jobs.redispatch_stalled(h.db, h.app[ACTORS], stall=dt.timedelta(0)) == 1
            await asyncio.to_thread(broker.join, "broadcasts", fail_fast=True, timeout=60_000)
        finally:
            await asyncio.to_thread(worker.stop)
        await h.app[OUTBOX].flush()
    # then the re-dispatch line, the job's line and every reply it queued name that request
    (again,) = [line for line in lines if line["msg"] == "broadcast stalled, dispatched again"]
    assert again["requestId"] == request_id and again["broadcastId"] == again["jobId"]
    (fanned,) = [line for line in lines if line["msg"] == "broadcast fanned out"]
    assert fanned["requestId"] == request_id
    assert any("Matcha sudah datang" in t for t in h.fake.texts_to(buyer))
    causes = await _causes_of_broadcast_rows(h)
    assert causes and set(causes) == {request_id}
    _no_number(lines, buyer, DEMO_PHONE)


async def test_the_replies_a_scheduled_job_queues_name_the_run_that_queued_them(
    demo: Harness,
) -> None:
    h = demo
    buyer = await joined(h, "Dewi")
    await order_one(h, buyer, ROYCE, "1")
    # Given an order left unpaid past its deadline
    async with h.db.transaction() as session:
        await session.execute(
            update(Order).values(payment_deadline=utcnow() - dt.timedelta(minutes=5))
        )
    # when a scheduler pass expires it and the reply goes out
    with _json_log() as lines:
        done = await jobs.run_periodic(h.db, None, h.settings)
        assert done["expired"] == 1 and done["failed"] == 0, done
        await h.app[OUTBOX].flush()
    assert any("dibatalkan otomatis" in t for t in h.fake.texts_to(buyer))
    # then the job's line has an id of its own run, and the reply's row and its send's
    # line carry the same
    (expired,) = [line for line in lines if line["msg"] == "expired unpaid orders"]
    run = expired["requestId"]
    assert re.fullmatch(r"[0-9a-f]{32}", run) and expired["job"] == "expire_orders"
    async with h.db.read() as session:
        buyer_id = await user_named(session, "Dewi")
        stmt = (
            select(OutboxMessage.request_id)
            .where(OutboxMessage.user_id == buyer_id)
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
        assert (await session.execute(stmt)).scalar_one() == run
    sends = [line for line in lines if line["msg"] == "outbox row sent"]
    assert {line["requestId"] for line in sends if line["userId"] == buyer_id} == {run}
    _no_number(lines, buyer)


async def test_a_number_given_as_request_id_is_not_kept(harness: Harness) -> None:
    for number in ("6281219039736", "+62-812-1903-9736"):
        resp = await harness.client.get("/health", headers={"X-Request-Id": number})
        assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-Id"])


def test_an_error_report_names_the_request_and_the_ids_of_the_work_that_failed() -> None:
    gate = EventGate()
    event = {"level": "error", "logentry": {"message": "processing an inbound unit failed"}}
    with trace.scope("5f0e1d2c3b4a59687706f5e4", tripId=3, userId=7, unit="w:h1:ab"):
        out = gate(event)
    assert out is not None
    assert out["extra"] == {
        "requestId": "5f0e1d2c3b4a59687706f5e4",  # written as it is: ours, not a number
        "tripId": 3,
        "userId": 7,
        "unit": "w:h1:ab",
    }

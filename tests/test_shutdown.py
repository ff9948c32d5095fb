"""SIGTERM to ``jastipin serve`` in the middle of buyers' messages and a broadcast, then a
replacement process, on SQLite and on Postgres (and to a sending ``jastipin worker``, as
compose runs it): nothing lost, nothing sent twice, and the rows the stopped process had
claimed but not sent go out from the replacement at once, not after their lease (set to
two minutes here, far longer than this test waits)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import secrets
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot import simulate
from bot.jobs import fan_out
from bot.runtime import (
    INBOX_DRAIN_SECONDS,
    JOBS_DRAIN_SECONDS,
    OUTBOX_DRAIN_SECONDS,
    WEBHOOK_DRAIN_SECONDS,
)
from storage.db import Database
from storage.demo import DEMO_PHONE
from storage.models import Broadcast, OutboxMessage, utcnow
from tests.conftest import APP_SECRET, phone
from tests.fakes.graph_api import FakeGraphAPI
from tests.stack import Stack, jastipers_broadcast, seed_participants, until_drained
from tests.stack import received as _received
from tests.stack import stack as stack_fixture
from tests.stack import until as _until

stack = stack_fixture  # Postgres, Redis, and the processes' logs: one fixture, two modules

LEASE_SECONDS = 120
RECIPIENTS = 150
BUYERS = 45
SUMMARY = "Broadcast DEMO selesai"  # what the jastiper is told when it is done

# Real processes stopped and replaced mid-stream on both databases, each step with its
# own deadline of up to 60 s (a replacement's start-up, a drain): more than the suite's
# 120 s on a loaded machine, never more than this
pytestmark = pytest.mark.timeout(300)


async def _post_as_meta(client: httpx.AsyncClient, raw: bytes) -> None:
    """Meta's delivery: a webhook not answered 200 (no process listening, or one that is
    stopping) is posted again until one is."""
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": simulate.sign(raw, APP_SECRET),
    }
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60  # Meta goes on for days; a test fails after a minute
    while loop.time() < deadline:
        try:
            resp = await client.post("/api/webhooks/whatsapp", content=raw, headers=headers)
            if resp.status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("no process acknowledged the webhook for 60 s")


async def _stream(port: int, buyers: list[str], posted: list[str]) -> None:
    """Each buyer sends ``JOIN DEMO``, one after another."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for i, number in enumerate(buyers):
            await _post_as_meta(
                client, simulate.encode(simulate.text(number, "JOIN DEMO", name=f"B{i}"))
            )
            posted.append(number)
            await asyncio.sleep(0.1)


def _handed_back(log_text: str) -> int:
    """How many claimed rows the stopped process said it handed back."""
    total = 0
    for line in log_text.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("msg") == "outbox rows handed back at shutdown":
                total += int(entry["released"])
    return total


async def _rows(db: Database, *where: object) -> int:
    async with db.read() as session:
        stmt = select(func.count(OutboxMessage.id)).where(*where)  # type: ignore[arg-type]
        return int((await session.execute(stmt)).scalar_one())


async def test_sigterm_mid_stream_loses_nothing_and_sends_nothing_twice(
    database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> None:
    s = Stack(tmp_path, fake_graph, database_url, prefix=f"jp-stop-{secrets.token_hex(4)}")
    del s.env["REDIS_URL"]  # the embedded default: serve converses and sends by itself
    s.env.update(
        OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS),
        OUTBOX_RESEND_GRACE_SECONDS=str(LEASE_SECONDS),
        BROADCAST_RATE_LIMIT="20",
        LOG_LEVEL="INFO",
    )
    fake_graph.latency = 0.3  # every send is in flight for a while
    text = f"Pre-order Shiroi Koibito ditutup Jumat! ({secrets.token_hex(3)})"
    db = Database(database_url)
    try:
        await s.run("db", "upgrade")
        await s.run("demo")
        recipients = await seed_participants(s, RECIPIENTS, text)
        async with db.read() as session:
            broadcast_id = (
                await session.execute(select(Broadcast.id).where(Broadcast.kind == "manual"))
            ).scalar_one()
        await s.serve()
        await fan_out(db, broadcast_id)  # the job's work: the sends are queued

        buyers = [phone() for _ in range(BUYERS)]
        posted: list[str] = []
        streams = [asyncio.create_task(_stream(s.port, buyers[i::3], posted)) for i in range(3)]
        await _until(
            lambda: len(posted) >= BUYERS // 3 and len(_received(fake_graph, text)) >= 20,
            within=60,
            what=lambda: f"{len(posted)} posted, {len(_received(fake_graph, text))} sent",
        )
        old = s.procs.pop("serve")
        os.kill(old.pid, signal.SIGTERM)
        code = await asyncio.wait_for(old.wait(), timeout=60)
        stopped_at = utcnow()
        assert code == 0, s.log_text("serve")[-3000:]
        sent_by_old = len(_received(fake_graph, text))
        assert sent_by_old < RECIPIENTS, "the broadcast finished before the SIGTERM"
        # nothing is left claimed: what was in flight was recorded, the rest handed back
        assert await _rows(db, OutboxMessage.status == "sending") == 0
        handed_back = _handed_back(s.log_text("serve"))
        assert handed_back > 0, "no claimed row was waiting at the SIGTERM"

        assert s.http is not None
        await s.http.aclose()
        await s.serve()  # the replacement
        await asyncio.gather(*streams)
        await _until(
            lambda: (
                all(fake_graph.sent_to(b) for b in buyers)
                and len(_received(fake_graph, text)) == RECIPIENTS
                and any(SUMMARY in t for t in fake_graph.texts_to(DEMO_PHONE))
            ),
            within=60,
            what=lambda: (
                f"{sum(1 for b in buyers if fake_graph.sent_to(b))} of {BUYERS} buyers "
                f"answered, {len(_received(fake_graph, text))} of {RECIPIENTS} recipients "
                f"reached, Tina told: {fake_graph.texts_to(DEMO_PHONE)[-1:]}\n"
                f"{s.log_text('serve')[-3000:]}"
            ),
        )
        await until_drained(db, within=30)
        status, deliveries = await jastipers_broadcast(db)
        async with db.read() as session:
            last_sent = (
                await session.execute(select(func.max(OutboxMessage.sent_at)))
            ).scalar_one()
        sent_after = await _rows(db, OutboxMessage.sent_at > stopped_at)
    finally:
        await s.close()
        await db.dispose()

    # every buyer's message answered exactly once, every recipient reached exactly once
    answers = Counter(m["to"] for m in fake_graph.sent if m["to"] in set(buyers))
    assert answers == dict.fromkeys(buyers, 1), {n: c for n, c in answers.items() if c != 1}
    got = _received(fake_graph, text)
    assert set(got) == set(recipients)
    assert max(got.values()) == 1, f"{sum(c > 1 for c in got.values())} got it twice"
    assert deliveries == {"sent": RECIPIENTS}
    assert status == "done"
    summaries = [t for t in fake_graph.texts_to(DEMO_PHONE) if SUMMARY in t]
    assert len(summaries) == 1, summaries
    assert f"{RECIPIENTS} terkirim, 0 gagal" in summaries[0]
    # the replacement sent the rest, every one of them before the stopped process's leases
    # could have run out: handed back, not recovered
    assert sent_after >= RECIPIENTS - sent_by_old
    assert last_sent is not None
    if last_sent.tzinfo is None:
        last_sent = last_sent.replace(tzinfo=dt.UTC)
    assert last_sent < stopped_at + dt.timedelta(seconds=LEASE_SECONDS)


async def test_sigterm_to_a_sending_worker_hands_its_claimed_rows_to_the_next_worker(
    stack: Stack,
) -> None:
    """As compose runs it (Postgres, Redis, the API conversing and ``jastipin worker``
    sending): SIGTERM to the worker mid-broadcast, then a new worker. The fan-out goes
    through Dramatiq; every recipient gets the text exactly once, the new worker sending
    what the old one had claimed without waiting for its lease."""
    s = stack
    s.env.update(
        OUTBOX_INLINE="0",
        OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS),
        OUTBOX_RESEND_GRACE_SECONDS=str(LEASE_SECONDS),
        BROADCAST_RATE_LIMIT="20",
        BROADCAST_NUMBER_CAP="30",
    )
    s.fake.latency = 0.3
    text = f"Titip Tokyo Banana tutup besok! ({secrets.token_hex(3)})"
    await s.run("db", "upgrade")
    await s.run("demo")
    recipients = await seed_participants(s, RECIPIENTS, text)
    await asyncio.gather(s.serve(), s.start("worker-1", "worker"))
    await s.run("scheduler", "--once")  # hands the broadcast to the worker's Dramatiq
    await _until(
        lambda: len(_received(s.fake, text)) >= 20,
        within=60,
        what=lambda: f"{len(_received(s.fake, text))} sent\n{s.log_text()[-3000:]}",
    )
    old = s.procs.pop("worker-1")
    os.kill(old.pid, signal.SIGTERM)
    code = await asyncio.wait_for(old.wait(), timeout=60)
    stopped_at = utcnow()
    assert code == 0, s.log_text("worker-1")[-3000:]
    sent_by_old = len(_received(s.fake, text))
    assert sent_by_old < RECIPIENTS, "the broadcast finished before the SIGTERM"
    assert "worker stopped" in s.log_text("worker-1")
    db = Database(s.db_url)
    try:
        assert await _rows(db, OutboxMessage.status == "sending") == 0
        assert _handed_back(s.log_text("worker-1")) > 0
        await s.start("worker-2", "worker")
        await _until(
            lambda: (
                len(_received(s.fake, text)) == RECIPIENTS
                and any(SUMMARY in t for t in s.fake.texts_to(DEMO_PHONE))
            ),
            within=60,
            what=lambda: (
                f"{len(_received(s.fake, text))} of {RECIPIENTS} reached\n"
                f"{s.log_text('worker-2')[-3000:]}"
            ),
        )
        await until_drained(db, within=30)
        status, deliveries = await jastipers_broadcast(db)
        async with db.read() as session:
            last_sent = (
                await session.execute(select(func.max(OutboxMessage.sent_at)))
            ).scalar_one()
    finally:
        await db.dispose()
    got = _received(s.fake, text)
    assert set(got) == set(recipients)
    assert max(got.values()) == 1, f"{sum(c > 1 for c in got.values())} got it twice"
    assert deliveries == {"sent": RECIPIENTS}
    assert status == "done"
    summaries = [t for t in s.fake.texts_to(DEMO_PHONE) if SUMMARY in t]
    assert len(summaries) == 1, summaries
    assert last_sent is not None
    if last_sent.tzinfo is None:
        last_sent = last_sent.replace(tzinfo=dt.UTC)
    assert last_sent < stopped_at + dt.timedelta(seconds=LEASE_SECONDS)


def test_compose_waits_for_the_whole_shutdown_and_the_runbook_says_so() -> None:
    """SIGKILL must not cut the ordered shutdown short: compose's grace period covers the
    webhooks' drain plus the longest of the steps that run at once after it, and the
    runbook's section A states that grace period and each step's bound."""
    root = Path(__file__).resolve().parents[1]
    compose = (root / "docker-compose.yml").read_text()
    runbook = (root / "docs" / "RUNBOOK.md").read_text()
    graces = set(re.findall(r"stop_grace_period: (\d+)s", compose))
    assert len(graces) == 1, graces
    grace = int(graces.pop())
    steps = max(INBOX_DRAIN_SECONDS, OUTBOX_DRAIN_SECONDS, JOBS_DRAIN_SECONDS)
    assert grace >= WEBHOOK_DRAIN_SECONDS + steps + 5  # and a few seconds to close
    section = runbook.split("## A.")[1].split("\n## B.")[0]
    assert f"stop_grace_period: {grace}s" in section
    for seconds in (WEBHOOK_DRAIN_SECONDS, INBOX_DRAIN_SECONDS, OUTBOX_DRAIN_SECONDS):
        assert f"up to {seconds:g} s" in section
    assert f"up to {JOBS_DRAIN_SECONDS:g} s" in section

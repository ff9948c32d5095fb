"""A database locked by someone else, or out of reach: Meta gets a prompt 503 (and
retries) instead of an answer after it stopped waiting, and ``/health`` says which
dependency is degraded (issue #21 item 4: a 503 after 30 s, then no answer at all)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot import simulate, webhook
from bot.app import create_app
from bot.keys import DB
from storage.models import InboundUpdate
from tests.conftest import APP_SECRET, Harness, make_settings, phone

# Meta waits for its answer a few seconds; the webhook's own bound is 1.5 s
# (bot/webhook.py), this one leaves room for a loaded test machine
ANSWER_WITHIN = 5.0

_SQLITE_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
conn.execute("ROLLBACK")
"""


@contextlib.asynccontextmanager
async def _write_lock_held_elsewhere(url: str) -> AsyncIterator[None]:
    """SQLite: another process holds the write lock (``BEGIN IMMEDIATE``). Postgres:
    another session holds a lock on the inbox table that blocks inserts (what a
    migration's ``CREATE INDEX`` takes)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _SQLITE_LOCKER,
            path,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line.strip() == b"locked"
            yield
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(f"LOCK TABLE {InboundUpdate.__tablename__} IN SHARE MODE")
        yield
        await tx.rollback()
    finally:
        await conn.close()


async def _post(client: TestClient, body: dict) -> int:  # type: ignore[type-arg]
    raw = simulate.encode(body)
    resp = await asyncio.wait_for(
        client.post(
            "/api/webhooks/whatsapp",
            data=raw,
            headers={"X-Hub-Signature-256": simulate.sign(raw, APP_SECRET)},
        ),
        ANSWER_WITHIN,
    )
    return resp.status


async def test_a_locked_database_gets_a_prompt_503_and_health_says_locked(
    database_url: str, tmp_path: Path
) -> None:
    app = create_app(make_settings(database_url, tmp_path), run_background=False)
    updates = [simulate.text(phone(), "JOIN DEMO", wamid=f"wamid.LOCKED{i}") for i in range(3)]
    async with TestClient(TestServer(app)) as client:
        async with _write_lock_held_elsewhere(database_url):
            # three deliveries at once, as Meta sends them: each answered 503 in time
            answers = await asyncio.gather(*(_post(client, u) for u in updates))
            assert answers == [503, 503, 503]
            health = await asyncio.wait_for(client.get("/health"), ANSWER_WITHIN)
            assert health.status == 503
            body = await health.json()
            assert body["status"] == "degraded"
            assert body["checks"]["database"] == "locked"
        # the lock is gone: Meta's retries are stored, and health is ok again
        assert [await _post(client, u) for u in updates] == [200, 200, 200]
        health = await asyncio.wait_for(client.get("/health"), ANSWER_WITHIN)
        assert (await health.json())["checks"]["database"] == "ok"
        async with app[DB].read() as session:
            stored = (await session.execute(select(InboundUpdate.key))).scalars().all()
        assert len(stored) == 3, "each delivery stored once"


async def test_an_update_stored_after_its_503_is_answered_without_a_retry(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit slower than the webhook's bound (a busy machine): Meta got its 503, but
    the update was stored after all — the buyer is answered now, not at Meta's retry,
    and the retry is a duplicate with no second answer."""
    h = harness
    await h.seed_demo()
    monkeypatch.setattr(webhook, "STORE_SECONDS", 0.0)  # every commit is "too slow"
    buyer = phone()
    update = simulate.text(buyer, "JOIN DEMO", wamid="wamid.SLOWCOMMIT")
    assert (await h.post(update)).status == 503
    for _ in range(100):
        await h.settle()
        if h.fake.sent_to(buyer):
            break
        await asyncio.sleep(0.05)
    assert len(h.fake.sent_to(buyer)) == 1, "the update stored late was not handled"
    monkeypatch.setattr(webhook, "STORE_SECONDS", 1.5)
    assert (await h.post(update)).status == 200  # Meta's retry
    await h.settle()
    assert len(h.fake.sent_to(buyer)) == 1, "answered twice"

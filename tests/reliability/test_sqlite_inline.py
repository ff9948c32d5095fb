"""SQLite's statements run on the event loop's thread (storage/sqlite_inline.py, issue
#10) — and that must never cost an answer: while another process holds the database's
write lock the bot still answers what needs no write, the webhook gets a prompt 503
(issue #21) and Meta's retry is stored once the lock is free: nothing is lost."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from bot import simulate
from bot.app import create_app
from storage.demo import DEMO_TITLE
from storage.sqlite_inline import offloaded
from tests.conftest import Harness, _text_of, make_settings, phone
from tests.fakes.graph_api import FakeGraphAPI

# Another process: takes SQLite's write lock, says so, and holds it until it is told to
# commit (or, if nobody tells it, for at most 20 s) — then says which it was.
HOLDER = """
import sqlite3, sys, select
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("CREATE TABLE IF NOT EXISTS holder_probe (x INTEGER)")
print("locked", flush=True)
ready, _, _ = select.select([sys.stdin], [], [], 20)
conn.execute("COMMIT")
print("committed when told" if ready else "committed after 20 s", flush=True)
"""


@pytest.fixture
async def sqlite_harness(
    sqlite_template: Path, tmp_path: Path, fake_graph: FakeGraphAPI
) -> AsyncIterator[tuple[Harness, Path]]:
    path = tmp_path / "inline.db"
    shutil.copy(sqlite_template, path)
    settings = make_settings(
        f"sqlite+aiosqlite:///{path}", tmp_path, wa_api_base=fake_graph.base_url
    )
    app = create_app(settings, run_background=False)
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, fake_graph, settings), path


async def test_another_process_writing_does_not_stop_the_bot_answering(
    sqlite_harness: tuple[Harness, Path],
) -> None:
    h, path = sqlite_harness
    await h.seed_demo()
    buyer = phone()
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdin is not None and holder.stdout is not None
    update = simulate.text(buyer, "JOIN DEMO")
    try:
        assert (await asyncio.wait_for(holder.stdout.readline(), 60)).strip() == b"locked"
        # a buyer's message arrives while the other process writes on and on: Meta gets
        # a prompt 503 (and retries) rather than an answer after it stopped waiting
        resp = await asyncio.wait_for(h.post(update), timeout=5)
        assert resp.status == 503
        # what needs no write is answered meanwhile: the loop is not held
        page = await asyncio.wait_for(h.client.get("/t/DEMO"), timeout=15)
        assert page.status == 200 and DEMO_TITLE in await page.text()
        holder.stdin.write(b"commit\n")
        await holder.stdin.drain()
        assert (
            await asyncio.wait_for(holder.stdout.readline(), 60)
        ).strip() == b"committed when told"
        # Meta's retry, once the lock is free, is stored
        resp = await asyncio.wait_for(h.post(update), timeout=30)
        assert resp.status == 200
    finally:
        if holder.returncode is None:
            holder.kill()
        await asyncio.wait_for(holder.wait(), 30)
    # nothing lost: the buyer's JOIN was stored, processed and answered, once
    await h.settle()
    sent = [_text_of(m) for m in h.fake.sent_to(buyer)]
    assert len(sent) == 1, "the buyer who wrote during the other process's write: one answer"
    assert DEMO_TITLE in sent[0]


def count_thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the name of every call handed to a connection's thread (aiosqlite's
    own ``_execute``, which :class:`InlineConnection` uses only for those)."""
    handed: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *a: object, **kw: object) -> object:
        handed.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *a, **kw)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return handed


async def test_a_conversation_step_never_waits_on_the_connections_thread(
    sqlite_harness: tuple[Harness, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The speed of #10 rests on this: a lost hook (a SQLAlchemy or aiosqlite upgrade)
    would silently send every statement through a thread again."""
    h, _ = sqlite_harness
    await h.seed_demo()
    buyer = phone()
    await h.say(buyer, "JOIN DEMO", name="Sari")  # connections opened, the buyer known
    handed = count_thread_calls(monkeypatch)
    replies = await h.say(buyer, "MENU")
    assert replies, "MENU got no answer"
    assert handed == [], f"statements went through the thread: {handed[:5]}"
    # and a long job can still choose the thread, so it does not hold the loop
    with offloaded():
        async with h.db.read() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
    assert handed, "offloaded() did not send the statement to the connection's thread"


async def test_the_admin_panels_queries_run_off_the_loop(
    sqlite_harness: tuple[Harness, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report over every order must not hold the loop that answers buyers: the
    panel's statements go to the connections' threads."""
    from tests.admin_pages import logged_in

    h, _ = sqlite_harness
    await h.seed_demo()
    await logged_in(h)
    handed = count_thread_calls(monkeypatch)
    page = await h.client.get("/admin/")
    assert page.status == 200
    assert handed, "the dashboard's statements ran on the event loop's thread"

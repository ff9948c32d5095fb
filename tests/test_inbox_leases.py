"""A user's lane on Postgres (issue #28): held by one process while it works on that
user's units, given back when done, and taken over once the lease of a process that
died runs out — the user is answered late, never not at all."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert, select

from bot import simulate
from bot.app import create_app
from bot.keys import PROCESSOR
from storage.models import InboundUpdate, InboxLease, utcnow
from tests.conftest import Harness, _truncate, make_settings, phone
from tests.fakes.graph_api import FakeGraphAPI
from tests.journeys import texts

HELP = "Kata yang bisa kamu kirim"  # the answer to BANTUAN


@pytest.fixture
async def stored_only(
    pg_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> AsyncIterator[Harness]:
    """An API on Postgres that only stores updates (``INBOX_INLINE=0``); the test runs
    its processor's sweeps, as a worker would."""
    await _truncate(pg_url)
    settings = make_settings(pg_url, tmp_path, wa_api_base=fake_graph.base_url, inbox_inline=False)
    app = create_app(settings, run_background=False)
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, fake_graph, settings)


async def _leases(h: Harness) -> int:
    async with h.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(InboxLease)) or 0)


async def test_a_lane_held_by_a_process_that_died_is_taken_when_its_lease_runs_out(
    stored_only: Harness,
) -> None:
    """Given a buyer's message whose lane a process that died still holds, then no
    sweep takes it while the lease runs; once it ran out the next sweep does, the buyer
    is answered once, and the lane is given back when done."""
    h = stored_only
    buyer = phone()
    resp = await h.post(simulate.text(buyer, "BANTUAN"))
    assert resp.status == 200
    async with h.db.transaction() as session:
        lane = await session.scalar(select(InboundUpdate.lane))
        assert lane and buyer not in lane  # a keyed digest, never the number
        await session.execute(
            insert(InboxLease).values(
                lane=lane, holder="gone:1:dead", until=utcnow() + dt.timedelta(seconds=1.5)
            )
        )
    processor = h.app[PROCESSOR]
    assert await processor.sweep(older_than_seconds=0) == 0
    await h.settle()
    assert texts(h, buyer) == []

    await asyncio.sleep(1.6)
    assert await processor.sweep(older_than_seconds=0) == 1
    await h.settle()
    replies = texts(h, buyer)
    assert len(replies) == 1 and HELP in replies[0]
    for _ in range(200):  # given back by the lease loop, right after
        if not await _leases(h):
            break
        await asyncio.sleep(0.05)
    assert await _leases(h) == 0, "the lane is still held after its unit was handled"

"""Before a launch the jastiper sees what the number's tier means for it (issue #28):
how long the broadcast takes to go out, and how long answers may wait when everyone
writes back at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from services.tier import launch_estimate
from storage.demo import DEMO_PHONE
from tests.conftest import Harness, make_settings
from tests.fakes.graph_api import FakeGraphAPI
from tests.journeys import joined, tina


@pytest.fixture
async def capped(
    database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> AsyncIterator[Harness]:
    """A number on a tiny tier: 3 messages a second (1 kept for replies)."""
    settings = make_settings(
        database_url, tmp_path, wa_api_base=fake_graph.base_url, broadcast_number_cap=3
    )
    app = create_app(settings, run_background=False)
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, fake_graph, settings)


def test_the_estimate_counts_the_broadcasts_share_and_the_whole_cap() -> None:
    assert launch_estimate(80, cap=80, reply_reserve=8) is None  # one second answers all
    est = launch_estimate(500, cap=80, reply_reserve=8)
    assert est is not None
    assert (est.send_seconds, est.reply_wait_seconds) == (7, 7)  # 500/72, 500/80 rounded up
    est = launch_estimate(5000, cap=1000, reply_reserve=10)
    assert est is not None and (est.send_seconds, est.reply_wait_seconds) == (6, 5)


async def test_a_launch_bigger_than_the_tier_is_announced_with_its_wait(capped: Harness) -> None:
    h = capped
    await h.seed_demo()
    for i in range(5):
        await joined(h, f"Pembeli {i}")
    (preview,) = await tina(h, "/broadcast DEMO Matcha sudah datang!")
    assert "Penerima: 5" in preview
    assert "maksimal 3 pesan/detik" in preview
    assert "keluar dalam ±3 detik" in preview  # 5 at 2 a second (1 kept for replies)
    assert "5 pembeli membalas sekaligus, balasan bisa tertunda ±2 detik" in preview
    await h.tap_title(DEMO_PHONE, "Batal")

    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    (preview,) = await tina(h, "/broadcast DEMO Matcha is here!")
    assert "at most 3 messages a second" in preview
    assert "goes out in about 3 s" in preview
    assert "if 5 buyers answer at once, replies may wait about 2 s" in preview


async def test_a_broadcast_within_the_tier_says_nothing_of_it(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await joined(h, "Pembeli")
    (preview,) = await tina(h, "/broadcast DEMO Matcha sudah datang!")
    assert "Penerima: 1" in preview and "pesan/detik" not in preview

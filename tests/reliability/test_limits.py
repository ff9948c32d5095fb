"""Limits per person (issue #11, item 10), at their defaults, on SQLite and Postgres.

A flood from one number gets its first messages answered, then one "slow down", then
silence until the window has passed, however many processes handle it; a buyer's
questions to the jastiper stop at the daily cap; a cart stops at its caps and keeps
what it had. Time is Meta's timestamp on each message, so nothing here waits on a clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot import simulate
from bot.app import create_app
from bot.keys import DISPATCHER
from bot.runtime import build_runtime
from bot.settings import Settings
from services import orders as orders_service
from services.payloads import ShopTap
from storage.demo import DEMO_PHONE
from storage.models import (
    Conversation,
    InboundUpdate,
    Participant,
    Product,
    Question,
    Trip,
)
from tests.conftest import Harness, make_settings, phone
from tests.fakes.graph_api import FakeGraphAPI
from tests.journeys import joined, jpeg

DEFAULTS = Settings()
SLOW_DOWN = "Pelan-pelan ya"
HELP = "BANTUAN"


async def _harness(
    database_url: str, tmp_path: Path, fake: FakeGraphAPI, **overrides: Any
) -> AsyncIterator[Harness]:
    settings = make_settings(
        database_url,
        tmp_path,
        wa_api_base=fake.base_url,
        # the defaults, not the test harness's lifted limit
        user_rate_limit=DEFAULTS.user_rate_limit,
        user_rate_window_seconds=DEFAULTS.user_rate_window_seconds,
        questions_per_day=DEFAULTS.questions_per_day,
        **overrides,
    )
    app = create_app(settings, run_background=False)
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, fake, settings)


@pytest.fixture
async def h(database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI) -> AsyncIterator[Harness]:
    async for harness in _harness(database_url, tmp_path, fake_graph):
        yield harness


def test_the_defaults_are_the_documented_ones() -> None:
    assert (DEFAULTS.user_rate_limit, DEFAULTS.user_rate_window_seconds) == (20, 10.0)
    assert DEFAULTS.questions_per_day == 10
    assert (orders_service.MAX_LINES, orders_service.MAX_QTY) == (20, 20)


async def _flood(h: Harness, buyer: str, count: int, at: int) -> list[str]:
    """``count`` messages sent by ``buyer`` in the same second, posted concurrently as
    Meta would deliver them; returns their wamids."""
    bodies = [simulate.text(buyer, HELP, timestamp=at) for _ in range(count)]
    resps = await asyncio.gather(*(h.post(body) for body in bodies))
    assert {r.status for r in resps} == {200}
    return [b["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for b in bodies]


async def _statuses(h: Harness, wamids: list[str]) -> list[str]:
    # a message unit is keyed by its wamid's digest (the wamid holds the number)
    keys = ["w:" + h.cipher.digest_id(wamid) for wamid in wamids]
    async with h.db.read() as session:
        rows = await session.execute(
            select(InboundUpdate.status).where(InboundUpdate.key.in_(keys))
        )
        return [r[0] for r in rows]


async def test_a_flood_gets_one_slow_down_then_silence_until_the_window_passes(
    h: Harness,
) -> None:
    buyer = phone()
    (help_text,) = await h.say(buyer, HELP, timestamp=1_000)  # a person, long before
    start = len(h.fake.texts_to(buyer))
    now = int(time.time())
    keys = await _flood(h, buyer, 35, now)
    await h.settle()
    flood_replies = h.fake.texts_to(buyer)[start:]
    assert flood_replies.count(help_text) == DEFAULTS.user_rate_limit
    assert [t for t in flood_replies if t != help_text] == [flood_replies[-1]]
    assert SLOW_DOWN in flood_replies[-1]  # exactly one, after the last answer
    # dropped, not lost track of: every unit is done (a redelivery changes nothing)
    assert await _statuses(h, keys) == ["done"] * 35
    resp = await h.post(simulate.text(buyer, HELP, timestamp=now, wamid=keys[-1]))
    assert resp.status == 200
    # still inside the window: silence, and no second "slow down"
    assert await h.say(buyer, HELP, timestamp=now + 9) == []
    # the window has passed: answered again, as before the flood
    assert await h.say(buyer, HELP, timestamp=now + 10) == [help_text]
    assert await h.say(buyer, HELP, timestamp=now + 11) == [help_text]
    # someone else is never slowed down by this buyer's flood
    other = phone()
    assert await h.say(other, HELP, timestamp=now) == [help_text]


async def test_stop_is_honoured_even_inside_a_silenced_window(h: Harness) -> None:
    buyer = phone()
    now = int(time.time())
    await _flood(h, buyer, 25, now)
    await h.settle()
    assert sum(SLOW_DOWN in t for t in h.fake.texts_to(buyer)) == 1
    (stopped,) = await h.say(buyer, "STOP", timestamp=now + 1)
    assert "Kirim START" in stopped


async def test_photos_over_the_limit_are_not_even_downloaded(h: Harness) -> None:
    """A flood of photos costs no downloads past the limit (the check is before the
    download, from what the last message of that user left); after the window a photo
    is fetched again. The sender is a jastiper: a stranger's photos are never fetched
    at all (tests/reliability/test_hostile_media.py)."""
    await h.seed_demo()
    buyer = DEMO_PHONE
    dispatcher = h.app[DISPATCHER]
    real_fetch = dispatcher.fetch_media
    fetched: list[str] = []

    async def counting_fetch(incoming: Any) -> Any:
        fetched.append(incoming.media_id)
        return await real_fetch(incoming)

    dispatcher.fetch_media = counting_fetch  # type: ignore[method-assign]
    media_id = h.fake.add_media(jpeg(), "image/jpeg")
    now = int(time.time())
    limit = DEFAULTS.user_rate_limit
    for i in range(limit + 5):  # one after another, as a phone uploads them
        await h.send(simulate.media(buyer, "image", media_id, "image/jpeg", timestamp=now))
        assert len(fetched) == min(i + 1, limit + 1)  # the "slow down" one is fetched
    assert sum(SLOW_DOWN in t for t in h.fake.texts_to(buyer)) == 1
    await h.send(simulate.media(buyer, "image", media_id, "image/jpeg", timestamp=now + 10))
    assert len(fetched) == limit + 2


async def test_a_backlog_delivered_late_is_no_flood(h: Harness) -> None:
    """Messages written a minute apart, delivered together (Meta retrying after an
    outage): each is answered, by the time it was written."""
    buyer = phone()
    now = int(time.time())
    bodies = [simulate.text(buyer, HELP, timestamp=now - 3600 + 60 * i) for i in range(30)]
    await asyncio.gather(*(h.post(body) for body in bodies))
    await h.settle()
    replies = h.fake.texts_to(buyer)
    assert len(replies) == 30 and not any(SLOW_DOWN in t for t in replies)


@pytest.fixture
async def stored_only(
    database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> AsyncIterator[Harness]:
    """The API only stores updates (``INBOX_INLINE=0``); workers process them."""
    async for harness in _harness(database_url, tmp_path, fake_graph, inbox_inline=False):
        yield harness


async def test_two_workers_share_one_limit(stored_only: Harness) -> None:
    """The count is on the user's conversation row, locked by whoever handles a message:
    two worker processes taking the same flood still answer 20 and warn once."""
    h = stored_only
    buyer = phone()
    keys = await _flood(h, buyer, 40, int(time.time()))
    await h.settle()
    assert h.fake.texts_to(buyer) == []  # the API only stored them
    workers = [build_runtime(h.settings), build_runtime(h.settings)]
    try:
        await asyncio.gather(*(w.processor.sweep(older_than_seconds=0) for w in workers))
    finally:
        for w in workers:
            await w.aclose()
    await h.settle()
    replies = h.fake.texts_to(buyer)
    answers = [t for t in replies if SLOW_DOWN not in t]
    assert len(answers) == DEFAULTS.user_rate_limit and len(set(answers)) == 1
    assert len(replies) == DEFAULTS.user_rate_limit + 1  # and one "slow down"
    assert await _statuses(h, keys) == ["done"] * 40
    async with h.db.read() as session:
        conv = (await session.execute(select(Conversation))).scalars().one()
    assert conv.burst_count == 40


# the cap on questions and the cart caps are tested with the rate limit lifted (the test
# harness's), as these tests tap faster than any person


async def test_the_eleventh_question_of_the_day_is_refused_and_not_relayed(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    before = len(h.fake.texts_to(DEMO_PHONE))
    for i in range(DEFAULTS.questions_per_day):
        (ack,) = await h.say(buyer, f"TANYA pertanyaan nomor {i + 1}?")
        assert "sudah diteruskan" in ack
    (refused,) = await h.say(buyer, "TANYA satu lagi?")
    assert "10 pertanyaan" in refused and "besok" in refused
    relayed = h.fake.texts_to(DEMO_PHONE)[before:]
    assert len(relayed) == DEFAULTS.questions_per_day
    assert not any("satu lagi" in t for t in relayed)
    async with h.db.read() as session:
        asked = await session.scalar(select(func.count(Question.id)))
    assert asked == DEFAULTS.questions_per_day
    # in English too
    await h.say(buyer, "BAHASA")
    await h.tap_title(buyer, "English")
    (refused_en,) = await h.say(buyer, "ASK one more?")
    assert "10 questions" in refused_en and "tomorrow" in refused_en
    assert len(h.fake.texts_to(DEMO_PHONE)) == before + DEFAULTS.questions_per_day


async def _product(h: Harness, name: str) -> int:
    async with h.db.read() as session:
        found = await session.scalar(select(Product.id).where(Product.name == name))
    assert found is not None
    return int(found)


async def _add(h: Harness, buyer: str, product_id: int, qty: int = 1) -> list[str]:
    await h.tap(buyer, ShopTap("order", product_id).to_str(), "Pesan")
    await h.say(buyer, str(qty))
    return await h.tap(buyer, ShopTap("skipnote", 0).to_str(), "Lewati")


async def _cart(h: Harness, buyer: str) -> list[dict[str, Any]]:
    async with h.db.read() as session:
        convs = (await session.execute(select(Conversation))).scalars().all()
    carts = [c.data.get("cart") for c in convs if c.data.get("cart")]
    assert len(carts) == 1 and carts[0] is not None
    return list(carts[0])


async def test_a_cart_stops_at_its_caps_and_keeps_what_it_had(harness: Harness) -> None:
    from sqlalchemy import update

    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:  # plenty of stock: only the caps say no
        await session.execute(update(Product).values(stock=None))
    buyer = await joined(h)
    pid = await _product(h, "Royce Nama Chocolate")
    for _ in range(orders_service.MAX_LINES):
        (added,) = await _add(h, buyer, pid)
        assert "Masuk keranjang" in added
    full = await _cart(h, buyer)
    assert len(full) == 20
    # the 21st line is refused before the quantity is even asked, and the cart is shown
    refused = await h.tap(buyer, ShopTap("order", pid).to_str(), "Pesan")
    assert "sudah berisi 20 produk" in refused[0] and "Checkout" in refused[0]
    assert "*Keranjang*" in refused[1]
    assert await _cart(h, buyer) == full
    # emptied, a quantity of 100 is refused and the buyer asked again; the cart keeps
    # what it had
    await h.tap(buyer, ShopTap("clear", 0).to_str(), "Kosongkan")
    await _add(h, buyer, pid, 3)
    kept = await _cart(h, buyer)
    await h.tap(buyer, ShopTap("order", pid).to_str(), "Pesan")
    (too_many,) = await h.say(buyer, "100")
    assert "antara 1 dan 20" in too_many
    # one product at most 20 in a cart, over all its lines
    (past_cap,) = await h.say(buyer, "18")
    assert "Paling banyak 20 per produk" in past_cap and "3 sudah ada" in past_cap
    assert await _cart(h, buyer) == kept
    (ok,) = await h.say(buyer, "17")  # 3 + 17 = 20: fine
    assert "catatan" in ok


async def test_placing_an_order_checks_the_caps_for_every_door(harness: Harness) -> None:
    from services.errors import InvalidInput, NotAllowed
    from storage.models import User, utcnow

    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    pid = await _product(h, "Royce Nama Chocolate")
    async with h.db.transaction() as session:
        trip = await session.scalar(select(Trip))
        product = await session.get(Product, pid)
        # the demo trip's one participant is the buyer who just joined (names are
        # sealed: no SQL filter can match them)
        user = await session.scalar(select(User).join(Participant, Participant.user_id == User.id))
        assert trip is not None and product is not None and user is not None
        too_long = [orders_service.Line(product, 1)] * 21
        too_many = [orders_service.Line(product, 15), orders_service.Line(product, 6)]
        for lines, error in ((too_long, NotAllowed), (too_many, InvalidInput)):
            with pytest.raises(error):
                await orders_service.place_order(
                    session, trip=trip, buyer=user, lines=lines, address_enc=None, now=utcnow()
                )
        assert product.stock == 10  # nothing reserved
    assert buyer  # joined: a real buyer of the trip

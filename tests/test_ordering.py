"""One user's messages are answered in the order they were sent, while different users
run in parallel — with media downloads in between, with Meta delivering them swapped,
and with several consumers processing at once (on SQLite and Postgres)."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

from PIL import Image

from bot import simulate
from bot.keys import DISPATCHER, PROCESSOR
from tests.conftest import Harness, phone
from tests.journeys import batched, texts

NOT_JOINED = "belum bergabung"  # MENU before joining a trip
NO_ORDER = "belum punya pesanan"  # a photo from someone with nothing to pay
HELP = "Kata yang bisa kamu kirim"  # BANTUAN
LANGUAGE = "Pilih bahasa"  # BAHASA
NOT_UNDERSTOOD = "belum paham"


def kinds(replies: list[str]) -> list[str]:
    """Which of the known answers each reply is, in order."""
    names = {
        NOT_JOINED: "menu",
        NO_ORDER: "photo",
        HELP: "help",
        LANGUAGE: "language",
        NOT_UNDERSTOOD: "other",
    }
    return [next((v for k, v in names.items() if k in r), "?") for r in replies]


async def test_a_photo_then_menu_is_answered_photo_first(harness: Harness) -> None:
    """Given a slow media download, when a buyer sends a photo and at once MENU, then the
    photo is answered first: the text waits for the download instead of overtaking it."""
    h = harness
    buyer = phone()
    dispatcher = h.app[DISPATCHER]
    real_fetch = dispatcher.fetch_media

    async def slow_fetch(incoming: Any) -> Any:
        await asyncio.sleep(0.5)  # WhatsApp's media server taking its time
        return await real_fetch(incoming)

    dispatcher.fetch_media = slow_fetch  # type: ignore[method-assign]
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(picture, "JPEG")
    media_id = h.fake.add_media(picture.getvalue(), "image/jpeg")
    now = int(time.time())
    first = await h.post(simulate.media(buyer, "image", media_id, "image/jpeg", timestamp=now))
    second = await h.post(simulate.text(buyer, "MENU", timestamp=now + 1))
    assert first.status == second.status == 200
    await h.settle()
    assert kinds(texts(h, buyer)) == ["photo", "menu"]


async def test_messages_delivered_swapped_are_handled_by_metas_timestamp(
    harness: Harness,
) -> None:
    """Given BAHASA written after BANTUAN but delivered first in the same webhook, then the
    help (the earlier message) is answered before the language question."""
    h = harness
    buyer = phone()
    now = int(time.time())
    later = simulate.text(buyer, "BAHASA", timestamp=now + 2)
    earlier = simulate.text(buyer, "BANTUAN", timestamp=now)
    resp = await h.post(batched(later, earlier))
    assert resp.status == 200
    await h.settle()
    assert kinds(texts(h, buyer)) == ["help", "language"]


async def test_many_users_in_parallel_each_in_order(harness: Harness) -> None:
    """Given four consumers taking small batches, when 20 buyers each send four messages
    at once, then every buyer's answers come in the order their messages were sent."""
    h = harness
    processor = h.app[PROCESSOR]
    processor.concurrency, processor.batch = 4, 3
    words = ["BANTUAN", "BAHASA", "MENU", "apa ya"]
    expected = ["help", "language", "menu", "other"]
    buyers = [phone() for _ in range(20)]
    now = int(time.time())

    async def write(buyer: str) -> None:
        for i, word in enumerate(words):
            resp = await h.post(simulate.text(buyer, word, timestamp=now + i))
            assert resp.status == 200

    await asyncio.gather(*(write(b) for b in buyers))
    await h.settle()
    for buyer in buyers:
        assert kinds(texts(h, buyer)) == expected, buyer


async def test_a_unit_that_fails_costs_only_itself(harness: Harness) -> None:
    """Given two buyers' messages in one batch, when one of them crashes its handler, then
    the other is answered and committed, and the failed one waits for a retry with its
    error recorded."""
    from sqlalchemy import select

    from storage.models import InboundUpdate

    h = harness
    good, bad = phone(), phone()
    dispatcher = h.app[DISPATCHER]
    real_apply = dispatcher.apply_message

    async def apply(
        session: Any, key: str, update: Any, incoming: Any, loaded: Any = None
    ) -> bool:
        if update.from_user.wa_id == bad:
            raise RuntimeError("a bug in a handler")
        return await real_apply(session, key, update, incoming, loaded)

    dispatcher.apply_message = apply  # type: ignore[method-assign]
    resp = await h.post(batched(simulate.text(good, "BANTUAN"), simulate.text(bad, "BANTUAN")))
    assert resp.status == 200
    await h.settle()
    assert kinds(texts(h, good)) == ["help"]
    assert texts(h, bad) == []
    async with h.db.read() as session:
        rows = (await session.execute(select(InboundUpdate))).scalars().all()
    by_status = {r.status: r for r in rows}
    assert set(by_status) == {"done", "pending"}
    assert by_status["pending"].attempts == 1
    # what failed is recorded, never the exception's words (they may quote a buyer)
    assert by_status["pending"].last_error == "RuntimeError (message not logged)"


def test_a_status_unit_key_is_logged_without_the_number() -> None:
    """A log line names a status unit by message and status, never by the number."""
    from bot.inbox import loggable

    assert loggable("st:wamid.ABC:delivered:6281234567890") == "st:wamid.ABC:delivered"
    assert loggable("wamid.XYZ") == "wamid.XYZ"

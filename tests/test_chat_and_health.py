"""`jastipin chat` talks to the real pipeline; /health tells the truth about Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.chat import ChatSession, CommandError, local_bot
from bot.keys import CIPHER, DB
from bot.settings import Settings
from services import replies
from storage.demo import seed_demo
from tests.conftest import REQUIRE_SERVICES, make_settings


async def test_terminal_chat_joins_and_taps_by_number(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        media_dir=tmp_path / "m",
        pii_key=b"k" * 32,
    )
    async with local_bot(settings) as (app, base_url):
        async with app[DB].transaction() as session:
            await seed_demo(session, app[CIPHER])
        chat = ChatSession(app, base_url, settings, "+62 812-3456-7890", "Sari")
        try:
            (welcome,) = await chat.send_text("JOIN DEMO")
            assert "Jastip Tokyo Demo" in replies.as_plain_text(welcome)
            assert "[1] Pakai Sari" in replies.as_plain_text(welcome)
            (consent,) = await chat.send_text("1")  # taps "Pakai Sari"
            assert "Mau dapat kabar" in replies.as_plain_text(consent)
        finally:
            await chat.close()


async def test_terminal_chat_taps_an_earlier_message_as_whatsapp_allows(
    database_url: str, tmp_path: Path
) -> None:
    """``/tap 3.2`` taps choice 2 of the bot's message #3 while a later list is the
    latest message; a message or choice that does not exist is explained."""
    settings = Settings(
        database_url=database_url, data_dir=tmp_path, media_dir=tmp_path / "m", pii_key=b"k" * 32
    )
    async with local_bot(settings) as (app, base_url):
        async with app[DB].transaction() as session:
            await seed_demo(session, app[CIPHER])
        chat = ChatSession(app, base_url, settings, "+62 812-3456-7891", "Budi")
        try:
            await chat.send_text("JOIN DEMO")
            await chat.send_text("1")  # the name
            (menu,) = await chat.send_text("1")  # yes to updates: the menu, message #3
            assert chat.number_of(menu) == 3
            assert "[2] Pesanan saya" in replies.as_plain_text(menu)
            (catalogue,) = await chat.send_text("KATALOG")  # a list, message #4
            assert chat.number_of(catalogue) == 4
            # the older menu's "Pesanan saya", not the catalogue's second product
            (orders,) = await chat.tap("3.2")
            assert "Kit Kat" not in replies.as_plain_text(orders)
            assert "pesanan" in replies.as_plain_text(orders).lower()
            # the catalogue list is still there to tap, two messages later
            (product, *_) = await chat.tap("4.2")
            assert "Kit Kat Matcha" in replies.as_plain_text(product)
            with pytest.raises(CommandError, match="no message #9"):
                await chat.tap("9.1")
            with pytest.raises(CommandError, match="message #3 has choices 1 to 3"):
                await chat.tap("3.7")
        finally:
            await chat.close()


async def test_health_checks_redis_when_configured(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/h.db"
    for redis_url, status in (("redis://127.0.0.1:6379/0", 200), ("redis://127.0.0.1:1/0", 503)):
        settings = make_settings(url, tmp_path, redis_url=redis_url)
        async with TestClient(TestServer(create_app(settings, run_background=False))) as client:
            resp = await client.get("/health")
            body = await resp.json()
            if status == 200 and body["checks"]["broker"] != "ok" and not REQUIRE_SERVICES:
                pytest.skip("no Redis on 127.0.0.1:6379 (CI starts one and requires it)")
            assert resp.status == status, body
            assert body["checks"]["broker"] == ("ok" if status == 200 else "unavailable")

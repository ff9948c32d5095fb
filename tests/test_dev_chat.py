"""``/dev/chat``: the WhatsApp simulator page, tried as a newcomer would after ``make run``,
on both databases: the real webhook (signed), the real processor and outbox, the
sandbox transport; and ``jastipin chat``'s ``/photo``."""

from __future__ import annotations

import asyncio
import html
import io
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from sqlalchemy import select

from bot import simulate
from bot.app import create_app
from bot.chat import ChatSession, CommandError, local_bot, parse_photo
from bot.devchat.render import Contact, Item, bubble
from bot.keys import CIPHER, DB, OUTBOX, PROCESSOR
from bot.settings import Settings
from locales import Translator
from storage.demo import DEMO_PHONE, seed_demo
from storage.models import Product
from tests.conftest import make_settings
from tests.samples import receipt_pdf

SECRET = "dev-app-secret"  # dev mode (no token) with signatures checked: Meta's way
BUYER = "6281100000101"  # one of the page's demo buyers (fictitious)


def jpeg(colour: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, "JPEG")
    return buf.getvalue()


class Page:
    """A browser on /dev/chat: plain form posts (no JavaScript) or fetch-like JSON ones."""

    def __init__(self, app: Any, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http

    async def send(self, phone: str, name: str = "Sari", **fields: Any) -> httpx.Response:
        files = fields.pop("files", None)
        data = {"phone": phone, "name": name, "lang": "id", **fields}
        resp = await self.http.post("/dev/chat/send", data=data, files=files)
        assert resp.status_code == 303, resp.text  # the plain form: back to the chat
        return resp

    async def feed(self, phone: str) -> list[dict[str, Any]]:
        resp = await self.http.get("/dev/chat/feed", params={"phone": phone})
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items

    async def bot_texts(self, phone: str) -> list[str]:
        return [_text(i["payload"]) for i in await self.feed(phone) if i["from"] == "bot"]

    async def tap(self, phone: str, title: str, name: str = "Sari") -> None:
        """Tap the button or list row titled ``title`` in the last bot message, through
        the small form the page renders for it (it carries the payload id)."""
        page = (await self.http.get("/dev/chat", params={"phone": phone, "name": name})).text
        forms = re.findall(
            r'name="tap_id" value="([^"]*)">'
            r'<input type="hidden" name="tap_title" value="([^"]*)">'
            r'<input type="hidden" name="tap_kind" value="(\w+)">',
            page,
        )
        matching = [(i, k) for i, t, k in forms if html.unescape(t) == title]
        assert matching, f"no {title!r} to tap in {[html.unescape(t) for _, t, _ in forms]}"
        payload_id, kind = matching[-1]
        await self.send(
            phone,
            name,
            tap_id=html.unescape(payload_id),
            tap_title=title,
            tap_kind=kind,
        )


def _text(payload: dict[str, Any]) -> str:
    return str(payload.get("text") or payload.get("caption") or "")


@pytest.fixture
async def page(database_url: str, tmp_path: Path) -> AsyncIterator[Page]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        media_dir=tmp_path / "media",
        pii_key=b"k" * 32,
        wa_app_secret=SECRET,
        user_rate_limit=1000,
    )
    assert settings.dev_mode
    async with local_bot(settings) as (app, base_url):
        async with app[DB].transaction() as session:
            await seed_demo(session, app[CIPHER])
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            yield Page(app, http)


async def test_the_simulator_does_not_exist_with_credentials(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/c.db", tmp_path)
    assert not settings.dev_mode
    async with TestClient(TestServer(create_app(settings, run_background=False))) as client:
        for path in (
            f"/dev/chat?phone={BUYER}",
            "/dev/chat/feed?phone=1",
            "/dev/chat/static/devchat.js",
            "/dev/graph/v22.0/1234567890123456",
        ):
            assert (await client.get(path)).status == 404, path
        assert (await client.post("/dev/chat/send", data={"text": "hi"})).status == 404


async def test_a_typed_message_goes_through_the_webhook_and_the_reply_follows_it(
    page: Page,
) -> None:
    home = await page.http.get("/dev/chat")
    assert home.status_code == 200
    # the demo jastiper and the demo buyers are one click away
    assert f"phone={DEMO_PHONE}" in home.text and "Tina" in home.text
    assert f"phone={BUYER}" in home.text
    assert home.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert '<script src="/dev/chat/static/devchat.js"' in home.text
    assert "<script>" not in home.text  # no inline script

    await page.send(BUYER, text="JOIN DEMO")
    items = await page.feed(BUYER)
    assert [(i["from"], i["type"]) for i in items] == [("me", "text"), ("bot", "buttons")]
    assert items[0]["payload"]["text"] == "JOIN DEMO"
    assert "Jastip Tokyo Demo" in _text(items[1]["payload"])

    # the page shows the same, in the same order, with the buttons as forms
    chat = (await page.http.get("/dev/chat", params={"phone": BUYER})).text
    chat = chat[chat.index('id="messages"') :]  # the bubbles (the chat list shows the last)
    assert chat.index("JOIN DEMO") < chat.index("Jastip Tokyo Demo")
    assert 'value="Pakai Sari"' in chat

    await page.tap(BUYER, "Pakai Sari")
    items = await page.feed(BUYER)
    assert [i["from"] for i in items] == ["me", "bot", "me", "bot"]
    assert items[2]["payload"] == {"type": "tap", "text": "Pakai Sari"}
    assert "Mau dapat kabar" in _text(items[3]["payload"])


async def test_list_rows_and_buttons_drive_the_flow(page: Page) -> None:
    await page.send(BUYER, text="JOIN DEMO")
    await page.tap(BUYER, "Pakai Sari")
    await page.tap(BUYER, "Ya, kabari aku")
    await page.send(BUYER, text="KATALOG")
    assert (await page.feed(BUYER))[-1]["type"] == "list"
    await page.tap(BUYER, "Kit Kat Matcha")  # a list row
    detail = (await page.bot_texts(BUYER))[-1]
    assert "Rp 85.000" in detail and "Stok: 30" in detail


async def test_a_photo_proof_reaches_tina_and_her_approval_reaches_the_buyer(
    page: Page,
) -> None:
    await page.send(BUYER, text="JOIN DEMO")
    await page.tap(BUYER, "Pakai Sari")
    await page.tap(BUYER, "Ya, kabari aku")
    await page.send(BUYER, text="CARI Calbee")
    await page.tap(BUYER, "Calbee Jagabee")
    await page.tap(BUYER, "Pesan")
    await page.tap(BUYER, "1")
    await page.tap(BUYER, "Lewati")
    await page.tap(BUYER, "Checkout")
    for line in (
        "Sari Wulandari",
        "0812-3456-7890",
        "Jl. Melati No. 5, RT 01/RW 02, Kebayoran Baru",
        "Jakarta Selatan",
        "12120",
    ):
        await page.send(BUYER, text=line)
    await page.tap(BUYER, "Benar")
    await page.tap(BUYER, "Konfirmasi")
    instructions = (await page.bot_texts(BUYER))[-1]
    (code,) = re.findall(r"JP-[A-Z0-9]+", instructions)[:1]

    # the proof photo, through the form's file input (as a browser without JS posts it)
    await page.send(BUYER, files={"file": ("bukti.jpg", jpeg(), "image/jpeg")}, text="")
    mine = [i for i in await page.feed(BUYER) if i["from"] == "me"][-1]
    assert mine["type"] == "image"
    assert "sudah kami terima" in (await page.bot_texts(BUYER))[-1]

    # Tina's view: the proof as a picture with the order code, and Setujui / Tolak
    tina = await page.feed(DEMO_PHONE)
    image, ask = tina[-2], tina[-1]
    assert image["type"] == "image" and code in image["payload"]["caption"]
    src = html.unescape(re.search(r'<img src="([^"]+)"', image["html"]).group(1))  # type: ignore[union-attr]
    shown = await page.http.get(src)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(shown.content)).size == (64, 48)
    assert [b["title"] for b in ask["payload"]["buttons"]] == ["Setujui", "Tolak"]

    # Tina approves from her view; back as the buyer, the confirmation is there
    await page.tap(DEMO_PHONE, "Setujui", name="Tina")
    assert any("sudah dikonfirmasi" in t for t in await page.bot_texts(BUYER))


async def test_a_pdf_is_sent_as_a_document(page: Page) -> None:
    await page.send(
        DEMO_PHONE, "Tina", files={"file": ("struk.pdf", receipt_pdf(), "application/pdf")}
    )
    mine = [i for i in await page.feed(DEMO_PHONE) if i["from"] == "me"][-1]
    assert mine["type"] == "document" and mine["payload"]["filename"] == "struk.pdf"
    link = html.unescape(re.search(r'href="([^"]+)"', mine["html"]).group(1))  # type: ignore[union-attr]
    assert (await page.http.get(link)).content.startswith(b"%PDF-")
    assert (await page.bot_texts(DEMO_PHONE))[-1]  # the bot answered it


async def test_the_event_stream_delivers_a_reply_as_it_leaves_the_outbox(page: Page) -> None:
    app = page.app
    raw = simulate.encode(simulate.text(BUYER, "JOIN DEMO", name="Sari"))
    resp = await page.http.post(
        "/api/webhooks/whatsapp",
        content=raw,
        headers={"X-Hub-Signature-256": simulate.sign(raw, SECRET)},
    )
    assert resp.status_code == 200
    await app[PROCESSOR].drain()
    # the reply is written but has not left the outbox: not shown yet
    assert await page.feed(BUYER) == []

    async def first_event() -> dict[str, Any]:
        import json

        async with page.http.stream(
            "GET", "/dev/chat/events", params={"phone": BUYER, "after": "0"}
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    event: dict[str, Any] = json.loads(line[len("data: ") :])
                    return event
        raise AssertionError("stream ended")

    listening = asyncio.create_task(first_event())
    await app[OUTBOX].flush()  # the outbox sends it (into the sandbox)
    event = await asyncio.wait_for(listening, 60)
    assert event["from"] == "bot" and "Jastip Tokyo Demo" in event["payload"]["text"]
    assert 'class="msg bot"' in event["html"] and "Pakai Sari" in event["html"]


async def test_bad_input_gets_a_clear_answer_and_text_is_escaped(page: Page) -> None:
    bad = await page.http.post("/dev/chat/send", data={"phone": "12", "text": "hi"})
    assert bad.status_code == 400 and "8–15 angka" in bad.text
    english = await page.http.get("/dev/chat", params={"phone": "abc", "lang": "en"})
    assert english.status_code == 400 and "8–15 digits" in english.text
    await page.send(BUYER, text="<script>alert(1)</script>")
    chat = (await page.http.get("/dev/chat", params={"phone": BUYER})).text
    assert "<script>alert(1)" not in chat and "&lt;script&gt;alert(1)" in chat
    # only this machine: a request a proxy forwarded is refused
    proxied = await page.http.get("/dev/chat", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403


def test_photo_command_parsing() -> None:
    cmd = parse_photo("/photo kitkat.jpg /add Matcha Kit Kat | 85rb | 20")
    assert cmd is not None
    assert (cmd.path, cmd.caption) == (Path("kitkat.jpg"), "/add Matcha Kit Kat | 85rb | 20")
    quoted = parse_photo('/photo "my photos/bukti transfer.jpg"')
    assert quoted is not None and quoted.path == Path("my photos/bukti transfer.jpg")
    assert quoted.caption is None
    assert parse_photo("hello /photo x.jpg") is None and parse_photo("/photos") is None
    for broken in ("/photo", '/photo "no end.jpg'):
        with pytest.raises(CommandError, match="usage: /photo"):
            parse_photo(broken)


async def test_terminal_chat_photo_adds_a_product(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url, data_dir=tmp_path, media_dir=tmp_path / "m", pii_key=b"k" * 32
    )
    picture = tmp_path / "matcha.jpg"
    picture.write_bytes(jpeg("green"))
    cmd = parse_photo(f"/photo {picture} /add Matcha Kit Kat | 85rb | 20")
    assert cmd is not None
    async with local_bot(settings) as (app, base_url):
        async with app[DB].transaction() as session:
            await seed_demo(session, app[CIPHER])
        chat = ChatSession(app, base_url, settings, DEMO_PHONE, "Tina")
        try:
            (reply,) = await chat.send_photo(cmd.path, cmd.caption)
        finally:
            await chat.close()
        assert "*Matcha Kit Kat* — Rp 85.000, stok 20" in reply["text"]
        async with app[DB].read() as session:
            product = (
                await session.execute(select(Product).where(Product.name == "Matcha Kit Kat"))
            ).scalar_one()
        assert product.image_key  # downloaded from the local Graph stand-in and stored


def test_bubbles_render_what_the_bot_sends_and_escape_what_anyone_typed() -> None:
    contact = Contact(phone=BUYER, name="Sari", lang="en")
    tr = Translator("en")
    template = bubble(
        Item(
            "o7",
            "bot",
            {
                "type": "template",
                "name": "order_update",
                "language": "id",
                "category": "utility",
                "params": ["JP-AB12", "<b>x</b>"],
            },
            7.0,
            out_id=7,
        ),
        contact,
        tr,
    )
    assert "Template: <code>order_update</code> (id)" in template
    assert "<li>JP-AB12</li>" in template and "&lt;b&gt;x&lt;/b&gt;" in template
    doc = bubble(
        Item("o8", "bot", {"type": "document", "media_key": "k", "filename": "a.csv"}, 8, 8),
        contact,
        tr,
    )
    assert f"/dev/chat/media/out/8?phone={BUYER}" in doc and "a.csv" in doc
    text = bubble(
        Item("o9", "bot", {"type": "text", "text": "*Total* _Rp 1_ <i>\nok"}, 9, 9),
        contact,
        tr,
    )
    assert "<strong>Total</strong> <em>Rp 1</em> &lt;i&gt;<br>ok" in text


async def test_a_closed_tab_ends_its_stream_without_an_error(
    page: Page, caplog: pytest.LogCaptureFixture
) -> None:
    """A tab closed (or reloaded) mid-stream is how every stream ends: the next reply
    finds nobody listening, and that is logged as such, never as an ERROR traceback."""
    caplog.set_level(logging.INFO)
    async with page.http.stream(
        "GET", "/dev/chat/events", params={"phone": BUYER, "after": "0"}
    ) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("retry:"):
                break  # the stream is up: the tab goes away
    await page.send(BUYER, text="JOIN DEMO")  # a reply for the stream to push

    for _tick in range(600):  # until the stream has met the closed tab (30 s at most)
        if any("page went away" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the stream never noticed the closed tab")
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [(r.name, r.getMessage()) for r in bad]


async def test_the_chat_list_counts_unread_and_reading_turns_the_ticks_blue(page: Page) -> None:
    await page.send(BUYER, text="JOIN DEMO")
    # Sari's chat is not open: one unread reply, its first line and time in the list
    listed = (await page.http.get("/dev/chat/people", params={"phone": DEMO_PHONE})).json()
    sari = re.search(
        rf'<li><a class="" href="[^"]*" data-phone="{BUYER}">(.*?)</a></li>', listed["html"]
    )
    assert sari, listed["html"]
    assert '<em class="unread">1</em>' in sari.group(1)
    assert "Selamat datang di *Jastip Tokyo Demo*!" in html.unescape(sari.group(1))
    assert re.search(r"<time>\d\d:\d\d</time>", sari.group(1))
    # opening the chat reads it: the status webhook says so, the badge goes
    opened = (await page.http.get("/dev/chat", params={"phone": BUYER, "name": "Sari"})).text
    reply = re.search(
        r'<div class="msg bot" id="o\d+".*?<span class="stamp">(.*?)</span></span>', opened, re.S
    )
    assert reply, opened
    assert re.search(
        r'<time>\d\d:\d\d</time><span class="tick read" title="read">✓✓', reply.group(0)
    )
    mine = re.search(r'<div class="msg me".*?<span class="tick (\w+)"', opened, re.S)
    assert mine and mine.group(1) == "delivered"
    again = (await page.http.get("/dev/chat/people", params={"phone": BUYER})).json()
    assert 'class="unread"' not in again["html"]
    assert set(again["ticks"].values()) == {"read"}
    # a message that was never shown stays "sent" (one grey tick) and counts as unread
    await page.send(BUYER, text="MENU")
    later = (await page.http.get("/dev/chat/people", params={"phone": DEMO_PHONE})).json()
    assert '<em class="unread">1</em>' in later["html"]


async def test_links_in_a_message_are_tappable() -> None:
    tr = Translator("id")
    contact = Contact("6281100000001", "Tina", "id")
    text = "Link panel:\nhttp://127.0.0.1:8080/web/abc_def?x=1&y=2.\n\n*Jangan* bagikan."
    shown = bubble(Item("o1", "bot", {"type": "text", "text": text}, 1.0, out_id=1), contact, tr)
    assert (
        '<a href="http://127.0.0.1:8080/web/abc_def?x=1&amp;y=2" target="_blank" '
        'rel="noopener">http://127.0.0.1:8080/web/abc_def?x=1&amp;y=2</a>.'
    ) in shown
    assert "<strong>Jangan</strong>" in shown
    hostile = bubble(
        Item("i1", "me", {"type": "text", "text": 'https://x.id/"><script>'}, 1.0), contact, tr
    )
    assert "<script>" not in hostile and "&quot;&gt;&lt;script&gt;" in hostile

"""Words, not codes (issue #26): every page of the admin panel and of the jastiper panel,
rendered in English, shows no Indonesian catalogue id (a text the English catalogue
translates, left untranslated) and no raw code (an order status, a queue status, an
audit action, ``key=value``); the jastiper panel speaks the jastiper's chat language;
errors are pages in the reader's language with a way back; the same reused-proof
warning as in chat; status changes start on the next move."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from babel.messages.pofile import read_po
from sqlalchemy import select, update

from admin_web import shell
from admin_web.panel import auth
from admin_web.shell import errors
from admin_web.shell.door import DOOR
from locales import Translator, pgettext, po_path
from services.errors import NotAllowed, NotFound
from storage.demo import DEMO_PHONE
from storage.models import (
    InboundStatus,
    Jastiper,
    Order,
    OrderStatus,
    OutboxStatus,
    PaymentProof,
    ProofStatus,
    TripStatus,
    User,
)
from tests.admin_pages import buyer_with_proof
from tests.admin_pages import csrf_of as admin_csrf
from tests.admin_pages import logged_in as admin_logged_in
from tests.conftest import Harness
from tests.jastiper_pages import LINK, browser, logged_in, open_link

ENUMS = {
    *(s.value for s in OrderStatus),
    *(s.value for s in ProofStatus),
    *(s.value for s in OutboxStatus),
    *(s.value for s in InboundStatus),
    *(s.value for s in TripStatus),
    "full",
    "dp",
    "balance",
    "broadcast",
    "queued",
    "manual",
    "message",
}
CODE_LIKE = re.compile(r"^[a-z_]+(\.[a-z_]+)+$|\b[a-z_]+=\S")


def indonesian_ids() -> tuple[set[str], list[str]]:
    """Catalogue ids the English catalogue translates differently: (short ones, shown
    alone in an element; long ones, anywhere in the text)."""
    with po_path("en").open("rb") as fh:
        catalog = read_po(fh, locale="en")
    translations: dict[str, set[str]] = {}
    for message in catalog:
        msgid = message.id
        if isinstance(msgid, str) and msgid and "{" not in msgid and message.string:
            translations.setdefault(msgid, set()).add(str(message.string))
    # an id that is its own translation in some context ("Trip") is no leak
    leaked = [msgid for msgid, texts in translations.items() if msgid not in texts]
    short = {msgid for msgid in leaked if len(msgid) < 18}
    long = [msgid for msgid in leaked if len(msgid) >= 18]
    return short, long


class Texts(HTMLParser):
    """Every text node of the page and every option/title/label attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in ("aria-label", "data-label", "alt", "placeholder") and value:
                self.texts.append(value.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(" ".join(data.split()))


def leaks(html: str) -> list[str]:
    short, long = indonesian_ids()
    parser = Texts()
    parser.feed(html)
    out = []
    for text in parser.texts:
        cleaned = text.strip(" ·:—()")
        if cleaned in short:
            out.append(f"Indonesian id shown: {cleaned!r}")
        if cleaned in ENUMS or CODE_LIKE.search(cleaned):
            out.append(f"raw code shown: {cleaned!r}")
    body = " ".join(parser.texts)
    out += [f"Indonesian id shown: {m!r}" for m in long if m in body]
    return out


async def english(client: Any, path: str, status: int = 200) -> str:
    resp = await client.get(path)
    text = await resp.text()
    assert resp.status == status, (path, resp.status, text[:500])
    return str(text)


async def test_every_admin_page_in_english_shows_words_not_codes(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    _buyer, order, proof = await buyer_with_proof(h, "Dewi")
    await admin_logged_in(h)
    await english(h.client, "/admin/?lang=en")  # the choice is kept in a cookie
    # something for every table: a rejected proof (history, audit), a broadcast
    token = await admin_csrf(h.client, f"/admin/orders/{order.code}")
    resp = await h.client.post(
        f"/admin/proofs/{proof.id}/reject",
        data={"csrf_token": token, "reason": "1", "back": f"/admin/orders/{order.code}"},
        allow_redirects=False,
    )
    assert resp.status == 303
    resp = await h.client.post(
        "/admin/broadcasts/new",
        data={"csrf_token": token, "trip": "DEMO", "segment": "all", "text": "Hello all"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    confirm = resp.headers["Location"]
    problems: dict[str, list[str]] = {}
    pages = [
        "/admin/",
        "/admin/orders",
        f"/admin/orders/{order.code}",
        "/admin/proofs",
        "/admin/trips",
        "/admin/trips?status=closed",
        "/admin/trips/DEMO",
        "/admin/jastipers",
        "/admin/audit",
        "/admin/broadcasts",
        "/admin/broadcasts/new",
        confirm,
        "/admin/queue",
    ]
    for path in pages:
        found = leaks(await english(h.client, path))
        if found:
            problems[path] = found
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())

    audit = await english(h.client, "/admin/audit")
    assert "Payment proof rejected" in audit and ">proof.reject<" not in audit
    assert "Admin logged in to the panel" in audit
    history = await english(h.client, f"/admin/orders/{order.code}")
    assert "Payment proof rejected" in history and "(via the admin panel)" in history
    composer = await english(h.client, "/admin/broadcasts/new")
    assert re.search(r"<label>Message\s*<textarea", composer)
    trips = await english(h.client, "/admin/trips")
    assert ">Closed<" in trips and ">Trips<" in trips


async def test_an_error_is_a_page_in_the_readers_language_with_a_way_back(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    await admin_logged_in(h)
    missing = await english(h.client, "/admin/orders/JP-NOPE00?lang=en", status=404)
    assert "Page not found" in missing and 'href="/admin/"' in missing
    assert "Not Found" not in missing and "<nav" in missing
    nowhere = await english(h.client, "/admin/nothing-here", status=404)
    assert "Page not found" in nowhere


async def test_the_jastiper_panel_speaks_the_chat_language(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        tina = select(Jastiper.user_id).where(Jastiper.name == "Tina").scalar_subquery()
        await session.execute(update(User).where(User.id == tina).values(locale="en"))
    _buyer, order, _proof = await buyer_with_proof(h, "Sari")
    async with browser(h) as client:
        (reply,) = await h.say(DEMO_PHONE, "/web", name="Tina")
        assert "valid 10 minutes" in reply  # her chat is in English
        link = LINK.search(reply)
        assert link, reply
        opened = await open_link(client, link.group(1))
        assert opened.status == 303
        # an Indonesian browser, an English chat: English
        resp = await client.get("/j-web/", headers={"Accept-Language": "id-ID,id;q=0.9"})
        home = await resp.text()
        assert ">Orders<" in home and "Pesanan trip-mu" not in home
        pages = ("/j-web/", f"/j-web/orders/{order.code}", "/j-web/proofs", "/j-web/broadcasts")
        for path in pages:
            found = leaks(await english(client, path))
            assert not found, (path, found)
        gone = await english(client, "/j-web/orders/JP-NOPE00", status=404)
        assert "Page not found" in gone and 'href="/j-web/"' in gone


async def test_a_reused_proof_image_is_flagged_on_every_door(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    _b1, first, _p1 = await buyer_with_proof(h, "Ani")
    _b2, second, _proof = await buyer_with_proof(h, "Budi")  # the same jpeg() picture
    async with h.db.read() as session:
        digests = (
            await session.execute(
                select(PaymentProof.content_sha256).where(
                    PaymentProof.order_id.in_([first.id, second.id])
                )
            )
        ).scalars()
        assert len(set(digests)) == 1
    warning = "Gambar ini sama dengan bukti di pesanan lain"
    await admin_logged_in(h)
    proofs = await english(h.client, "/admin/proofs")
    assert proofs.count(warning) == 2 and first.code in proofs
    order_page = await english(h.client, f"/admin/orders/{second.code}")
    assert warning in order_page and first.code in order_page.split(warning)[1]
    async with browser(h) as client:
        await logged_in(h, client, DEMO_PHONE, "Tina")
        assert warning in await english(client, f"/j-web/orders/{second.code}")
        assert (await english(client, "/j-web/proofs")).count(warning) == 2


async def test_destructive_actions_are_confirmed_and_the_status_starts_on_the_next_move(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    _buyer, order, _proof = await buyer_with_proof(h, "Citra")
    await admin_logged_in(h)
    unpaid = await english(h.client, f"/admin/orders/{order.code}")
    select_html = unpaid.split('name="to"')[1].split("</select>")[0]
    assert '<option value="" selected>' in select_html  # never "Paid" by default
    async with h.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == order.id).values(status=OrderStatus.PAID.value)
        )
    paid = await english(h.client, f"/admin/orders/{order.code}")
    select_html = paid.split('name="to"')[1].split("</select>")[0]
    assert 'value="bought" selected' in select_html
    trip = await english(h.client, "/admin/trips/DEMO")
    close_form = trip.split('action="/admin/trips/DEMO/status"')[1].split("</form>")[0]
    assert 'name="confirm" value="1" required' in close_form
    assert 'class="danger secondary"' in close_form
    jastipers = await english(h.client, "/admin/jastipers")
    suspend = jastipers.split("/suspend")[1].split("</form>")[0]
    assert "required" in suspend
    # a reason is required before a reject can be sent
    assert 'name="reason" value="1" required' in await english(h.client, "/admin/proofs")


def test_one_indonesian_word_translates_apart_by_its_context() -> None:
    en = Translator("en")
    assert en("Pesan") == "Order"  # the chat button: order this product
    assert en.pgettext("message", "Pesan") == "Message"  # a broadcast's text
    assert en(pgettext("message", "Pesan")) == "Message"  # marked now, translated later
    assert en(pgettext("trip status", "Ditutup")) == "Closed"
    assert Translator("id")(pgettext("plural", "Trip")) == "Trip"


async def test_a_crash_is_a_styled_500_page_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The panels' error middleware around handlers that fail: a crash, a service's
    refusal nobody caught, a missing thing — each a page with a way back."""
    app = web.Application(middlewares=[errors.pages])
    app[DOOR] = auth.DOOR
    shell.templates(app)

    async def crash(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("boom")

    async def refused(request: web.Request) -> web.StreamResponse:
        raise NotAllowed("Pesanan {code} tidak sedang menunggu pembayaran.", code="JP-X1")

    async def gone(request: web.Request) -> web.StreamResponse:
        raise NotFound("Trip {code} tidak ditemukan.", code="NOPE")

    app.router.add_get("/crash", crash)
    app.router.add_get("/refused", refused)
    app.router.add_get("/gone", gone)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/crash?lang=en")
        html = await resp.text()
        assert resp.status == 500 and "Something went wrong on our side" in html
        assert "Server got itself in trouble" not in html and 'href="/admin/"' in html
        assert "admin.css" in html  # the panel's own look
        assert any("panel page failed" in r.getMessage() for r in caplog.records)
        refused_html = await (await client.get("/refused?lang=en")).text()
        assert "Order JP-X1 is not awaiting payment." in refused_html
        resp = await client.get("/gone")
        assert resp.status == 404 and "Trip NOPE tidak ditemukan." in await resp.text()

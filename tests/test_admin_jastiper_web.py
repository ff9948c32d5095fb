"""A jastiper's own web panel over HTTP, on both databases: ``/web`` in chat gives a
one-time link (10 minutes, single use) that opens a panel limited to their own trips —
orders, proofs (approved exactly as in chat), recap download, broadcasts — and another
jastiper reaches none of it, whatever ids they guess (404, as for what does not exist)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re

import pytest
from sqlalchemy import select, update

from admin_web.shell import security
from bot.accounts import add_jastiper
from bot.logs import JsonFormatter, redact
from storage.demo import DEMO_PHONE
from storage.models import (
    AuditLog,
    Broadcast,
    JastiperWebLink,
    JastiperWebSession,
    Order,
    PaymentProof,
    Trip,
)
from tests.admin_pages import buyer_with_proof
from tests.conftest import Harness
from tests.jastiper_pages import CSRF, LINK, ask_link, browser, csrf_of, logged_in, open_link
from tests.journeys import joined, order_one

RIVAL = "6281100000002"
SEND_AGAIN = "Kirim /web di chat WhatsApp untuk mendapatkan link baru."


async def rival_with_trip(h: Harness) -> str:
    """A second approved jastiper with a trip of her own (through the chat wizard)."""
    await add_jastiper(
        h.settings,
        phone=RIVAL,
        name="Rina",
        bank_name="BCA",
        account_number="9876543210",
        account_name="Rina",
    )
    for text in ("/trip new", "Jastip Seoul Rina", "Seoul, Korea", "20-01-2099"):
        await h.say(RIVAL, text, name="Rina")
    await h.tap_title(RIVAL, "Lunas")
    await h.say(RIVAL, "5%", name="Rina")
    await h.tap_title(RIVAL, "Pakai rekening ini")
    async with h.db.read() as session:
        return (
            await session.execute(select(Trip.code).where(Trip.title == "Jastip Seoul Rina"))
        ).scalar_one()


async def shift_link(h: Harness, back: dt.timedelta) -> None:
    """The stored link as if made ``back`` earlier (the clock moved, nobody slept)."""
    async with h.db.transaction() as session:
        row = (await session.execute(select(JastiperWebLink))).scalar_one()
        await session.execute(
            update(JastiperWebLink).values(
                created_at=row.created_at - back, expires_at=row.expires_at - back
            )
        )


def order_codes(html: str) -> set[str]:
    return set(re.findall(r'href="/j-web/orders/([A-Z0-9-]+)"', html))


# --- the link -------------------------------------------------------------------------------


async def test_web_gives_a_one_time_link_to_a_panel_of_their_own_orders(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    caplog.set_level(logging.DEBUG)
    from bot.logs import QUIET

    for name in QUIET:  # an earlier test's logging set-up may have quieted them
        caplog.set_level(logging.DEBUG, logger=name)
    await h.seed_demo()
    sari = await joined(h, "Sari")
    await order_one(h, sari, "Kit Kat Matcha", "1")
    rival_trip = await rival_with_trip(h)
    async with h.db.read() as session:
        (order,) = (await session.execute(select(Order))).scalars().all()

    path = await ask_link(h)
    token = path.rsplit("/", 1)[1]
    async with h.db.read() as session:
        stored = (await session.execute(select(JastiperWebLink))).scalar_one()
    assert stored.token_hash != token and token not in stored.token_hash  # only a digest
    assert stored.expires_at - stored.created_at == dt.timedelta(minutes=10)

    # merely fetching the link (a preview, a scanner) uses nothing up
    assert (await h.client.get(path)).status == 200
    resp = await open_link(h.client, path)
    assert resp.status == 303 and resp.headers["Location"] == "/j-web/"
    cookie = [c for c in resp.headers.getall("Set-Cookie") if c.startswith("jastipin_jastiper=")]
    assert cookie and "HttpOnly" in cookie[0] and "SameSite=Strict" in cookie[0]

    home = await h.client.get("/j-web/")
    html = await home.text()
    assert home.status == 200
    assert order_codes(html) == {order.code}
    assert "Sari" in html and "Rina" not in html and rival_trip not in html
    assert home.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]
    assert "<script" not in html and "style=" not in html
    one = await (await h.client.get(f"/j-web/orders/{order.code}")).text()
    assert "Kit Kat Matcha" in one and "Jl. Melati No. 5" in one

    # the link is used up: a second opening (any browser) gets the friendly page
    async with browser(h) as other:
        again = await other.get(path)
        assert again.status == 410 and SEND_AGAIN in await again.text()
    reused = await h.client.post(
        path, data={"csrf_token": await csrf_of(h.client, "/j-web/")}, allow_redirects=False
    )
    assert reused.status in (403, 410)  # never a second session
    async with h.db.read() as session:
        assert len((await session.execute(select(JastiperWebSession))).scalars().all()) == 1
        actions = (await session.execute(select(AuditLog.action))).scalars().all()
    assert "jastiper.web.link" in actions and "jastiper.web.login" in actions

    # the link itself is never in a log line: the JSON formatter every process logs through
    # masks it, whatever a library wrote (pywa logs request bodies at DEBUG)
    formatter = JsonFormatter("test")
    assert any(token in r.getMessage() for r in caplog.records)  # the check can fail
    for record in caplog.records:
        assert token not in formatter.format(record), record.name
    assert token not in redact(f"GET {path} 200") and "/j-web/" in redact(f"GET {path}")


async def test_the_link_expires_after_ten_minutes(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    path = await ask_link(h)
    # nine minutes later it still opens (moved in the database, not slept)
    await shift_link(h, dt.timedelta(minutes=9))
    assert (await h.client.get(path)).status == 200
    # a link a minute and a bit older has expired: friendly page, no session, any button
    await shift_link(h, dt.timedelta(minutes=1, seconds=1))
    page = await h.client.get(path)
    body = await page.text()
    assert page.status == 410 and SEND_AGAIN in body and "csrf_token" not in body
    async with browser(h) as other:
        await other.get("/j-web/")  # no session: the same friendly answer
        late = await other.post(path, data={"csrf_token": "x"}, allow_redirects=False)
        assert late.status == 403
    async with h.db.read() as session:
        assert (await session.execute(select(JastiperWebSession))).first() is None

    # in English for an English browser
    english = await h.client.get(path, headers={"Accept-Language": "en"})
    assert "Send /web in the WhatsApp chat to get a new link." in await english.text()
    # a made-up token: the same page
    made_up = await h.client.get("/j-web/" + "A" * 43)
    assert made_up.status == 410 and SEND_AGAIN in await made_up.text()


async def test_the_web_session_ends_when_idle_and_at_logout(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await logged_in(h, h.client, DEMO_PHONE, "Tina")
    assert (await h.client.get("/j-web/")).status == 200
    async with h.db.transaction() as session:
        row = (await session.execute(select(JastiperWebSession))).scalar_one()
        await session.execute(
            update(JastiperWebSession).values(
                last_seen_at=row.last_seen_at - dt.timedelta(minutes=31)
            )
        )
    idle = await h.client.get("/j-web/")
    assert idle.status == 401 and "Kirim /web" in await idle.text()

    await logged_in(h, h.client, DEMO_PHONE, "Tina")
    token = await csrf_of(h.client, "/j-web/")
    out = await h.client.post("/j-web/logout", data={"csrf_token": token})
    assert out.status == 200
    assert (await h.client.get("/j-web/")).status == 401
    # an admin's session is no jastiper session, and the other way round
    assert (await h.client.get("/admin/", allow_redirects=False)).status == 303


# --- proofs, recap, broadcasts ---------------------------------------------------------------


async def test_approving_a_proof_in_the_panel_tells_the_buyer_as_in_chat(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    # the reference: the jastiper approves a proof with the button in chat
    chat_buyer, chat_order, _proof = await buyer_with_proof(h, "Budi")
    button = h.fake.sent_to(DEMO_PHONE)[-1]["interactive"]["action"]["buttons"][0]
    await h.tap(DEMO_PHONE, button["reply"]["id"], "Setujui", name="Tina")
    from_chat = h.fake.texts_to(chat_buyer)[-1]

    buyer, order, proof = await buyer_with_proof(h, "Sari")
    await logged_in(h, h.client, DEMO_PHONE, "Tina")
    listed = await (await h.client.get("/j-web/proofs")).text()
    assert f'href="/j-web/orders/{order.code}"' in listed
    assert chat_order.code not in listed  # already approved
    image = re.search(r'src="(/j-web/proofs/\d+/image\?exp=\d+&amp;sig=[0-9a-f]+)"', listed)
    assert image
    shown = await h.client.get(image.group(1).replace("&amp;", "&"))
    assert shown.status == 200 and (await shown.read())[:3] == b"\xff\xd8\xff"

    token = CSRF.search(listed).group(1)  # type: ignore[union-attr]
    # without a CSRF token: refused, and nothing changes
    bare = await h.client.post(f"/j-web/proofs/{proof.id}/approve", data={})
    assert bare.status == 403 and "Permintaan ditolak" in await bare.text()
    wrong = await h.client.post(f"/j-web/proofs/{proof.id}/approve", data={"csrf_token": "x"})
    assert wrong.status == 403
    async with h.db.read() as session:
        assert (await session.get(PaymentProof, proof.id)).status == "submitted"  # type: ignore[union-attr]

    resp = await h.client.post(
        f"/j-web/proofs/{proof.id}/approve",
        data={"csrf_token": token, "back": f"/j-web/orders/{order.code}"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == f"/j-web/orders/{order.code}?done=approved"
    await h.settle()
    from_panel = h.fake.texts_to(buyer)[-1]
    assert from_panel == from_chat.replace(chat_order.code, order.code)
    async with h.db.read() as session:
        assert (await session.get(Order, order.id)).status == "paid"  # type: ignore[union-attr]
        approvals = (
            (await session.execute(select(AuditLog).where(AuditLog.action == "proof.approve")))
            .scalars()
            .all()
        )
    assert approvals[-1].actor_user_id == approvals[0].actor_user_id  # the jastiper, as in chat
    page = await (await h.client.get(resp.headers["Location"])).text()
    assert "Bukti disetujui" in page
    twice = await h.client.post(f"/j-web/proofs/{proof.id}/approve", data={"csrf_token": token})
    assert twice.status == 409 and "sudah diproses" in await twice.text()


async def test_rejecting_needs_a_reason_and_tells_the_buyer(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer, order, proof = await buyer_with_proof(h, "Sari")
    await logged_in(h, h.client, DEMO_PHONE, "Tina")
    token = await csrf_of(h.client, "/j-web/proofs")
    missing = await h.client.post(f"/j-web/proofs/{proof.id}/reject", data={"csrf_token": token})
    assert missing.status == 409 and "alasan penolakan" in await missing.text()
    resp = await h.client.post(
        f"/j-web/proofs/{proof.id}/reject",
        data={"csrf_token": token, "reason": "1"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/j-web/proofs?done=rejected"
    await h.settle()
    told = h.fake.texts_to(buyer)[-1]
    assert f"Bukti transfer untuk {order.code} ditolak jastiper: Nominal tidak sesuai." in told


async def test_the_recap_download_holds_the_trips_orders(harness: Harness) -> None:
    from openpyxl import load_workbook

    h = harness
    await h.seed_demo()
    sari = await joined(h, "Sari")
    await order_one(h, sari, "Calbee Jagabee", "2")
    await logged_in(h, h.client, DEMO_PHONE, "Tina")
    home = await (await h.client.get("/j-web/")).text()
    assert 'href="/j-web/trips/DEMO/recap.xlsx"' in home

    sheet = await h.client.get("/j-web/trips/DEMO/recap.xlsx")
    assert sheet.status == 200
    assert 'filename="rekap-DEMO.xlsx"' in sheet.headers["Content-Disposition"]
    assert sheet.headers["Content-Disposition"].startswith("attachment")
    book = load_workbook(io.BytesIO(await sheet.read()))
    rows = list(book.active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert rows[0][:6] == ("Pesanan", "Tanggal pesan", "Status", "Pembeli", "Produk", "Jumlah")
    assert rows[1][3:7] == ("Sari", "Calbee Jagabee", 2, 65_000)
    assert rows[1][9] == "Sari Wulandari"

    as_csv = await h.client.get("/j-web/trips/demo/recap.csv?lang=en")
    assert as_csv.status == 200 and as_csv.content_type == "text/csv"
    text = (await as_csv.read()).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert lines[0][:3] == ["Order", "Order date", "Status"]
    assert lines[1][4:6] == ["Calbee Jagabee", "2"]


async def test_broadcasts_are_listed_with_their_progress(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    for name in ("B1", "B2"):
        await joined(h, name)
    await h.say(DEMO_PHONE, "/broadcast DEMO Matcha Kit Kat sudah datang!", name="Tina")
    await h.tap_title(DEMO_PHONE, "Kirim")
    await logged_in(h, h.client, DEMO_PHONE, "Tina")
    page = await (await h.client.get("/j-web/broadcasts")).text()
    assert "Matcha Kit Kat sudah datang!" in page
    assert '<progress max="100" value="' in page
    async with h.db.read() as session:
        broadcast_id = (await session.execute(select(Broadcast.id))).scalar_one()
    one = await h.client.get(f"/j-web/broadcasts/{broadcast_id}")
    assert one.status == 200 and "Matcha Kit Kat" in await one.text()


# --- another jastiper --------------------------------------------------------------------


async def test_another_jastiper_reaches_nothing_of_the_first_ones(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    _buyer, order, proof = await buyer_with_proof(h, "Sari")
    await h.say(DEMO_PHONE, "/broadcast DEMO Promo akhir pekan", name="Tina")
    await h.tap_title(DEMO_PHONE, "Kirim")
    rival_trip = await rival_with_trip(h)
    async with h.db.read() as session:
        broadcast_id = (await session.execute(select(Broadcast.id))).scalar_one()

    await logged_in(h, h.client, RIVAL, "Rina")
    home = await (await h.client.get("/j-web/")).text()
    assert order_codes(home) == set() and "Sari" not in home
    assert rival_trip in home and "DEMO" not in home
    assert order.code not in await (await h.client.get("/j-web/proofs")).text()
    assert "Promo akhir pekan" not in await (await h.client.get("/j-web/broadcasts")).text()
    assert "DEMO" not in await (await h.client.get("/j-web/?trip=DEMO")).text()

    # guessing codes and ids: the same 404 as for things that do not exist
    for path in (
        f"/j-web/orders/{order.code}",
        "/j-web/orders/JP-NOPE",
        "/j-web/trips/DEMO/recap.xlsx",
        "/j-web/trips/DEMO/recap.csv",
        "/j-web/trips/NOPE/recap.csv",
        f"/j-web/broadcasts/{broadcast_id}",
        f"/j-web/broadcasts/{broadcast_id + 100}",
    ):
        resp = await h.client.get(path)
        assert resp.status == 404, path
    # even a proof-image link signed by this app (a leaked one) shows a stranger nothing
    what = f"jweb-proof:{proof.id}"
    request = type("R", (), {"config_dict": {security.SIGN_KEY: _sign_key(h)}})()
    signed = security.signed_query(request, what)  # type: ignore[arg-type]
    assert (await h.client.get(f"/j-web/proofs/{proof.id}/image?{signed}")).status == 404

    token = await csrf_of(h.client, "/j-web/")
    for action, data in (("approve", {}), ("reject", {"reason": "1"})):
        for proof_id in (proof.id, proof.id + 100):
            resp = await h.client.post(
                f"/j-web/proofs/{proof_id}/{action}",
                data={"csrf_token": token, **data},
                allow_redirects=False,
            )
            assert resp.status == 404, (action, proof_id)
    async with h.db.read() as session:
        assert (await session.get(PaymentProof, proof.id)).status == "submitted"  # type: ignore[union-attr]
        assert (await session.get(Order, order.id)).status == "proof_submitted"  # type: ignore[union-attr]

    # and the first jastiper sees nothing of the second one's trip
    async with browser(h) as tina:
        await logged_in(h, tina, DEMO_PHONE, "Tina")
        assert rival_trip not in await (await tina.get("/j-web/")).text()
        assert (await tina.get(f"/j-web/trips/{rival_trip}/recap.csv")).status == 404


def _sign_key(h: Harness) -> bytes:
    from admin_web.keys import SETTINGS

    return security.signing_key(h.app[SETTINGS])


async def test_a_buyer_typing_web_gets_no_link(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h, "Sari")
    replies = await h.say(buyer, "/web")
    assert not any("/j-web/" in r for r in replies)
    async with h.db.read() as session:
        assert (await session.execute(select(JastiperWebLink))).first() is None


async def test_no_jastiper_page_answers_without_a_jastiper_session(harness: Harness) -> None:
    from tests.admin_pages import logged_in as admin_logged_in

    h = harness
    await h.seed_demo()
    _buyer, order, proof = await buyer_with_proof(h, "Sari")
    await admin_logged_in(h)  # an admin's session is not a jastiper's
    for path in (
        "/j-web/",
        f"/j-web/orders/{order.code}",
        "/j-web/proofs",
        f"/j-web/proofs/{proof.id}/image?exp=1&sig=x",
        "/j-web/trips/DEMO/recap.xlsx",
        "/j-web/broadcasts",
        "/j-web/broadcasts/1",
        "/j-web/anything",
    ):
        resp = await h.client.get(path, allow_redirects=False)
        body = await resp.text()
        assert resp.status == 401, path
        assert "Kirim /web" in body and order.code not in body and "Sari" not in body, path
        assert resp.headers["X-Frame-Options"] == "DENY"
    for path in (f"/j-web/proofs/{proof.id}/approve", "/j-web/logout"):
        resp = await h.client.post(path, data={"csrf_token": "x"}, allow_redirects=False)
        assert resp.status == 401, path
    async with h.db.read() as session:
        assert (await session.get(PaymentProof, proof.id)).status == "submitted"  # type: ignore[union-attr]


async def test_the_web_reply_speaks_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await h.say(DEMO_PHONE, "LANGUAGE", name="Tina")
    await h.tap_title(DEMO_PHONE, "English")
    (reply,) = await h.say(DEMO_PHONE, "/web", name="Tina")
    assert reply.startswith("Your web panel link (valid 10 minutes, works once):")
    assert LINK.search(reply) and "send /web again" in reply
    await h.say(DEMO_PHONE, "/help", name="Tina")  # grouped: /web is in the trips group
    (trips_help,) = await h.tap_title(DEMO_PHONE, "Trips")
    assert "/web — one-time link to your web panel" in trips_help

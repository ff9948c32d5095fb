"""The admin panel's trips, jastipers and audit pages over HTTP, on both databases: a
trip closed from the panel reads to everyone as when the jastiper closes it in chat; the
trip page shows what chat created; approving, declining, suspending and reactivating a
jastiper change what they can do in chat and tell them; the audit log shows chat and web
actions and its filters work; no state change happens without a CSRF token."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select

from bot import simulate
from storage.demo import DEMO_PHONE
from storage.models import AuditLog, Jastiper, OutboxMessage, Product, Trip
from storage.repo import audit
from tests.admin_pages import csrf_of, logged_in
from tests.conftest import Harness, phone
from tests.journeys import joined, jpeg, order_one


async def post_form(h: Harness, path: str, data: dict[str, str], *, page: str) -> Any:
    """Submit a panel form as the browser would: the CSRF token of the page it is on."""
    token = await csrf_of(h.client, page)
    return await h.client.post(path, data={**data, "csrf_token": token}, allow_redirects=False)


async def page_text(h: Harness, path: str) -> str:
    resp = await h.client.get(path)
    assert resp.status == 200, (path, resp.status)
    return await resp.text()


async def trip_status(h: Harness, code: str = "DEMO") -> str:
    async with h.db.read() as session:
        return str(
            (await session.execute(select(Trip.status).where(Trip.code == code))).scalar_one()
        )


async def jastiper_row(h: Harness, name: str) -> tuple[int, str]:
    async with h.db.read() as session:
        rows = (await session.execute(select(Jastiper.id, Jastiper.status, Jastiper.name))).all()
    (found,) = [(jid, status) for jid, status, n in rows if n == name]
    return int(found[0]), str(found[1])


async def outbox_count(h: Harness) -> int:
    async with h.db.read() as session:
        return int((await session.execute(select(func.count(OutboxMessage.id)))).scalar_one())


def rows_of(html: str) -> list[str]:
    """The audit table's rows, as text without tags."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return [re.sub(r"<[^>]+>", " ", row) for row in body.split("</tr>") if "<td" in row]


# --- trips ----------------------------------------------------------------------------------


async def test_an_admin_closes_a_trip_and_everyone_hears_as_from_chat(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h, "Sari")
    buyer_before = len(h.fake.sent_to(buyer))
    # in chat: the jastiper closes and reopens; buyers are not messaged
    (closed,) = await h.say(DEMO_PHONE, "/close DEMO", name="Tina")
    assert "Trip DEMO ditutup" in closed
    await h.say(DEMO_PHONE, "/open DEMO")
    assert len(h.fake.sent_to(buyer)) == buyer_before

    await logged_in(h)
    listing = await page_text(h, "/admin/trips")
    assert 'href="/admin/trips/DEMO"' in listing and "Tina" in listing
    tina_before = len(h.fake.sent_to(DEMO_PHONE))
    # closing takes the confirmation box (required in the form): without it nothing closes
    unconfirmed = await post_form(
        h, "/admin/trips/DEMO/status", {"to": "closed"}, page="/admin/trips/DEMO"
    )
    assert unconfirmed.status == 409 and "Centang konfirmasinya" in await unconfirmed.text()
    assert await trip_status(h) == "open"
    resp = await post_form(
        h, "/admin/trips/DEMO/status", {"to": "closed", "confirm": "1"}, page="/admin/trips/DEMO"
    )
    assert resp.status == 303 and resp.headers["Location"] == "/admin/trips/DEMO?done=trip_closed"
    await h.settle()
    assert await trip_status(h) == "closed"
    # buyers: nothing, exactly as from chat; the jastiper is told an admin did it
    assert len(h.fake.sent_to(buyer)) == buyer_before
    (told,) = h.fake.texts_to(DEMO_PHONE)[tina_before:]
    assert "Admin Jastipin menutup trip DEMO" in told
    page = await page_text(h, "/admin/trips/DEMO?done=trip_closed")
    assert "Trip ditutup. Jastiper-nya sudah dikabari." in page
    assert "Buka lagi trip ini" in page
    # a new buyer is refused exactly as after /close in chat
    (refused,) = await h.say(phone(), "JOIN DEMO", name="Budi")
    assert "sudah ditutup dan tidak menerima pesanan baru" in refused

    resp = await post_form(h, "/admin/trips/DEMO/status", {"to": "open"}, page="/admin/trips/DEMO")
    assert resp.status == 303
    await h.settle()
    assert await trip_status(h) == "open"
    assert "Admin Jastipin membuka lagi trip DEMO" in h.fake.texts_to(DEMO_PHONE)[-1]
    assert len(h.fake.sent_to(buyer)) == buyer_before
    # the same in English for an English-reading admin
    english = await page_text(h, "/admin/trips/DEMO?lang=en")
    assert "Close the trip (no new orders)" in english


async def test_the_trip_page_lists_what_the_chat_created(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    media = h.fake.add_media(jpeg(), "image/jpeg")
    await h.send(
        simulate.media(
            DEMO_PHONE, "image", media, "image/jpeg", name="Tina",
            caption="/add Pocky Uji Matcha | 45rb | 7",
        )
    )  # fmt: skip
    await h.say(DEMO_PHONE, "/hide 1")
    sari = await joined(h, "Sari Wulandari")
    await order_one(h, sari, "Kit Kat Matcha", "2")
    budi = phone()
    await h.say(budi, "JOIN DEMO", name="Budi")
    await h.tap_title(budi, "Pakai Budi")
    await h.tap_title(budi, "Tidak usah")
    await h.say(budi, "STOP")
    async with h.db.read() as session:
        products = (
            (await session.execute(select(Product).order_by(Product.position))).scalars().all()
        )
    first, added = products[0], products[-1]
    assert first.hidden and added.name == "Pocky Uji Matcha"

    await logged_in(h)
    page = await page_text(h, "/admin/trips/DEMO")
    # products with price, stock and hidden as chat left them
    added_row = page.split(f'id="product-{added.id}"', 1)[1].split("</tr>", 1)[0]
    assert "Pocky Uji Matcha" in added_row and "Rp 45.000" in added_row
    assert 'name="stock" value="7"' in added_row and "checked" not in added_row
    first_row = page.split(f'id="product-{first.id}"', 1)[1].split("</tr>", 1)[0]
    assert "checked" in first_row and "disembunyikan" in first_row
    # participants: decrypted names, consent, STOP
    people = page.split("<h2>Peserta</h2>", 1)[1].split("</section>", 1)[0]
    sari_row = people.split("Sari Wulandari", 1)[1].split("</tr>", 1)[0]
    assert "Setuju sejak" in sari_row
    budi_row = people.split("Budi", 1)[1].split("</tr>", 1)[0]
    assert "Berhenti langganan" in budi_row and "STOP " in budi_row
    # orders link to the order page
    order_link = re.search(r'href="/admin/orders/(JP-[A-Z0-9]+)"', page)
    assert order_link
    order_page = await page_text(h, f"/admin/orders/{order_link.group(1)}")
    assert "Sari Wulandari" in order_page


async def test_an_admin_edits_a_product_as_the_chat_would(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await logged_in(h)
    async with h.db.read() as session:
        product = (
            await session.execute(select(Product).where(Product.name == "Kit Kat Matcha"))
        ).scalar_one()
    path = f"/admin/trips/DEMO/products/{product.id}"
    bad = await post_form(h, path, {"price": "murah", "stock": "5"}, page="/admin/trips/DEMO")
    assert bad.status == 409
    assert "tidak bisa dibaca" in await bad.text()
    ok = await post_form(
        h, path, {"price": "90rb", "stock": "0", "hidden": "1"}, page="/admin/trips/DEMO"
    )
    assert ok.status == 303
    async with h.db.read() as session:
        edited = await session.get(Product, product.id)
        assert edited is not None
        assert (edited.price, edited.stock, edited.hidden) == (90_000, 0, True)
        actions = (
            (
                await session.execute(
                    select(AuditLog.action).where(AuditLog.actor_admin_id.is_not(None))
                )
            )
            .scalars()
            .all()
        )
    assert {"product.price", "product.stock", "product.hide"} <= set(actions)
    # a buyer no longer finds it
    buyer = await joined(h)
    await h.say(buyer, "CARI kit kat matcha")
    assert "Kit Kat Matcha" not in [t for t, _ in h.last_choices(buyer)]


# --- jastipers ------------------------------------------------------------------------------


async def test_approving_a_pending_jastiper_lets_them_open_a_trip(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    rina, dewi = phone(), phone()
    await h.say(rina, "DAFTAR JASTIPER", name="Rina")
    await h.say(dewi, "DAFTAR JASTIPER", name="Dewi")
    (not_yet,) = await h.say(rina, "/trip new")
    assert "belum paham" in not_yet

    await logged_in(h)
    page = await page_text(h, "/admin/jastipers")
    pending = page.split('id="pending"', 1)[1].split("</section>", 1)[0]
    assert "Rina" in pending and "Dewi" in pending
    rina_id, _s = await jastiper_row(h, "Rina")
    dewi_id, _s = await jastiper_row(h, "Dewi")

    before = len(h.fake.sent_to(rina))
    resp = await post_form(h, f"/admin/jastipers/{rina_id}/approve", {}, page="/admin/jastipers")
    assert resp.status == 303
    await h.settle()
    (told,) = h.fake.texts_to(rina)[before:]
    assert "sudah disetujui admin" in told and "/trip new" in told
    (asked,) = await h.say(rina, "/trip new")
    assert "Trip baru! Apa judulnya?" in asked
    assert await jastiper_row(h, "Rina") == (rina_id, "approved")

    resp = await post_form(
        h, f"/admin/jastipers/{dewi_id}/decline", {"confirm": "1"}, page="/admin/jastipers"
    )
    assert resp.status == 303
    await h.settle()
    assert "belum bisa disetujui" in h.fake.texts_to(dewi)[-1]
    (still_not,) = await h.say(dewi, "/trip new")
    assert "belum paham" in still_not
    # a second click on a stale page: a friendly answer, nothing changes, nobody told
    sent = len(h.fake.sent_to(dewi))
    again = await post_form(
        h, f"/admin/jastipers/{dewi_id}/decline", {"confirm": "1"}, page="/admin/jastipers"
    )
    assert again.status == 409 and "sudah berubah" in await again.text()
    await h.settle()
    assert len(h.fake.sent_to(dewi)) == sent
    # asking again after a decline puts the request back in the queue
    (ack,) = await h.say(dewi, "DAFTAR JASTIPER")
    assert "Admin akan memeriksanya" in ack
    assert await jastiper_row(h, "Dewi") == (dewi_id, "pending")


async def test_a_suspended_jastiper_is_refused_in_chat_until_reactivated(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    await logged_in(h)
    tina_id, status = await jastiper_row(h, "Tina")
    assert status == "approved"
    before = len(h.fake.sent_to(DEMO_PHONE))
    unconfirmed = await post_form(
        h, f"/admin/jastipers/{tina_id}/suspend", {}, page="/admin/jastipers"
    )
    assert unconfirmed.status == 409 and "Centang konfirmasinya" in await unconfirmed.text()
    resp = await post_form(
        h, f"/admin/jastipers/{tina_id}/suspend", {"confirm": "1"}, page="/admin/jastipers"
    )
    assert resp.status == 303
    await h.settle()
    (told,) = h.fake.texts_to(DEMO_PHONE)[before:]
    assert "ditangguhkan admin" in told and "DEMO" in told
    assert await trip_status(h) == "closed"
    for command in ("/trips", "/open DEMO", "/help"):
        (refused,) = await h.say(DEMO_PHONE, command, name="Tina")
        assert "sedang ditangguhkan admin" in refused, command
    (register,) = await h.say(DEMO_PHONE, "DAFTAR JASTIPER")
    assert "sedang ditangguhkan admin" in register
    assert await trip_status(h) == "closed"
    assert await jastiper_row(h, "Tina") == (tina_id, "suspended")
    page = await page_text(h, "/admin/jastipers")
    assert "Tina" in page.split('id="suspended"', 1)[1].split("</section>", 1)[0]

    resp = await post_form(
        h, f"/admin/jastipers/{tina_id}/reactivate", {}, page="/admin/jastipers"
    )
    assert resp.status == 303
    await h.settle()
    assert "aktif lagi" in h.fake.texts_to(DEMO_PHONE)[-1]
    (help_text,) = await h.say(DEMO_PHONE, "/help")
    assert "/trip new" in help_text
    assert await trip_status(h) == "closed"  # reopening is the jastiper's call
    (reopened,) = await h.say(DEMO_PHONE, "/open DEMO")
    assert "dibuka lagi" in reopened


# --- audit ----------------------------------------------------------------------------------


async def test_the_audit_page_shows_chat_and_web_actions_and_filters(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await h.say(DEMO_PHONE, "/close DEMO", name="Tina")  # chat
    await logged_in(h)
    await post_form(h, "/admin/trips/DEMO/status", {"to": "open"}, page="/admin/trips/DEMO")

    everything = rows_of(await page_text(h, "/admin/audit"))
    closed = [r for r in everything if "Trip ditutup" in r]
    opened = [r for r in everything if "Trip dibuka" in r]
    assert len(closed) == 1 and "Chat (WhatsApp)" in closed[0] and "Tina" in closed[0]
    assert len(opened) == 1 and "Panel admin" in opened[0] and "ops@example.com" in opened[0]
    assert "DEMO" in closed[0] and "DEMO" in opened[0]

    web = rows_of(await page_text(h, "/admin/audit?actor=web"))
    assert any("Trip dibuka" in r for r in web) and not any("Trip ditutup" in r for r in web)
    assert all("Panel admin" in r for r in web)
    chat = rows_of(await page_text(h, "/admin/audit?actor=chat"))
    assert any("Trip ditutup" in r for r in chat) and not any("Trip dibuka" in r for r in chat)
    only = rows_of(await page_text(h, "/admin/audit?action=trip.closed"))
    assert len(only) == 1 and "Trip ditutup" in only[0]
    by_trip = rows_of(await page_text(h, "/admin/audit?trip=demo"))
    assert by_trip and all("DEMO" in r for r in by_trip)
    assert not any("Admin masuk ke panel" in r for r in by_trip)
    missing = await page_text(h, "/admin/audit?trip=NOPE")
    assert "Trip NOPE tidak ditemukan." in missing and not rows_of(missing)
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date().isoformat()
    assert not rows_of(await page_text(h, f"/admin/audit?from={tomorrow}"))
    assert rows_of(await page_text(h, f"/admin/audit?to={tomorrow}"))
    bad_date = await page_text(h, "/admin/audit?from=kemarin")
    assert "filter tanggal diabaikan" in bad_date and rows_of(bad_date)

    # pagination: 50 a page, newest first, the filters kept in the links
    async with h.db.transaction() as session:
        for n in range(60):
            audit.record(session, "test.bulk", n=n)
    first = await page_text(h, "/admin/audit?action=test.bulk")
    assert len(rows_of(first)) == 50 and "Jumlah: 59" in rows_of(first)[0]
    assert 'href="/admin/audit?action=test.bulk&amp;page=2"' in first
    second = await page_text(h, "/admin/audit?action=test.bulk&page=2")
    assert [r for r in rows_of(second) if "Tindakan lain" in r] and len(rows_of(second)) == 10
    assert "Jumlah: 0" in rows_of(second)[-1] and 'rel="next"' not in second


# --- CSRF -----------------------------------------------------------------------------------


async def test_no_state_change_without_a_csrf_token(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    hopeful = phone()
    await h.say(hopeful, "DAFTAR JASTIPER", name="Rina")
    await logged_in(h)
    rina_id, _s = await jastiper_row(h, "Rina")
    tina_id, _s = await jastiper_row(h, "Tina")
    async with h.db.read() as session:
        product = (await session.execute(select(Product).limit(1))).scalar_one()
        before_product = (product.price, product.stock, product.hidden)
        audit_before = (await session.execute(select(func.count(AuditLog.id)))).scalar_one()
    outbox_before = await outbox_count(h)
    attempts = [
        ("/admin/trips/DEMO/status", {"to": "closed", "confirm": "1"}),
        (f"/admin/trips/DEMO/products/{product.id}", {"price": "1", "stock": "0", "hidden": "1"}),
        (f"/admin/jastipers/{rina_id}/approve", {}),
        (f"/admin/jastipers/{rina_id}/decline", {"confirm": "1"}),
        (f"/admin/jastipers/{tina_id}/suspend", {"confirm": "1"}),
    ]
    for path, data in attempts:
        for token in (None, "forged"):
            body = {**data, **({"csrf_token": token} if token else {})}
            resp = await h.client.post(path, data=body, allow_redirects=False)
            assert resp.status == 403, (path, token)
    await h.settle()
    assert await trip_status(h) == "open"
    assert await jastiper_row(h, "Rina") == (rina_id, "pending")
    assert await jastiper_row(h, "Tina") == (tina_id, "approved")
    async with h.db.read() as session:
        again = await session.get(Product, product.id)
        assert again is not None and (again.price, again.stock, again.hidden) == before_product
        audit_after = (await session.execute(select(func.count(AuditLog.id)))).scalar_one()
    assert audit_after == audit_before
    assert await outbox_count(h) == outbox_before

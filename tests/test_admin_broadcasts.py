"""Broadcasts in the admin panel, over HTTP on both databases: composing one for a trip
drafts the same broadcast as the jastiper's ``/broadcast`` in chat and, once confirmed,
every subscribed buyer gets it exactly once; the progress endpoint follows the outbox as
it sends; a failure is shown in words; CSRF-less forms change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.keys import OUTBOX
from storage.demo import DEMO_PHONE
from storage.models import AuditLog, Broadcast
from tests.admin_pages import (
    EMAIL,
    PASSWORD,
    TEXT,
    compose,
    confirm,
    csrf_of,
    joined_buyers,
    logged_in,
    progress,
    received_broadcast,
)
from tests.conftest import Harness
from tests.journeys import run_actor, tina


async def test_composed_on_the_web_it_is_the_chat_broadcast_and_reaches_each_buyer_once(
    harness: Harness,
) -> None:
    h = harness
    numbers = await joined_buyers(h, 3, stop=1)
    # the jastiper's own draft in chat, for comparison (then cancelled there)
    (asked,) = await tina(h, f"/broadcast DEMO {TEXT}")
    assert "Penerima: 2" in asked
    await h.tap_title(DEMO_PHONE, "Batal")
    await logged_in(h)
    form = await h.client.get("/admin/broadcasts/new")
    assert "DEMO" in await form.text()
    broadcast_id = await compose(h)

    page = await h.client.get(f"/admin/broadcasts/{broadcast_id}/confirm")
    html = await page.text()
    assert page.status == 200 and TEXT in html
    assert 'data-field="recipients">2<' in html and 'data-field="free">2<' in html
    assert 'value="send"' in html and 'value="cancel"' in html
    async with h.db.read() as session:
        chat, web = (await session.execute(select(Broadcast).order_by(Broadcast.id))).scalars()
    same: tuple[str, ...] = ("trip_id", "created_by", "text", "segment", "kind", "category")
    same += ("estimated_recipients", "estimated_free", "estimated_paid", "estimated_cost")
    assert {k: getattr(web, k) for k in same} == {k: getattr(chat, k) for k in same}
    assert (chat.status, web.status) == ("cancelled", "draft")
    assert not any(received_broadcast(h, n) for n in numbers), "nothing is sent before the confirm"

    resp = await confirm(h, broadcast_id)
    assert resp.status == 303
    assert resp.headers["Location"] == f"/admin/broadcasts/{broadcast_id}?done=queued"
    shown = await (await h.client.get(resp.headers["Location"])).text()
    assert "Broadcast masuk antrean" in shown
    # dispatched by the scheduler to the Dramatiq actor, as from chat
    await run_actor(h)
    await h.app[OUTBOX].flush()
    assert [received_broadcast(h, n) for n in numbers] == [0, 1, 1]  # STOP: never; others once
    assert "Broadcast DEMO selesai: 2 terkirim, 0 gagal" in h.fake.texts_to(DEMO_PHONE)[-1]
    # a second confirm of the same broadcast changes nothing
    again = await h.client.post(
        f"/admin/broadcasts/{broadcast_id}/confirm",
        data={"action": "send", "csrf_token": await csrf_of(h.client, "/admin/broadcasts")},
        allow_redirects=False,
    )
    assert again.status == 409 and "sudah diproses" in await again.text()
    await run_actor(h)
    await h.app[OUTBOX].flush()
    assert [received_broadcast(h, n) for n in numbers] == [0, 1, 1]
    async with h.db.read() as session:
        confirmed = (
            await session.execute(select(AuditLog).where(AuditLog.action == "broadcast.confirm"))
        ).scalar_one()
    assert confirmed.actor_admin_id is not None and confirmed.detail["broadcast"] == web.id
    listing = await (await h.client.get("/admin/broadcasts")).text()
    assert f'href="/admin/broadcasts/{broadcast_id}"' in listing and "selesai" in listing


async def test_the_progress_endpoint_follows_the_outbox_as_it_sends(harness: Harness) -> None:
    h = harness
    numbers = await joined_buyers(h, 4)
    await logged_in(h)
    broadcast_id = await compose(h, segment="all")
    await confirm(h, broadcast_id)
    first = await progress(h, broadcast_id)
    assert first["status"] == "queued" and first["live"] is True and first["sent"] == 0

    await run_actor(h)  # fanned out: every recipient queued, nothing sent yet
    queued = await progress(h, broadcast_id)
    assert (queued["total"], queued["queued"], queued["sent"], queued["percent"]) == (4, 4, 0, 0)
    page = await (await h.client.get(f"/admin/broadcasts/{broadcast_id}")).text()
    assert f'data-progress="/admin/broadcasts/{broadcast_id}/progress.json"' in page
    assert '<progress max="4" value="0"' in page
    assert '<script src="/admin/static/progress.js"' in page and "<script>" not in page
    assert f'href="/admin/broadcasts/{broadcast_id}"' in page  # the refresh link without JS

    outbox = h.app[OUTBOX]
    outbox.batch = 2  # a pass sends two: the bar moves half-way
    await outbox.send_due()
    half = await progress(h, broadcast_id)
    assert (half["sent"], half["queued"], half["percent"]) == (2, 2, 50)
    assert half["live"] is True
    await outbox.flush()
    done = await progress(h, broadcast_id)
    assert (done["sent"], done["queued"], done["percent"], done["live"]) == (4, 0, 100, False)
    assert done["status"] == "done" and done["status_text"] == "selesai"
    assert sum(received_broadcast(h, n) for n in numbers) == 4
    script = await h.client.get("/admin/static/progress.js")
    assert script.status == 200 and "data-progress" in await script.text()


async def test_a_failed_send_shows_its_reason_in_words(harness: Harness) -> None:
    h = harness
    numbers = await joined_buyers(h, 2)
    await logged_in(h)
    broadcast_id = await compose(h)
    await confirm(h, broadcast_id)
    await run_actor(h)
    h.fake.fail_next(code=131026, http_status=400, title="Message undeliverable", to=numbers[1])
    await h.app[OUTBOX].flush()
    report = await progress(h, broadcast_id)
    assert (report["sent"], report["failed"]) == (1, 1)
    page = await (await h.client.get(f"/admin/broadcasts/{broadcast_id}")).text()
    assert "1× nomor tidak bisa menerima pesan WhatsApp" in page
    listing = await (await h.client.get("/admin/broadcasts")).text()
    assert "nomor tidak bisa menerima pesan WhatsApp" in listing
    english = await (await h.client.get(f"/admin/broadcasts/{broadcast_id}?lang=en")).text()
    assert "nomor tidak bisa" not in english and "131026" not in english


async def test_bad_input_is_answered_and_keeps_what_was_typed(harness: Harness) -> None:
    h = harness
    await joined_buyers(h, 1)
    await logged_in(h)
    token = await csrf_of(h.client, "/admin/broadcasts/new")
    long_text = "x" * 1001
    resp = await h.client.post(
        "/admin/broadcasts/new",
        data={"trip": "DEMO", "segment": "all", "text": long_text, "csrf_token": token},
    )
    html = await resp.text()
    assert resp.status == 400 and "1001 karakter; paling banyak 1000" in html
    assert long_text in html  # nothing typed is lost
    resp = await h.client.post(
        "/admin/broadcasts/new",
        data={"trip": "NOPE", "segment": "all", "text": "Halo", "csrf_token": token},
    )
    assert resp.status == 400 and "Trip NOPE tidak ditemukan" in await resp.text()
    resp = await h.client.post(
        "/admin/broadcasts/new",
        data={"trip": "DEMO", "segment": "everyone", "text": "Halo", "csrf_token": token},
    )
    assert resp.status == 400 and "Pilih segmen dari daftar" in await resp.text()
    async with h.db.read() as session:
        assert (await session.execute(select(func.count(Broadcast.id)))).scalar_one() == 0


async def test_without_a_csrf_token_nothing_is_drafted_or_sent(harness: Harness) -> None:
    h = harness
    numbers = await joined_buyers(h, 2)
    await logged_in(h)
    resp = await h.client.post(
        "/admin/broadcasts/new", data={"trip": "DEMO", "segment": "all", "text": TEXT}
    )
    assert resp.status == 403
    async with h.db.read() as session:
        assert (await session.execute(select(func.count(Broadcast.id)))).scalar_one() == 0
    broadcast_id = await compose(h)
    resp = await h.client.post(
        f"/admin/broadcasts/{broadcast_id}/confirm",
        data={"action": "send", "csrf_token": "forged"},
        allow_redirects=False,
    )
    assert resp.status == 403
    await run_actor(h)
    await h.app[OUTBOX].flush()
    async with h.db.read() as session:
        assert (await session.execute(select(Broadcast.status))).scalar_one() == "draft"
    assert not any(received_broadcast(h, n) for n in numbers)


async def test_the_live_estimate_drafts_nothing(harness: Harness) -> None:
    h = harness
    await joined_buyers(h, 3, stop=1)
    await logged_in(h)
    form = await (await h.client.get("/admin/broadcasts/new")).text()
    assert 'data-estimate="/admin/broadcasts/estimate.json"' in form
    assert '<script src="/admin/static/estimate.js"' in form and "<script>" not in form
    resp = await h.client.get("/admin/broadcasts/estimate.json?trip=demo&segment=all")
    assert resp.status == 200
    assert await resp.json() == {
        "recipients": 2,
        "free": 2,
        "paid": 0,
        "skipped": 0,
        "cost": "Rp 0",
    }
    ordered = await h.client.get("/admin/broadcasts/estimate.json?trip=DEMO&segment=ordered")
    assert (await ordered.json())["recipients"] == 0
    missing = await h.client.get("/admin/broadcasts/estimate.json?trip=NOPE&segment=all")
    assert missing.status == 404 and "Trip NOPE tidak ditemukan" in (await missing.json())["error"]
    async with h.db.read() as session:
        assert (await session.execute(select(func.count(Broadcast.id)))).scalar_one() == 0


CHROMIUM = Path("/usr/bin/chromium")


async def test_in_a_browser_the_progress_bar_advances_while_it_sends(
    harness: Harness, database_url: str
) -> None:
    """Chromium on the broadcast page: static/progress.js moves the bar and the counters
    as the outbox sends, with no CSP violation or script error on the way."""
    playwright = pytest.importorskip("playwright.async_api")
    if not CHROMIUM.exists():  # noqa: ASYNC240
        pytest.skip("no Debian chromium")
    h = harness
    numbers = await joined_buyers(h, 4)
    await logged_in(h)
    broadcast_id = await compose(h)
    await confirm(h, broadcast_id)
    await run_actor(h)  # every recipient queued, nothing sent yet
    shots = Path("var/screenshots")
    shots.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
    db = "postgres" if database_url.startswith("postgresql") else "sqlite"
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844}, locale="id-ID")
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(  # a CSP violation is a console error
                "console",
                lambda m: (
                    problems.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource")
                    else None
                ),
            )
            page.on(  # the browser's own favicon request aside, nothing fails to load
                "response",
                lambda r: (
                    problems.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico")
                    else None
                ),
            )
            target = f"/admin/broadcasts/{broadcast_id}"
            await page.goto(str(h.client.make_url(f"/admin/login?next={target}")))
            await page.fill("input[name=email]", EMAIL)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"**{target}")
            bar = "section[data-broadcast] progress"
            assert await page.eval_on_selector(bar, "el => el.value") == 0
            await page.screenshot(path=str(shots / f"broadcast-phone-{db}.png"), full_page=True)

            outbox = h.app[OUTBOX]
            outbox.batch = 2
            await outbox.send_due()  # half of them
            # the page is not reloaded: only the script can move these (waits, under the
            # page's own CSP, until it has — or fails after 15 s)
            expect = playwright.expect
            card = page.locator("section[data-broadcast]")
            await expect(page.locator(bar)).to_have_attribute("value", "2", timeout=15_000)
            await expect(card.locator("[data-field=sent]")).to_have_text("2")
            await expect(card.locator("[data-field=queued]")).to_have_text("2")
            await outbox.flush()
            await expect(page.locator(bar)).to_have_attribute("value", "4", timeout=15_000)
            await expect(card.locator("[data-field=status_text]")).to_have_text("selesai")
            await expect(card.locator("[data-field=percent]")).to_have_text("100")
            await page.set_viewport_size({"width": 1280, "height": 800})
            await page.screenshot(path=str(shots / f"broadcast-laptop-{db}.png"), full_page=True)
            assert problems == []
        finally:
            await browser.close()
    assert sum(received_broadcast(h, n) for n in numbers) == 4

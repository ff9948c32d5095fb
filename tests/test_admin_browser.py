"""The admin panel in a real browser: Playwright driving Debian's Chromium
(``/usr/bin/chromium``, installed by ``.ci/run``; never a downloaded browser) against
``jastipin serve`` in its own process — login, logout, session expiry, CSRF refusal, the
proof flow from a buyer's chat to the buyer told, and the proof link's expiry. Every page
is photographed at phone (390×844) and laptop (1366×900) width into
``var/screenshots/admin/`` (test artifacts, not committed).

Without Chromium or the ``playwright`` package these tests are skipped with the reason;
under ``CI=true`` (or ``JASTIPIN_REQUIRE_SERVICES=1``) that is a failure instead.

How to add the browser tests of another page (broadcasts, queue, trips, jastipers,
audit, the jastiper's one-time ``/web`` link)
-----------------------------------------------------------------------------------------

The queue's retry, a jastiper's one-time link and every page at phone width are in
``tests/test_admin_browser_more.py`` (add a new page to its list of pages).

Add a test here, or a module of its own that imports the fixtures (one server, one fake
Graph API and one Chromium per module; each test gets a fresh browser context)::

    from tests.browser import MODULE_LOOP, Served, admin_page, browser, page, served  # noqa: F401
    from tests.browser import open_page, screenshots, until

    pytestmark = MODULE_LOOP
    SERVE_ENV = {"BROADCAST_RATE_LIMIT": "2"}  # optional: more settings for `jastipin serve`

    async def test_the_queue_page_retries_a_dead_letter(admin_page: Page, served: Served):
        await admin_page.click("nav >> text=Antrean")
        await screenshots(admin_page, "queue")
        ...

What the fixtures give:

* ``served`` (:class:`tests.browser.Served`): ``served.url``; ``served.fake``, the fake
  Graph API the server sends through (``fake.texts_to(phone)``, ``fake.wait_for(n,
  to=phone)``, ``fake.latency = 0.2`` to slow sends down so a progress bar can be
  watched, ``fake.fail_next(...)`` to make dead letters); ``served.db``, the server's
  database opened from the test (set up rows, expire things, check results — select
  columns, not whole rows: names are sealed with the server's key);
  ``await served.jastipin("admin", ...)`` runs another CLI command on it;
  ``served.signed_query(what, issued=...)`` signs a link as the server does.
* ``served.chat()`` (:class:`tests.browser.Chat`): people chatting through signed webhooks
  — ``say``, ``tap_title``, ``send_photo``, ``buyer_orders``. The demo jastiper is
  ``storage.demo.DEMO_PHONE``: ``await chat.say(DEMO_PHONE, "/web")`` and read the link
  from ``served.fake.texts_to(DEMO_PHONE)[-1]``.
* ``page`` (no session) and ``admin_page`` (logged in as the CLI-made admin, on the
  dashboard); ``open_page(browser, served, **context_options)`` for a second person or
  ``java_script_enabled=False``. A page that breaks the CSP or throws a script error
  fails its test.
* ``until(check)`` waits for something the server does on its own (a sent message, a
  row) — never assert on elapsed time.

Every test shares the server's database: make your own buyers (``phone()``) and orders
rather than counting rows, and keep failed logins below the throttle (5 per address).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest_asyncio
from sqlalchemy import select, update

from storage.models import AdminSession, Order, PaymentProof, utcnow
from tests.browser import (
    MODULE_LOOP,
    Served,
    admin_page,
    browser,
    buyer_with_proof,
    log_in,
    on_a_phone,
    open_page,
    page,
    screenshots,
    served,
    session_hash,
    until,
)

if TYPE_CHECKING:  # without playwright the tests skip (or fail under CI), not the import
    from playwright.async_api import Browser, Page

__all__ = ["admin_page", "browser", "page", "served"]  # fixtures, used by name

pytestmark = MODULE_LOOP


async def statuses(served: Served, code: str) -> tuple[str, list[str]]:
    """The order's status and its proofs' statuses, as stored."""
    async with served.db.read() as session:
        order = (
            await session.execute(select(Order.id, Order.status).where(Order.code == code))
        ).one()
        proofs = (
            (
                await session.execute(
                    select(PaymentProof.status).where(PaymentProof.order_id == order.id)
                )
            )
            .scalars()
            .all()
        )
    return order.status, list(proofs)


async def proof_id_of(served: Served, code: str) -> int:
    async with served.db.read() as session:
        found = await session.execute(
            select(PaymentProof.id)
            .join(Order, Order.id == PaymentProof.order_id)
            .where(Order.code == code)
        )
        return int(found.scalar_one())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sari(served: Served) -> AsyncIterator[tuple[str, str]]:
    """Sari ordered in chat and sent her proof (shared by the proof flow and link tests)."""
    yield await buyer_with_proof(served, "Sari")


# --- access -----------------------------------------------------------------------------


async def test_login_with_the_plain_form_even_without_javascript(
    browser: Browser, served: Served
) -> None:
    async with open_page(browser, served, java_script_enabled=False) as plain:
        await plain.goto("/admin/")
        assert plain.url == served.at("/admin/login?next=/admin/")
        assert await plain.locator("nav").count() == 0  # nothing of the panel shows
        await screenshots(plain, "login")
        await log_in(plain, served)
        assert plain.url == served.at("/admin/")
        assert await plain.locator("h1").inner_text() == "Dasbor"
        assert served.email in await plain.content()
        await screenshots(plain, "dashboard")


async def test_a_wrong_password_is_told_and_the_email_kept(page: Page, served: Served) -> None:
    await log_in(page, served, password="not the password")
    assert page.url.startswith(served.at("/admin/login"))
    alert = page.locator('[role="alert"]')
    assert await alert.inner_text() == "Email atau kata sandi salah."
    assert await page.input_value('input[name="email"]') == served.email
    assert await page.input_value('input[name="password"]') == ""
    await screenshots(page, "login-wrong-password")
    # the right password, typed again on that page, gets in
    await log_in(page, served)
    assert page.url == served.at("/admin/")


async def test_after_logout_the_panel_shows_nothing_but_the_login(
    admin_page: Page, served: Served
) -> None:
    page = admin_page
    assert await page.locator("nav").count() == 1
    await page.click("text=Keluar")
    # the logout POST redirects: wait until that navigation has settled before going back
    await page.wait_for_url(served.at("/admin/login"))
    await page.wait_for_load_state("load")
    # the browser's Back button does not bring the dashboard back (no-store: it asks
    # again, and the server sends it to the login)
    await page.go_back(wait_until="load")
    assert page.url == served.at("/admin/login?next=/admin/")
    assert await page.locator('form[action="/admin/login"]').count() == 1
    assert await page.locator("nav").count() == 0
    for path in ("/admin/", "/admin/orders", "/admin/proofs"):
        await page.goto(path)
        assert page.url.startswith(served.at("/admin/login")), path
        assert await page.locator("nav").count() == 0
        assert served.email not in await page.content()


async def test_an_expired_session_sends_the_next_click_to_the_login(
    admin_page: Page, served: Served
) -> None:
    page = admin_page
    await page.click("nav >> text=Pesanan")
    assert page.url == served.at("/admin/orders")
    mine = await session_hash(page)
    async with served.db.transaction() as session:
        await session.execute(
            update(AdminSession)
            .where(AdminSession.token_hash == mine)
            .values(last_seen_at=utcnow() - dt.timedelta(minutes=31))
        )
    await page.click("nav >> text=Bukti transfer")
    assert page.url == served.at("/admin/login?next=/admin/proofs")
    assert await page.locator("nav").count() == 0
    await screenshots(page, "login-after-expiry")
    # logging in again goes where the click was going
    await log_in(page, served)
    assert page.url == served.at("/admin/proofs")


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    admin_page: Page, served: Served
) -> None:
    page = admin_page
    buyer, code = await buyer_with_proof(served, "Budi")
    told = len(served.fake.sent_to(buyer))
    await page.goto(f"/admin/orders/{code}")
    approve = page.locator("form[action$='/approve']")
    removed = await approve.evaluate(
        "form => { const f = form.querySelector('input[name=csrf_token]'); f.remove(); "
        "return form.querySelectorAll('input[name=csrf_token]').length; }"
    )
    assert removed == 0
    async with page.expect_navigation() as navigation:
        await approve.locator("button[type=submit]").click()
    response = await navigation.value
    assert response is not None and response.status == 403
    assert await page.locator("h1").inner_text() == "Permintaan ditolak"
    assert "Muat ulang halamannya" in await page.content()
    await screenshots(page, "csrf-refused")
    assert await statuses(served, code) == ("proof_submitted", ["submitted"])
    assert len(served.fake.sent_to(buyer)) == told
    # still logged in, and the form as served (with its token) still works
    await page.goto(f"/admin/orders/{code}")
    await page.locator("form[action$='/approve'] button[type=submit]").click()
    assert page.url == served.at(f"/admin/orders/{code}?done=approved")


# --- the proof flow ---------------------------------------------------------------------


async def test_an_order_from_chat_is_found_approved_and_the_buyer_told(
    admin_page: Page, served: Served, sari: tuple[str, str]
) -> None:
    page = admin_page
    buyer, code = sari
    await screenshots(page, "dashboard-with-proof")
    # one click from /admin/ to the order
    await page.locator(f'a[href="/admin/orders/{code}"]').first.click()
    assert page.url == served.at(f"/admin/orders/{code}")
    body = await page.locator("main").inner_text()
    assert "Kit Kat Matcha" in body and "Sari" in body and "Jl. Melati No. 5" in body
    # the proof image, through its signed link, shows in the page
    shown = page.locator("img.proof-img")
    await until(lambda: shown.evaluate("img => img.complete"))
    assert await shown.evaluate("img => img.naturalWidth") == 64
    await screenshots(page, "order")
    # and opens on its own
    async with page.expect_navigation() as navigation:
        await page.locator("a:has(img.proof-img)").click()
    response = await navigation.value
    assert response is not None and response.status == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert "/image?exp=" in page.url and "&sig=" in page.url
    await page.go_back(wait_until="load")

    told = len(served.fake.sent_to(buyer))
    await page.locator("form[action$='/approve'] button[type=submit]").click()
    assert page.url == served.at(f"/admin/orders/{code}?done=approved")
    assert (
        await page.locator('[role="status"]').inner_text()
        == "Bukti disetujui. Pembeli sudah dikabari."
    )
    await screenshots(page, "order-approved")
    await served.fake.wait_for(told + 1, timeout=15, to=buyer)
    assert served.fake.texts_to(buyer)[-1] == (
        f"Pembayaran untuk pesanan {code} sudah dikonfirmasi jastiper. Terima kasih! 🙏"
    )
    assert await statuses(served, code) == ("paid", ["approved"])


async def test_a_proof_link_older_than_fifteen_minutes_is_refused(
    admin_page: Page, served: Served, sari: tuple[str, str]
) -> None:
    page = admin_page
    _buyer, code = sari
    proof = await proof_id_of(served, code)
    image = f"/admin/proofs/{proof}/image"
    await page.goto(f"/admin/orders/{code}")
    link = await page.locator("a:has(img.proof-img)").get_attribute("href")
    assert link is not None and link.startswith(f"{image}?exp=")

    async def status_of(path: str) -> int:
        response = await page.goto(path)
        assert response is not None
        shown = response.headers["content-type"].startswith("image/")
        assert shown == (response.status == 200), path  # a refused link shows no image
        return response.status

    assert await status_of(link) == 200  # the page's own link
    # signed with the server's key, as the server signs: fresh works, old is refused
    now = time.time()
    assert await status_of(f"{image}?{served.signed_query(f'proof:{proof}')}") == 200
    old = f"{image}?{served.signed_query(f'proof:{proof}', issued=now - 16 * 60)}"
    assert await status_of(old) == 403
    await screenshots(page, "proof-link-expired")
    # a link claiming to last longer than 15 minutes is refused too
    longer = f"{image}?{served.signed_query(f'proof:{proof}', issued=now + 10 * 60)}"
    assert await status_of(longer) == 403
    # and a link for one proof opens no other
    assert await status_of(link.replace(f"/proofs/{proof}/", f"/proofs/{proof + 1}/")) == 403


# --- every page, both widths ----------------------------------------------------------


async def test_every_page_fits_a_phone_and_a_laptop(admin_page: Page, served: Served) -> None:
    page = admin_page
    for name, path in (
        ("dashboard", "/admin/"),
        ("orders", "/admin/orders"),
        ("proofs", "/admin/proofs"),
        ("orders-search", "/admin/orders?q=sari"),
        ("dashboard-en", "/admin/?lang=en"),
    ):
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await screenshots(page, name)
        # the page itself never scrolls sideways on a phone (wide tables scroll in
        # their card)
        assert await on_a_phone(page, name, module="admin", boxes=False) == []

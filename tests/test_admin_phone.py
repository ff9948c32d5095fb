"""Phone first (issue #26), in Chromium at 390×844 against ``jastipin serve``: every page
of the admin panel and of the jastiper panel fits the phone — the page does not scroll
sideways and no table scrolls sideways inside its card either (rows stack as cards) —
the menu is one button that opens the list without JavaScript, the primary action is on
screen, and an error is a styled page. Screenshots of each page go to
``var/screenshots/phone/`` (printed; test artifacts, not committed)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests import browser as browser_helpers
from tests.browser import (
    MODULE_LOOP,
    PHONE,
    Served,
    admin_page,
    admin_pages,
    ask_link,
    browser,
    buyer_with_proof,
    open_page,
    page,
    served,
)

if TYPE_CHECKING:  # without playwright the tests skip (or fail under CI), not the import
    from playwright.async_api import Browser, Page

__all__ = ["admin_page", "browser", "page", "served"]  # fixtures, used by name

pytestmark = MODULE_LOOP


async def on_a_phone(page: Page, name: str) -> list[str]:
    """What scrolls sideways on ``page`` at 390 px, the page or a box in it (``[]``:
    nothing), with a screenshot in ``var/screenshots/phone/``."""
    return await browser_helpers.on_a_phone(page, name, module="phone", boxes=True)


async def test_every_admin_page_fits_a_phone_with_a_menu(browser: Browser, served: Served) -> None:
    _buyer, code = await buyer_with_proof(served, "Rani Ponsel")
    async with open_page(browser, served, viewport=PHONE) as page:
        await page.goto("/admin/login")
        wide = await on_a_phone(page, "login")
        await page.fill('input[name="email"]', served.email)
        await page.fill('input[name="password"]', served.password)
        await page.click('button[type="submit"]')
        assert page.url == served.at("/admin/")

        # the menu: one button; the list opens on a tap (no JavaScript)
        links = page.locator("nav ul a")
        await page.wait_for_load_state()  # the stylesheet applied
        assert not await links.first.is_visible()
        await page.locator(".menu-button").click()
        assert await links.first.is_visible()
        assert await links.count() == 8
        await page.locator("nav ul a", has_text="Antrean").click()
        assert page.url == served.at("/admin/queue")

        for name, path in admin_pages(code):
            response = await page.goto(path)
            assert response is not None and response.status == 200, path
            wide += await on_a_phone(page, name)

        # an order code never breaks in two on a phone
        await page.goto("/admin/orders")
        cell = page.locator(f'a[href="/admin/orders/{code}"]').first
        box = await cell.bounding_box()
        assert box is not None and box["height"] < 30, box  # one line

        # the broadcast confirm step: its primary action on the first screen
        await page.goto("/admin/broadcasts/new")
        await page.fill("textarea[name=text]", "Stok baru datang, cek katalog ya!")
        await page.locator("button[type=submit]").last.click()
        assert re.search(r"/admin/broadcasts/\d+/confirm$", page.url), page.url
        wide += await on_a_phone(page, "broadcast-confirm")
        send = page.locator("button[value=send]")
        assert await send.is_visible() and "primary" in (await send.get_attribute("class") or "")
        box = await send.bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE["height"], box

        # an error: a styled page with a way back, at phone width too
        response = await page.goto("/admin/orders/JP-NOPE00")
        assert response is not None and response.status == 404
        assert await page.locator("h1").inner_text() == "Halaman tidak ditemukan"
        assert await page.locator("main a.button[href='/admin/']").is_visible()
        wide += await on_a_phone(page, "error-404")
    assert not wide, "\n".join(wide)


async def test_the_jastiper_panel_fits_a_phone(browser: Browser, served: Served) -> None:
    _buyer, code = await buyer_with_proof(served, "Sinta Ponsel")
    link = await ask_link(served)
    async with open_page(browser, served, viewport=PHONE) as tina:
        await tina.goto(link)
        wide = await on_a_phone(tina, "jweb-open")
        await tina.locator("button", has_text="Buka panel").click()
        assert tina.url == served.at("/j-web/")
        for name, path in (
            ("jweb-orders", "/j-web/"),
            ("jweb-order", f"/j-web/orders/{code}"),
            ("jweb-proofs", "/j-web/proofs"),
            ("jweb-broadcasts", "/j-web/broadcasts"),
        ):
            response = await tina.goto(path)
            assert response is not None and response.status == 200, path
            wide += await on_a_phone(tina, name)
        # the orders list: the total and the date of each order are on screen
        await tina.goto("/j-web/")
        row = tina.locator("table.rows tbody tr").first
        text = await row.inner_text()
        assert "Rp" in text and "WIB" in text, text
        response = await tina.goto("/j-web/orders/JP-NOPE00")
        assert response is not None and response.status == 404
        assert await tina.locator("main a.button[href='/j-web/']").is_visible()
        wide += await on_a_phone(tina, "jweb-error-404")
    assert not wide, "\n".join(wide)

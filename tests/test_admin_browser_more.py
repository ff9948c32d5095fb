"""More of the admin panel in a real browser (Chromium against ``jastipin serve``, one
server per module — see ``tests/test_admin_browser.py`` for the fixtures): the queue's
retry of a dead letter (one and all), a jastiper's one-time ``/web`` link and its limits
(once, own trips only, nothing of ``/admin/``), and every page photographed at phone and
laptop width into ``var/screenshots/admin/`` without ever scrolling sideways on a phone.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest_asyncio
from sqlalchemy import func, select

from bot import simulate
from storage.models import Jastiper, Order, OutboxMessage, Trip
from tests.browser import (
    MODULE_LOOP,
    Served,
    admin_page,
    admin_pages,
    ask_link,
    browser,
    buyer_with_proof,
    on_a_phone,
    open_page,
    page,
    screenshots,
    served,
    until,
)
from tests.conftest import phone

if TYPE_CHECKING:  # without playwright the tests skip (or fail under CI), not the import
    from playwright.async_api import Browser, Page

__all__ = ["admin_page", "browser", "page", "served"]  # fixtures, used by name

pytestmark = MODULE_LOOP

UNDELIVERABLE = 131026  # Meta: the number cannot receive WhatsApp messages (permanent)
UNDELIVERABLE_TEXT = "nomor tidak bisa menerima pesan WhatsApp"
SEND_AGAIN = "Kirim /web di chat WhatsApp untuk mendapatkan link baru."


async def sideways(page: Page, what: str) -> list[str]:
    """Photograph ``page`` at both widths as ``what``; at phone width, whether the page
    itself scrolls sideways (nothing: a wide table scrolls inside its card) — ``[]`` when
    it fits, else a line saying which page and by how much."""
    await screenshots(page, what)
    return await on_a_phone(page, what, module="admin", boxes=False)


async def fits_a_phone(page: Page, what: str) -> None:
    assert await sideways(page, what) == []


# --- the queue ---------------------------------------------------------------------------


async def failed_for_good(served: Served) -> int:
    async with served.db.read() as session:
        found = await session.execute(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.status == "failed", OutboxMessage.error_code == UNDELIVERABLE
            )
        )
        return int(found.scalar_one())


async def undeliverable_reply(served: Served, name: str) -> str:
    """A new buyer says ``JOIN DEMO`` and Meta answers our reply 131026 (permanent): the
    reply is a dead letter. Returns the buyer's phone."""
    buyer = phone()
    before = await failed_for_good(served)
    served.fake.fail_next(
        code=UNDELIVERABLE, http_status=400, title="Message Undeliverable", to=buyer
    )
    served.phones.add(buyer)
    await served.webhook(simulate.text(buyer, "JOIN DEMO", name=name))

    async def dead() -> bool:
        return await failed_for_good(served) > before

    await until(dead)
    assert served.fake.texts_to(buyer) == []  # nothing reached the buyer
    return buyer


async def test_the_queue_shows_a_dead_letter_in_words_and_retries_it(
    admin_page: Page, served: Served
) -> None:
    page = admin_page
    buyer = await undeliverable_reply(served, "Dedi Antre")
    await page.click("nav >> text=Antrean")
    assert page.url == served.at("/admin/queue")
    row = page.locator("tr", has_text="Dedi Antre")
    assert await row.count() == 1
    assert await row.locator("td.reason").inner_text() == UNDELIVERABLE_TEXT
    await fits_a_phone(page, "queue-dead-letter")

    await row.locator("button", has_text="Kirim ulang").click()
    assert page.url == served.at("/admin/queue?done=retried&n=1")
    assert (
        await page.locator('[role="status"]').inner_text()
        == "1 pesan gagal masuk antrean kirim lagi."
    )
    assert await page.locator("tr", has_text="Dedi Antre").count() == 0
    # the reply the buyer never got now reaches WhatsApp, once: the trip's welcome with
    # its buttons, as if nothing had failed
    await served.fake.wait_for(1, timeout=15, to=buyer)
    assert len(served.fake.sent_to(buyer)) == 1
    assert ("Pakai Dedi Antre", False) in [
        (title, as_list) for title, _id, as_list in served.chat().choices(buyer)
    ]


async def test_retry_all_sends_every_dead_letter_again(admin_page: Page, served: Served) -> None:
    page = admin_page
    buyers = [
        await undeliverable_reply(served, "Eka Antre"),
        await undeliverable_reply(served, "Fajar Antre"),
    ]
    await page.goto("/admin/queue")
    for name in ("Eka Antre", "Fajar Antre"):
        row = page.locator("tr", has_text=name)
        assert await row.locator("td.reason").inner_text() == UNDELIVERABLE_TEXT
    await page.locator("button", has_text="Kirim ulang semua").click()
    assert page.url.startswith(served.at("/admin/queue?done=retried&n="))
    assert (
        "pesan gagal masuk antrean kirim lagi."
        in await page.locator('[role="status"]').inner_text()
    )
    assert "Tidak ada pesan keluar yang gagal." in await page.locator("main").inner_text()
    for buyer, name in zip(buyers, ("Eka Antre", "Fajar Antre"), strict=True):
        await served.fake.wait_for(1, timeout=15, to=buyer)
        assert len(served.fake.sent_to(buyer)) == 1
        assert f"Pakai {name}" in [title for title, _id, _list in served.chat().choices(buyer)]
    assert await failed_for_good(served) == 0


# --- a jastiper's one-time link ----------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rival(served: Served) -> AsyncIterator[tuple[str, str]]:
    """A second jastiper (``jastipin jastiper add``) with a trip made in chat and an order
    in it (seeded in the served database); (trip code, order code)."""
    chat = served.chat()
    number = phone()
    await served.jastipin(
        "jastiper", "add", "--phone", number, "--name", "Rina",
        "--bank", "BCA", "--account", "9876543210", "--account-name", "Rina",
    )  # fmt: skip
    for text in ("/trip new", "Jastip Seoul Rina", "Seoul, Korea", "20-01-2099"):
        await chat.say(number, text, name="Rina")
    await chat.tap_title(number, "Lunas")
    await chat.say(number, "5%", name="Rina")

    async def made() -> Trip | None:
        async with served.db.read() as session:
            return (
                await session.execute(select(Trip).where(Trip.title == "Jastip Seoul Rina"))
            ).scalar_one_or_none()

    await chat.tap_title(number, "Pakai rekening ini")
    await until(made)
    code = "JP-R" + secrets.token_hex(3).upper()
    async with served.db.transaction() as session:
        trip = (
            await session.execute(
                select(Trip.id, Trip.code, Jastiper.user_id)
                .join(Jastiper, Jastiper.id == Trip.jastiper_id)
                .where(Trip.title == "Jastip Seoul Rina")
            )
        ).one()
        session.add(Order(code=code, trip_id=trip.id, user_id=trip.user_id, status="paid"))
    yield trip.code, code


async def test_a_jastipers_link_opens_once_and_shows_only_her_trips(
    browser: Browser, served: Served, rival: tuple[str, str]
) -> None:
    rival_trip, rival_order = rival
    _buyer, code = await buyer_with_proof(served, "Wati Web")
    link = await ask_link(served)
    async with open_page(browser, served) as tina:
        response = await tina.goto(link)
        assert response is not None and response.status == 200
        assert await tina.locator("h1").inner_text() == "Buka panel jastiper"
        await fits_a_phone(tina, "jweb-open")
        await tina.locator("button", has_text="Buka panel").click()
        assert tina.url == served.at("/j-web/")
        main = await tina.locator("main").inner_text()
        assert code in main and "Wati Web" in main
        assert rival_order not in main and rival_trip not in main
        trips = await tina.locator("select[name=trip] option").all_inner_texts()
        assert [t.split(" ")[0] for t in trips[1:]] == ["DEMO"]
        await fits_a_phone(tina, "jweb-orders")

        await tina.locator(f'a[href="/j-web/orders/{code}"]').click()
        assert "Wati Web" in await tina.locator("main").inner_text()
        await fits_a_phone(tina, "jweb-order")
        await tina.goto("/j-web/proofs")
        assert code in await tina.locator("main").inner_text()
        await fits_a_phone(tina, "jweb-proofs")
        await tina.goto("/j-web/broadcasts")
        await fits_a_phone(tina, "jweb-broadcasts")

        # another jastiper's order or recap, guessed: as if it did not exist
        for guessed in (
            f"/j-web/orders/{rival_order}",
            f"/j-web/trips/{rival_trip}/recap.csv",
            "/j-web/orders/JP-NOPE00",
        ):
            answer = await tina.goto(guessed)
            assert answer is not None and answer.status == 404, guessed
            assert rival_order not in await tina.content()
        # her session opens nothing of the admin panel
        await tina.goto("/admin/")
        assert tina.url == served.at("/admin/login?next=/admin/")
        assert await tina.locator("nav").count() == 0
        await tina.goto("/admin/orders")
        assert tina.url.startswith(served.at("/admin/login"))

    # the same link again (forwarded, or opened twice): the friendly page
    async with open_page(browser, served) as again:
        response = await again.goto(link)
        assert response is not None and response.status == 410
        assert await again.locator("h1").inner_text() == "Link ini sudah tidak berlaku"
        assert SEND_AGAIN in await again.locator("main").inner_text()
        assert await again.locator("button", has_text="Buka panel").count() == 0
        await fits_a_phone(again, "jweb-link-used")
        # and without a session the panel is the same page
        response = await again.goto("/j-web/")
        assert response is not None and response.status == 401
        assert SEND_AGAIN in await again.locator("main").inner_text()


# --- every page, both widths --------------------------------------------------------------


async def test_every_page_is_photographed_and_fits_a_phone(
    admin_page: Page, browser: Browser, served: Served
) -> None:
    page = admin_page
    wide: list[str] = []
    _buyer, code = await buyer_with_proof(served, "Gita Foto")
    for name, path in admin_pages(code):
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        assert "<" not in await page.title(), path  # no markup leaked into the title
        wide += await sideways(page, name)

    # a broadcast composed in the browser: the live estimate (static/estimate.js), the
    # confirm step with the same figures, then the broadcast itself
    live = page.locator("[data-estimate]").filter(has_text="Perkiraan:")
    await live.wait_for()
    estimated = re.match(r"Perkiraan: (\d+) penerima", await live.inner_text())
    assert estimated, await live.inner_text()
    await page.fill("textarea[name=text]", "Foto produk baru sudah ada, cek katalog ya!")
    await page.locator("button[type=submit]", has_text="Lihat perkiraan").click()
    assert re.search(r"/admin/broadcasts/\d+/confirm$", page.url), page.url
    recipients = page.locator('[data-field="recipients"]').first
    assert await recipients.inner_text() == estimated.group(1)
    wide += await sideways(page, "broadcast-confirm")
    await page.locator("button[value=send]").click()
    assert re.search(r"/admin/broadcasts/\d+\?done=queued$", page.url), page.url
    wide += await sideways(page, "broadcast")
    await page.goto("/admin/broadcasts")
    wide += await sideways(page, "broadcasts")

    async with open_page(browser, served) as anyone:
        for name, path in (("login", "/admin/login"), ("trip-public", "/t/DEMO")):
            response = await anyone.goto(path)
            assert response is not None and response.status == 200, path
            wide += await sideways(anyone, name)
        async with served.db.read() as session:
            slug = (
                await session.execute(select(Jastiper.slug).where(Jastiper.name == "Tina"))
            ).scalar_one()
        assert slug == "tina"
        response = await anyone.goto(f"/j/{slug}")
        assert response is not None and response.status == 200
        wide += await sideways(anyone, "jastiper-public")
    assert not wide, "\n".join(wide)

"""The newcomer's tour, in Chromium: ``jastipin serve`` in dev mode (as ``make run``
starts it), ``/dev/chat`` opened in a browser, the demo trip joined, an order placed, a
photo sent as the proof, Tina switched to and the proof approved, the buyer switched back
to and the confirmation seen. Screenshots are kept in ``var/screenshots/dev_chat/``.

Playwright drives Debian's ``chromium`` (``JASTIPIN_CHROMIUM``); without it the test is
skipped locally and fails under CI.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from PIL import Image

from tests.conftest import REQUIRE_SERVICES

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

CHROMIUM = os.environ.get("JASTIPIN_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots" / "dev_chat"
CLI = [sys.executable, "-c", "from bot.cli import main; main()"]


def _missing(what: str) -> None:
    message = f"the browser test needs {what} (apt-get install chromium; pip install playwright)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def _chromium_present() -> bool:
    return Path(CHROMIUM).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """``jastipin serve`` in dev mode (no WhatsApp token; signatures checked) on the test
    database with the demo seeded: ``(base URL, what it printed)``."""
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WA_", "PII_", "REDIS_", "DATABASE_URL", "PUBLIC_BASE_URL"))
    }
    env.update(
        JASTIPIN_DATA_DIR=str(tmp_path),
        DATABASE_URL=database_url,
        PORT=str(port),
        WA_APP_SECRET=secrets.token_hex(16),
        PII_ENCRYPTION_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        USER_RATE_LIMIT="0",
        LOG_LEVEL="WARNING",
    )
    seeded = await asyncio.to_thread(
        subprocess.run, [*CLI, "demo"], env=env, capture_output=True, text=True, timeout=120
    )
    assert seeded.returncode == 0, seeded.stderr
    out = tmp_path / "serve.log"
    with out.open("w") as log:
        proc = await asyncio.create_subprocess_exec(
            *CLI, "serve", env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):  # until it answers (or has died)
                assert proc.returncode is None, out.read_text()
                try:
                    if (await http.get(base + "/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("jastipin serve did not come up: " + out.read_text())
        yield base, out.read_text()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


@pytest.fixture
async def browser_page() -> AsyncIterator[Page]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("playwright")
    if not _chromium_present():
        _missing(f"chromium at {CHROMIUM}")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = await browser.new_context(viewport={"width": 1100, "height": 820})
            yield await context.new_page()
        finally:
            await browser.close()


class Phone:
    """A person at the simulator page, typing and tapping as in WhatsApp."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self._before = 0

    def bot(self) -> Locator:
        return self.page.locator(".msg.bot")

    async def _after(self, action: Any) -> None:
        before = await self.bot().count()
        await action()
        await self.page.wait_for_function(
            "n => document.querySelectorAll('.msg.bot').length > n", arg=before
        )
        self._before = before

    async def _replies(self) -> str:
        """Every bubble the bot sent since the last action (a reply may be several, e.g.
        a product photo and then its buttons): waits until no more arrive."""
        count = await self.bot().count()
        for _ in range(20):
            await asyncio.sleep(0.3)
            now = await self.bot().count()
            if now == count:
                break
            count = now
        bubbles = self.bot()
        return "\n".join([await bubbles.nth(i).inner_text() for i in range(self._before, count)])

    async def say(self, text: str) -> str:
        async def act() -> None:
            await self.page.fill("#compose input[name=text]", text)
            await self.page.press("#compose input[name=text]", "Enter")

        await self._after(act)
        return await self._replies()

    async def tap(self, title: str) -> str:
        """Tap a reply button or a list row of the last bot message that has choices."""
        last = self.page.locator(".msg.bot", has=self.page.locator("form.tap")).last
        summary = last.locator("details.list > summary")
        if await summary.count():
            await summary.click()  # open the list
        button = last.locator("form.tap button", has_text=re.compile(f"^{re.escape(title)}"))
        await self._after(button.first.click)
        return await self._replies()

    async def send_photo(self, path: Path) -> str:
        async def act() -> None:
            await self.page.set_input_files("#compose input[name=file]", str(path))
            await self.page.click("#compose button[type=submit]")

        await self._after(act)
        return await self.bot().last.inner_text()

    async def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        print(f"screenshot: {path}")


async def test_newcomer_orders_pays_and_is_confirmed_in_the_browser(
    served: tuple[str, str], browser_page: Page, tmp_path: Path, database_url: str
) -> None:
    base, printed = served
    assert f"open {base}/dev/chat" in printed  # `make run` says where to go
    db = "sqlite" if database_url.startswith("sqlite") else "postgres"
    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    proof = tmp_path / "bukti-transfer.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (120, 90), "teal").save(buf, "JPEG")
    proof.write_bytes(buf.getvalue())

    await page.goto(base + "/dev/chat")
    await page.click(".people a:has-text('Sari')")
    await page.evaluate("window.stillThisPage = true")  # a reload would forget it
    buyer = Phone(page)
    assert "Jastip Tokyo Demo" in await buyer.say("JOIN DEMO")
    await buyer.tap("Pakai Sari")
    await buyer.tap("Ya, kabari aku")
    assert "Hasil pencarian" in await buyer.say("CARI Calbee")
    assert "Rp 65.000" in await buyer.tap("Calbee Jagabee")
    await buyer.tap("Pesan")
    await buyer.tap("1")
    await buyer.tap("Lewati")
    await buyer.tap("Checkout")
    for line in ("Sari Wulandari", "0812-3456-7890", "Jl. Melati No. 5", "Jakarta Selatan"):
        await buyer.say(line)
    await buyer.say("12120")
    await buyer.tap("Benar")
    instructions = await buyer.tap("Konfirmasi")
    code = re.search(r"JP-[A-Z0-9]+", instructions)
    assert code is not None, instructions
    assert "sudah kami terima" in await buyer.send_photo(proof)
    assert await page.evaluate("window.stillThisPage === true")  # no reload, all live
    await buyer.shot(f"1-buyer-sent-proof-{db}")

    # Sari's chat is open: her replies are read (blue ticks, a time on each bubble) and
    # Tina, who has the proof waiting, shows an unread badge in the chat list
    await page.wait_for_selector(".msg.bot .tick.read", timeout=15_000)
    stamp = await page.locator(".msg.bot .stamp time").last.inner_text()
    assert re.fullmatch(r"\d\d:\d\d", stamp), stamp
    badge = page.locator(".people a:has-text('Tina') .unread")
    await badge.wait_for(timeout=15_000)
    assert int(await badge.inner_text()) >= 1
    await buyer.shot(f"1b-tina-unread-{db}")

    await page.click(".people a:has-text('Tina')")
    tina = Phone(page)
    assert await page.locator(".people a:has-text('Tina') .unread").count() == 0
    image = page.locator(".msg.bot", has_text=code.group(0)).locator("img").last
    assert await image.evaluate("img => img.complete && img.naturalWidth") == 120
    await tina.shot(f"2-tina-sees-proof-{db}")
    await tina.tap("Setujui")
    await tina.shot(f"3-tina-approved-{db}")

    await page.click(".people a:has-text('Sari')")
    await page.wait_for_selector(".msg.bot:has-text('sudah dikonfirmasi')")
    await buyer.shot(f"4-buyer-confirmed-{db}")

    # a link the bot sends opens with a tap (Tina's one-time web panel link)
    await page.click(".people a:has-text('Tina')")
    await tina.say("/web")
    link = page.locator(".msg.bot .text a[target=_blank]", has_text="http").last
    assert (await link.get_attribute("href") or "").startswith("http://")
    assert problems == []

    # on a phone: the chat list, then one chat filling the screen, no page scrolling
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(base + "/dev/chat")
    assert await page.locator(".people").is_visible()
    assert not await page.locator(".chat").is_visible()
    await page.click(".people a:has-text('Sari')")
    assert not await page.locator(".picker").is_visible()
    compose = await page.locator("#compose").bounding_box()
    assert compose is not None and compose["y"] + compose["height"] <= 844
    scrolls = await page.evaluate(
        "document.scrollingElement.scrollHeight > window.innerHeight + 1"
    )
    assert not scrolls  # only the messages scroll, like WhatsApp
    assert await page.locator(".attach").is_visible()
    native = page.locator("#compose input[name=file]")  # there for the icon, not seen
    assert await native.evaluate("el => el.offsetWidth <= 1 && el.offsetHeight <= 1")
    clip = await page.locator(".attach").bounding_box()
    assert clip is not None and clip["width"] < 48  # an icon, not "Choose file"
    await buyer.shot(f"5-phone-chat-{db}")
    await page.click(".who .back")
    assert await page.locator(".people").is_visible()
    await buyer.shot(f"6-phone-list-{db}")
    assert problems == []
    # every tab closed on the way (each click above closed a stream): not an error
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]

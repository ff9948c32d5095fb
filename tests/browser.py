"""Fixtures and helpers for the admin panel's browser tests (Playwright driving Debian's
``chromium``): the real ``jastipin serve`` in its own process, a buyer chatting with it
through signed webhooks, and a Chromium page per test.

A browser test module imports what it uses and runs on the module's event loop::

    from tests.browser import MODULE_LOOP, Served, admin_page, browser, page, served  # noqa: F401

    pytestmark = MODULE_LOOP

    async def test_something(admin_page: Page, served: Served) -> None: ...

One server, one fake Graph API and one Chromium per *module* (each test gets a fresh
browser context: its own cookies). See the top of ``tests/test_admin_browser.py`` for how
to add a page's tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import io
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image

from admin_web.panel import auth
from admin_web.shell import security
from bot import simulate
from bot.settings import Settings
from storage.db import Database
from storage.demo import DEMO_PHONE
from tests.conftest import (
    ACCESS_TOKEN,
    APP_SECRET,
    PHONE_ID,
    REQUIRE_SERVICES,
    VERIFY_TOKEN,
    phone,
)
from tests.fakes.graph_api import FakeGraphAPI

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = os.environ.get("JASTIPIN_CHROMIUM", "/usr/bin/chromium")
JASTIPIN = str(Path(sys.executable).parent / "jastipin")
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
ADMIN_EMAIL = "ops@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
# every test of a browser module runs on the module's loop (the server, the fake Graph
# API and Chromium are started once per module)
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
ORDER_CODE = re.compile(r"\*(JP-[A-Z0-9]+)\*")


def _missing(what: str) -> None:
    """Under CI (or JASTIPIN_REQUIRE_SERVICES=1) a missing browser fails; elsewhere the
    browser tests are skipped with the reason."""
    message = f"{what} (install it with: apt-get install -y chromium; pip install playwright)"
    if REQUIRE_SERVICES:
        pytest.fail(f"the browser tests need {message}")
    pytest.skip(f"browser tests skipped: {message}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _run(argv: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        [JASTIPIN, *argv],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"jastipin {' '.join(argv)}: {done.stderr}"
    return done.stdout


# --- the served app ----------------------------------------------------------------------


@dataclasses.dataclass
class Served:
    """``jastipin serve`` on a fresh migrated SQLite database with the demo seeded, its
    WhatsApp calls going to :attr:`fake`, and an admin made with the CLI."""

    url: str
    env: dict[str, str]
    fake: FakeGraphAPI
    db: Database  # the server's database, opened from the test (for setup and checks)
    settings: Settings  # the parts of the server's settings the test needs (signing key)
    log: Path
    http: httpx.AsyncClient
    email: str = ADMIN_EMAIL
    password: str = ADMIN_PASSWORD
    phones: set[str] = dataclasses.field(default_factory=set)  # everyone who chatted

    def at(self, path: str) -> str:
        return self.url + path

    async def jastipin(self, *argv: str, stdin: str | None = None) -> str:
        """Run another ``jastipin`` command on this server's database and settings."""
        return await _run(list(argv), self.env, stdin)

    async def webhook(self, body: dict[str, Any]) -> None:
        """Post an update as Meta does: signed with the app secret."""
        raw = simulate.encode(body)
        resp = await self.http.post(
            "/api/webhooks/whatsapp",
            content=raw,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": simulate.sign(raw, APP_SECRET),
            },
        )
        assert resp.status_code == 200, resp.text

    def signed_query(self, what: str, *, issued: float | None = None) -> str:
        """``exp=…&sig=…`` for ``what`` as the server signs it (``security.signed_query``
        with the server's key), as if issued at ``issued`` (a Unix time; now by default)."""
        stand_in = SimpleNamespace(
            config_dict={security.SIGN_KEY: security.signing_key(self.settings)}
        )
        return security.signed_query(cast(web.Request, stand_in), what, now=issued)

    def chat(self) -> Chat:
        return Chat(self)


class Chat:
    """People chatting with the served app: every step a signed webhook, answered through
    the fake Graph API (the same shape of helpers as ``tests.conftest.Harness``)."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.names: dict[str, str] = {}

    async def send(self, phone: str, body: dict[str, Any], *, replies: int = 1) -> list[str]:
        """Post ``body`` and wait for ``replies`` messages to ``phone`` because of it."""
        fake = self.served.fake
        self.served.phones.add(phone)
        before = len(fake.sent_to(phone))
        await self.served.webhook(body)
        await fake.wait_for(before + replies, timeout=30, to=phone)
        return fake.texts_to(phone)[before:]

    def _named(self, phone: str, kw: dict[str, Any]) -> dict[str, Any]:
        if "name" in kw:
            self.names[phone] = kw["name"]
        elif phone in self.names:
            kw["name"] = self.names[phone]
        return kw

    async def say(self, phone: str, text: str, **kw: Any) -> list[str]:
        replies = kw.pop("replies", 1)
        body = simulate.text(phone, text, **self._named(phone, kw))
        return await self.send(phone, body, replies=replies)

    def choices(self, phone: str) -> list[tuple[str, str, bool]]:
        """(title, id, is a list row) of the buttons / rows in the last message to ``phone``."""
        message = self.served.fake.sent_to(phone)[-1]
        inter = message.get("interactive") or {}
        action = inter.get("action") or {}
        if inter.get("type") == "button":
            return [(b["reply"]["title"], b["reply"]["id"], False) for b in action["buttons"]]
        if inter.get("type") == "list":
            return [(r["title"], r["id"], True) for s in action["sections"] for r in s["rows"]]
        return []

    async def tap_title(self, phone: str, title: str, **kw: Any) -> list[str]:
        """Tap the button or row titled ``title`` in the last message to ``phone``."""
        replies = kw.pop("replies", 1)
        for shown, payload_id, as_list in self.choices(phone):
            if shown == title:
                body = simulate.tap(
                    phone, payload_id, shown, as_list=as_list, **self._named(phone, kw)
                )
                return await self.send(phone, body, replies=replies)
        raise AssertionError(f"no choice {title!r} in {self.choices(phone)}")

    async def send_photo(self, phone: str, data: bytes, **kw: Any) -> list[str]:
        media_id = self.served.fake.add_media(data, "image/jpeg")
        body = simulate.media(phone, "image", media_id, "image/jpeg", **self._named(phone, kw))
        return await self.send(phone, body)

    async def buyer_orders(self, phone: str, name: str, product: str = "Kit Kat Matcha") -> str:
        """Join the demo trip, consent, order one ``product`` to a new address and confirm;
        returns the order code from the payment instructions."""
        await self.say(phone, "JOIN DEMO", name=name)
        await self.tap_title(phone, f"Pakai {name}")
        await self.tap_title(phone, "Ya, kabari aku")
        await self.say(phone, f"CARI {product}")
        await self.tap_title(phone, product)  # the product: its photo heads its buttons
        await self.tap_title(phone, "Pesan")
        await self.tap_title(phone, "1")
        await self.tap_title(phone, "Lewati")
        await self.tap_title(phone, "Checkout")
        for answer in (name, "0812-3456-7890", "Jl. Melati No. 5", "Jakarta Selatan", "12120"):
            await self.say(phone, answer)
        await self.tap_title(phone, "Benar")
        (done,) = await self.tap_title(phone, "Konfirmasi")
        found = ORDER_CODE.search(done)
        assert found, done
        return found.group(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    """The real app for one test module. A module may set ``SERVE_ENV = {...}`` (e.g.
    ``REDIS_URL``, ``BROADCAST_RATE_LIMIT``) to start it with more settings."""
    data = tmp_path_factory.mktemp("served")
    port = _free_port()
    pii_key = secrets.token_bytes(32)
    jwt_secret = secrets.token_urlsafe(32)
    database_url = f"sqlite+aiosqlite:///{data / 'jastipin.db'}"
    async with FakeGraphAPI.running(token=ACCESS_TOKEN) as fake:
        dropped = ("WA_", "PII_", "JWT_", "REDIS_", "DATABASE_URL", "QUEUE_PREFIX")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(dropped)},
            "DATABASE_URL": database_url,
            "JASTIPIN_DATA_DIR": str(data),
            "PORT": str(port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "WA_ACCESS_TOKEN": ACCESS_TOKEN,
            "WA_APP_SECRET": APP_SECRET,
            "WA_VERIFY_TOKEN": VERIFY_TOKEN,
            "WA_PHONE_ID": PHONE_ID,
            "WA_API_BASE": fake.base_url,
            "PII_ENCRYPTION_KEY": base64.urlsafe_b64encode(pii_key).decode(),
            "JWT_SECRET": jwt_secret,
            "QUEUE_PREFIX": f"browser{secrets.token_hex(4)}",
            # a test chats far faster than anyone types (the limit has its own tests)
            "USER_RATE_LIMIT": "1000",
            **getattr(request.module, "SERVE_ENV", {}),
        }
        await _run(["db", "upgrade"], env)
        await _run(["demo"], env)
        await _run(
            ["admin", "create-user", "--email", ADMIN_EMAIL, "--password-stdin"],
            env,
            ADMIN_PASSWORD + "\n",
        )
        log_path = data / "serve.log"
        log = log_path.open("w")
        proc = await asyncio.create_subprocess_exec(
            JASTIPIN, "serve", env=env, stdout=log, stderr=log
        )
        db = Database(database_url)
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
        try:
            await _wait_healthy(http, proc, log_path)
            app = Served(
                url=f"http://127.0.0.1:{port}",
                env=env,
                fake=fake,
                db=db,
                settings=Settings(pii_key=pii_key, jwt_secret=jwt_secret),
                log=log_path,
                http=http,
            )
            yield app
        finally:
            await http.aclose()
            await db.dispose()
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), timeout=20)
            log.close()
        # what the server logged while the module ran: no phone number, no link signature
        written = await asyncio.to_thread(log_path.read_text)
        assert not [p for p in app.phones if p in written], "a phone number reached the log"
        assert not re.search(r"sig=[0-9a-f]{8}", written), "a link signature was logged"


async def _wait_healthy(
    http: httpx.AsyncClient, proc: asyncio.subprocess.Process, log: Path
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            break
        try:
            if (await http.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    output = await asyncio.to_thread(log.read_text)
    raise AssertionError(f"jastipin serve did not come up:\n{output}")


# --- the browser -------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, once per module (never a downloaded browser)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("the Python package playwright")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"Chromium at {CHROMIUM}")
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@contextlib.asynccontextmanager
async def open_page(browser: Browser, served: Served, **options: Any) -> AsyncIterator[Page]:
    """A page in a fresh browser context (no cookies), in Indonesian at laptop size unless
    ``options`` (Playwright ``new_context`` options, e.g. ``java_script_enabled=False``)
    say otherwise. Fails if the page broke the Content-Security-Policy or threw a script
    error — what no user should ever cause."""
    context = await browser.new_context(
        **{"base_url": served.url, "locale": "id-ID", "viewport": LAPTOP, **options}
    )
    context.set_default_timeout(15_000)
    csp_violations: list[str] = []
    script_errors: list[str] = []
    opened = await context.new_page()

    document = {"type": ""}

    def on_response(response: Any) -> None:
        if response.request.is_navigation_request() and response.frame == opened.main_frame:
            document["type"] = response.headers.get("content-type", "")

    def on_console(message: Any) -> None:
        # only our HTML pages: an image opened on its own is shown in Chromium's own
        # viewer document, whose inline style our CSP blocks (the image still shows)
        html = document["type"].startswith("text/html")
        if "Content Security Policy" in message.text and html:
            csp_violations.append(f"{opened.url}: {message.text}")

    opened.on("response", on_response)
    opened.on("console", on_console)
    opened.on("pageerror", lambda exc: script_errors.append(str(exc)))
    try:
        yield opened
    finally:
        await context.close()
    assert not csp_violations, csp_violations
    assert not script_errors, script_errors


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, served: Served) -> AsyncIterator[Page]:
    """A fresh page per test (see :func:`open_page`)."""
    async with open_page(browser, served) as opened:
        yield opened


async def log_in(page: Page, served: Served, *, password: str | None = None) -> None:
    """Fill and submit the login form like a person (no JavaScript needed)."""
    if "/admin/login" not in page.url:
        await page.goto("/admin/login")
    await page.fill('input[name="email"]', served.email)
    await page.fill('input[name="password"]', served.password if password is None else password)
    await page.click('button[type="submit"]')


@pytest_asyncio.fixture(loop_scope="module")
async def admin_page(page: Page, served: Served) -> Page:
    """A page logged in as the CLI-made admin, on the dashboard."""
    await log_in(page, served)
    assert page.url == served.at("/admin/"), page.url
    return page


async def session_hash(page: Page) -> str:
    """The stored form (SHA-256) of this browser's admin session cookie."""
    for cookie in await page.context.cookies():
        if cookie.get("name") == auth.SESSION_COOKIE:
            return hashlib.sha256(str(cookie.get("value")).encode()).hexdigest()
    raise AssertionError("the browser holds no admin session cookie")


# --- screenshots -------------------------------------------------------------------------


async def screenshots(page: Page, name: str, *, module: str = "admin") -> list[Path]:
    """Full-page screenshots of what ``page`` shows, at phone (390×844) and laptop
    (1366×900) width, into ``var/screenshots/<module>/<name>-{phone,laptop}.png``
    (test artifacts, not committed). Returns the files; leaves the page at laptop size."""
    folder = SCREENSHOTS / module
    folder.mkdir(parents=True, exist_ok=True)
    taken = []
    for label, size in (("phone", PHONE), ("laptop", LAPTOP)):
        await page.set_viewport_size(cast(Any, size))
        path = folder / f"{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=True)
        taken.append(path)
    return taken


def admin_pages(order_code: str) -> list[tuple[str, str]]:
    """Every page of the admin panel: (its name in screenshots, its path); the order page
    is ``order_code``'s."""
    return [
        ("dashboard", "/admin/"),
        ("orders", "/admin/orders"),
        ("order", f"/admin/orders/{order_code}"),
        ("proofs", "/admin/proofs"),
        ("trips", "/admin/trips"),
        ("trip", "/admin/trips/DEMO"),
        ("jastipers", "/admin/jastipers"),
        ("audit", "/admin/audit"),
        ("queue", "/admin/queue"),
        ("broadcasts", "/admin/broadcasts"),
        ("broadcast-new", "/admin/broadcasts/new"),
    ]


# what scrolls sideways: the page itself (naming the outermost elements that reach past
# the right edge, to say what to fix) and, when asked, a box scrolling inside the page
OVERFLOW = """(boxes) => {
  const out = [];
  const over = document.documentElement.scrollWidth - window.innerWidth;
  if (over > 0) {
    const past = e => e.getBoundingClientRect().right > window.innerWidth + 0.5;
    const clipped = e => { for (let a = e.parentElement; a; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') return true; } return false; };
    const culprits = [...document.querySelectorAll('body *')]
      .filter(e => past(e) && !clipped(e) && !(e.parentElement && past(e.parentElement)))
      .slice(0, 5)
      .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
        + ' ' + (e.textContent || '').trim().slice(0, 40));
    out.push('page by ' + over + 'px ' + JSON.stringify(culprits));
  }
  if (boxes) for (const e of document.querySelectorAll('body *')) {
    const style = getComputedStyle(e);
    if (['auto', 'scroll'].includes(style.overflowX) && e.scrollWidth > e.clientWidth + 1) {
      const by = e.scrollWidth - e.clientWidth;
      out.push(e.tagName.toLowerCase() + '.' + e.className + ' by ' + by + 'px');
    }
  }
  return out;
}"""


async def on_a_phone(page: Page, name: str, *, module: str, boxes: bool) -> list[str]:
    """What scrolls sideways on ``page`` at phone width (``[]``: nothing) — the page
    itself, and with ``boxes`` also a box inside it (else a wide table may scroll in its
    card) — with a full-page screenshot at that width into
    ``var/screenshots/<module>/<name>-phone.png`` (printed). The page is left at the
    size it had."""
    before = page.viewport_size
    await page.set_viewport_size(cast(Any, PHONE))
    folder = SCREENSHOTS / module
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"{name}-phone.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    found: list[str] = await page.evaluate(OVERFLOW, boxes)
    if before is not None and before != PHONE:
        await page.set_viewport_size(before)
    return [f"{name} ({page.url}): {', '.join(found)}"] if found else []


async def until(check: Callable[[], Any], *, timeout: float = 15) -> None:  # noqa: ASYNC109
    """Wait for ``check()`` (sync or async) to be true — for a state the server reaches on
    its own (a message sent, a row written); fails with the deadline, asserts no timing."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout}s: {check}")
        await asyncio.sleep(0.05)


def photo(colour: str = "green") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, "JPEG")
    return buf.getvalue()


async def buyer_with_proof(served: Served, name: str) -> tuple[str, str]:
    """A buyer who ordered in chat and sent a proof photo; (their phone, the order code)."""
    chat = served.chat()
    buyer = phone()
    code = await chat.buyer_orders(buyer, name)
    await chat.send_photo(buyer, photo())
    # the proof reaches Tina as two messages, the photo then "Setujui pembayaran <code>?"
    # with its buttons: wait for the last, or her next command's answer may be that one
    await until(lambda: any(t.endswith(f"{code}?") for t in served.fake.texts_to(DEMO_PHONE)))
    return buyer, code


LINK = re.compile(r"https?://[^/\s]+(/j-web/[A-Za-z0-9_-]{43})")


async def ask_link(served: Served) -> str:
    """Tina sends ``/web``; the path of the link in the reply."""
    (reply,) = await served.chat().say(DEMO_PHONE, "/web", name="Tina")
    found = LINK.search(reply)
    assert found, reply
    return found.group(1)

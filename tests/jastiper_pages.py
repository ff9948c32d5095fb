"""Steps on the jastiper's own web panel shared by its tests: the one-time link
asked in chat and opened, a form's CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from storage.demo import DEMO_PHONE
from tests.conftest import Harness

LINK = re.compile(r"(?:https?://[^/\s]+)?(/j-web/([A-Za-z0-9_-]{43}))")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def ask_link(h: Harness, phone: str = DEMO_PHONE, name: str = "Tina") -> str:
    """``/web`` in chat; the path of the link in the reply."""
    (reply,) = await h.say(phone, "/web", name=name)
    assert "berlaku 10 menit, sekali pakai" in reply
    found = LINK.search(reply)
    assert found, reply
    assert reply.count(found.group(2)) == 1
    return found.group(1)


@asynccontextmanager
async def browser(h: Harness) -> AsyncIterator[aiohttp.ClientSession]:
    """A second browser (its own cookies) on the same running app."""
    base = str(h.client.make_url("/"))
    async with aiohttp.ClientSession(
        base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as session:
        yield session


async def open_link(client: Any, path: str) -> aiohttp.ClientResponse:
    """Open the link as a person does: the page, then its button."""
    page = await client.get(path)
    assert page.status == 200, await page.text()
    text = await page.text()
    token = CSRF.search(text)
    assert token, text
    return await client.post(path, data={"csrf_token": token.group(1)}, allow_redirects=False)


async def logged_in(h: Harness, client: Any, phone: str, name: str) -> str:
    path = await ask_link(h, phone, name)
    resp = await open_link(client, path)
    assert resp.status == 303 and resp.headers["Location"] == "/j-web/"
    return path


async def csrf_of(client: Any, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, path
    found = CSRF.search(await resp.text())
    assert found
    return found.group(1)

"""The admin login throttle under concurrency, on both databases: of fifty simultaneous
wrong passwords for one account, only five are checked (argon2 verifications counted),
and the owner still gets in from the network they last logged in from.

The attempts come the way the issue saw them: from loopback (our reverse proxy) with a
different ``X-Forwarded-For`` each, so every one is a new address on a new network.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.accounts import create_admin
from services import admins
from services.accounts import verify_password
from storage.models import AuditLog
from tests.conftest import Harness

EMAIL = "owner@example.com"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def attempt(client: TestClient, password: str, forwarded: str) -> int:
    page = await client.get("/admin/login")
    found = CSRF.search(await page.text())
    assert found is not None
    resp = await client.post(
        "/admin/login",
        data={"email": EMAIL, "password": password, "csrf_token": found.group(1)},
        headers={"X-Forwarded-For": forwarded},
        allow_redirects=False,
    )
    return resp.status


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verification the login makes (the real one runs)."""
    seen: list[str] = []

    def counting(password: str, stored: str) -> bool:
        seen.append(stored[:10])
        return verify_password(password, stored)

    monkeypatch.setattr(admins, "verify_password", counting)
    return seen


async def test_fifty_concurrent_guesses_check_five_passwords_and_the_owner_gets_in(
    harness: Harness, verifications: list[str]
) -> None:
    h = harness
    await create_admin(h.settings, EMAIL, PASSWORD)
    # Given the owner logged in once from their office network
    assert await attempt(h.client, PASSWORD, "198.51.100.20") == 303
    verifications.clear()

    # When fifty wrong passwords arrive at once, each from another network
    statuses = await asyncio.wait_for(
        asyncio.gather(*(attempt(h.client, f"guess {i}", f"203.0.{i}.7") for i in range(50))),
        timeout=120,
    )

    # Then five were checked and refused, the other forty-five told to wait unchecked
    assert len(verifications) == 5
    assert sorted(statuses).count(401) == 5 and statuses.count(429) == 45
    async with h.db.read() as session:
        actions = (await session.execute(select(AuditLog.action))).scalars().all()
    assert actions.count("admin.login.failed") == 5
    assert actions.count("admin.login.throttled") == 45

    # and a stranger with the right password from elsewhere waits too
    assert await attempt(h.client, PASSWORD, "192.0.2.5") == 429
    # but the owner, from the office network, is not locked out for an hour
    assert await attempt(h.client, PASSWORD, "198.51.100.44") == 303
    assert len(verifications) == 6


async def test_the_owners_own_network_has_its_own_five_checks(
    harness: Harness, verifications: list[str]
) -> None:
    h = harness
    await create_admin(h.settings, EMAIL, PASSWORD)
    assert await attempt(h.client, PASSWORD, "198.51.100.20") == 303
    verifications.clear()
    # someone on the owner's network guessing concurrently is still held to five
    statuses: list[Any] = await asyncio.wait_for(
        asyncio.gather(*(attempt(h.client, f"typo {i}", f"198.51.100.{i}") for i in range(30))),
        timeout=120,
    )
    assert len(verifications) == 5
    assert statuses.count(401) == 5 and statuses.count(429) == 25

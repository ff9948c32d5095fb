"""Steps on the admin panel shared by its tests: an admin logged in, a form's CSRF
token, a buyer with a proof waiting, a broadcast composed and confirmed."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import simulate
from bot.accounts import create_admin
from storage.models import Order, PaymentProof
from tests.conftest import Harness
from tests.journeys import joined, jpeg, order_one

EMAIL = "ops@example.com"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def make_admin(h: Harness, email: str = EMAIL, password: str = PASSWORD) -> None:
    """What ``jastipin admin create-user --email … --password-stdin`` does."""
    await create_admin(h.settings, email, password)


async def csrf_of(client: TestClient, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, (path, resp.status)
    found = CSRF.search(await resp.text())
    assert found, f"no CSRF field on {path}"
    return found.group(1)


async def try_login(
    client: TestClient,
    email: str = EMAIL,
    password: str = PASSWORD,
    *,
    forwarded: str | None = None,
) -> Any:
    token = await csrf_of(client, "/admin/login")
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return await client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/admin/"},
        allow_redirects=False,
        headers=headers,
    )


async def logged_in(h: Harness) -> None:
    await make_admin(h)
    resp = await try_login(h.client)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/"


async def buyer_with_proof(h: Harness, name: str) -> tuple[str, Order, PaymentProof]:
    """A buyer who joined the demo trip, ordered in chat and sent a proof photo."""
    buyer = await joined(h, name)
    await order_one(h, buyer, "Kit Kat Matcha", "1")
    await h.send(
        simulate.media(buyer, "image", h.fake.add_media(jpeg(), "image/jpeg"), "image/jpeg")
    )
    async with h.db.read() as session:
        order = (
            await session.execute(select(Order).order_by(Order.id.desc()).limit(1))
        ).scalar_one()
        proof = (
            await session.execute(select(PaymentProof).where(PaymentProof.order_id == order.id))
        ).scalar_one()
    return buyer, order, proof


TEXT = "Stok Matcha Kit Kat datang lagi!"
CONFIRM = re.compile(r"^/admin/broadcasts/(\d+)/confirm$")


async def joined_buyers(h: Harness, n: int, *, stop: int = 0) -> list[str]:
    await h.seed_demo()
    numbers = [await joined(h, f"W{i}") for i in range(n)]
    for number in numbers[:stop]:
        await h.say(number, "STOP")
    return numbers


async def compose(h: Harness, text: str = TEXT, segment: str = "all") -> int:
    """The compose form, posted: returns the draft's id from the confirm step's URL."""
    token = await csrf_of(h.client, "/admin/broadcasts/new")
    resp = await h.client.post(
        "/admin/broadcasts/new",
        data={"trip": "DEMO", "segment": segment, "text": text, "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    found = CONFIRM.match(resp.headers["Location"])
    assert found, resp.headers["Location"]
    return int(found.group(1))


async def confirm(h: Harness, broadcast_id: int, action: str = "send") -> Any:
    path = f"/admin/broadcasts/{broadcast_id}/confirm"
    token = await csrf_of(h.client, path)
    return await h.client.post(
        path, data={"action": action, "csrf_token": token}, allow_redirects=False
    )


async def progress(h: Harness, broadcast_id: int) -> dict[str, Any]:
    resp = await h.client.get(f"/admin/broadcasts/{broadcast_id}/progress.json")
    assert resp.status == 200
    return dict(await resp.json())


def received_broadcast(h: Harness, number: str, text: str = TEXT) -> int:
    return sum(text in t for t in h.fake.texts_to(number))

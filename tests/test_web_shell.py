"""The web shell both panels stand on (``admin_web/shell/``): one CSRF rule and one
error page for the admin panel and a jastiper's own panel."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from admin_web import jastiper, shell
from admin_web.panel import auth
from admin_web.shell import errors
from admin_web.shell.door import DOOR, Door
from services.errors import NotAllowed
from storage.demo import DEMO_PHONE
from storage.models import PaymentProof
from tests.admin_pages import buyer_with_proof
from tests.admin_pages import csrf_of as admin_csrf
from tests.admin_pages import logged_in as admin_logged_in
from tests.conftest import Harness
from tests.jastiper_pages import browser
from tests.jastiper_pages import csrf_of as jastiper_csrf
from tests.jastiper_pages import logged_in as jastiper_logged_in


async def test_a_forged_post_is_refused_alike_on_both_panels(harness: Harness) -> None:
    """No token, a made-up one, or the other panel's real one: both panels refuse the
    approval with the same 403 page before anything changes."""
    h = harness
    await h.seed_demo()
    buyer, _order, proof = await buyer_with_proof(h, "Sari")
    await admin_logged_in(h)
    admin_token = await admin_csrf(h.client, "/admin/proofs")
    async with browser(h) as tina:
        await jastiper_logged_in(h, tina, DEMO_PHONE, "Tina")
        jastiper_token = await jastiper_csrf(tina, "/j-web/proofs")
        told = len(h.fake.sent_to(buyer))
        panels: list[tuple[Any, str, str]] = [
            (h.client, "/admin", jastiper_token),
            (tina, "/j-web", admin_token),
        ]
        for client, root, others_token in panels:
            for data in ({}, {"csrf_token": "forged"}, {"csrf_token": others_token}):
                resp = await client.post(f"{root}/proofs/{proof.id}/approve", data=data)
                html = await resp.text()
                assert resp.status == 403, (root, data)
                assert "Permintaan ditolak" in html and "Muat ulang halamannya" in html
                english = await client.post(f"{root}/proofs/{proof.id}/approve?lang=en", data=data)
                assert english.status == 403 and "Request refused" in await english.text()
        await h.settle()
    async with h.db.read() as session:
        still = await session.get(PaymentProof, proof.id)
        assert still is not None and still.status == "submitted"
    assert len(h.fake.sent_to(buyer)) == told


async def test_a_services_refusal_is_a_page_in_the_readers_language_on_both_panels(
    harness: Harness,
) -> None:
    """A proof approved twice: the service refuses the second time, and whichever panel
    asked shows that refusal in words, in Indonesian or English — no handler of either
    catches it."""
    h = harness
    await h.seed_demo()
    _buyer, order, proof = await buyer_with_proof(h, "Sari")
    await admin_logged_in(h)
    async with browser(h) as tina:
        await jastiper_logged_in(h, tina, DEMO_PHONE, "Tina")
        token = await jastiper_csrf(tina, "/j-web/proofs")
        done = await tina.post(
            f"/j-web/proofs/{proof.id}/approve", data={"csrf_token": token}, allow_redirects=False
        )
        assert done.status == 303
        again = await tina.post(f"/j-web/proofs/{proof.id}/approve", data={"csrf_token": token})
        assert again.status == 409
        assert f"Bukti untuk {order.code} sudah diproses sebelumnya." in await again.text()
        english = await tina.post(
            f"/j-web/proofs/{proof.id}/approve?lang=en", data={"csrf_token": token}
        )
        assert english.status == 409
        assert f"The proof for {order.code} was already handled." in await english.text()
    admin_token = await admin_csrf(h.client, "/admin/proofs")
    for lang, words in (
        ("id", f"Bukti untuk {order.code} sudah diproses sebelumnya."),
        ("en", f"The proof for {order.code} was already handled."),
    ):
        resp = await h.client.post(
            f"/admin/proofs/{proof.id}/approve?lang={lang}", data={"csrf_token": admin_token}
        )
        assert resp.status == 409 and words in await resp.text(), lang


@pytest.mark.parametrize(
    ("door", "back"),
    [(auth.DOOR, ("Kembali ke dasbor", "Back to the dashboard")), (jastiper.DOOR, None)],
    ids=["admin", "jastiper"],
)
async def test_a_domain_error_nobody_catches_is_the_panels_error_page(
    door: Door[object], back: tuple[str, str] | None
) -> None:
    """The shell's error middleware alone (no database): a ``DomainError`` raised in a
    handler is a 409 page in the panel's look, in Indonesian by default and in English
    when the reader asks; a handler that named its form page gets the refusal there."""
    app = web.Application(middlewares=[errors.pages])
    app[DOOR] = door
    shell.templates(app)

    async def refused(request: web.Request) -> web.StreamResponse:
        raise NotAllowed("Pesanan {code} tidak sedang menunggu pembayaran.", code="JP-X1")

    async def form(request: web.Request) -> web.StreamResponse:
        async def again(error: str) -> web.StreamResponse:
            return web.Response(text=f"form again: {error}", status=409)

        errors.refusal_shows(request, again)
        raise NotAllowed("Pesanan {code} tidak sedang menunggu pembayaran.", code="JP-X2")

    app.router.add_get("/refused", refused)
    app.router.add_get("/form", form)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/refused")
        html = await resp.text()
        assert resp.status == 409 and "Tidak bisa dilakukan" in html
        assert "Pesanan JP-X1 tidak sedang menunggu pembayaran." in html
        assert "admin.css" in html
        resp = await client.get("/refused", headers={"Accept-Language": "en-US,en;q=0.9"})
        html = await resp.text()
        assert resp.status == 409 and "This cannot be done" in html
        assert "Order JP-X1 is not awaiting payment." in html
        if back is not None:
            assert back[1] in html
        resp = await client.get("/refused?lang=id")
        html = await resp.text()
        assert "Pesanan JP-X1 tidak sedang menunggu pembayaran." in html
        if back is not None:
            assert back[0] in html
        assert resp.cookies["lang"]["path"] == door.root.rstrip("/")
        resp = await client.get("/form?lang=en")
        assert resp.status == 409
        assert await resp.text() == "form again: Order JP-X2 is not awaiting payment."

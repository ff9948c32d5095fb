"""The admin panel over HTTP, on both databases: the session gate, login and its
throttle, CSRF, session timeouts, disabled admins, signed proof links, and the critical
path — an order placed in chat, found from /admin/, its proof approved, the buyer told
exactly as when the jastiper approves in chat."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from admin_web.panel import auth
from admin_web.shell import security
from bot.accounts import create_admin, disable_admin
from bot.app import create_app
from bot.logs import redact
from locales import JAKARTA, format_rupiah
from services.accounts import scrypt_hash
from storage.demo import DEMO_PHONE
from storage.models import (
    AdminLoginThrottle,
    AdminSession,
    AdminUser,
    AuditLog,
    Order,
    PaymentProof,
    utcnow,
)
from tests.admin_pages import (
    CSRF,
    EMAIL,
    PASSWORD,
    buyer_with_proof,
    csrf_of,
    logged_in,
    make_admin,
    try_login,
)
from tests.conftest import Harness, make_settings
from tests.fakes.graph_api import FakeGraphAPI
from tests.journeys import joined, order_one


def cli_create_user(h: Harness, tmp_path: Path, email: str, password: str) -> None:
    """The real command, in its own process, on the test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WA_", "REDIS_"))}
    env.update({"JASTIPIN_DATA_DIR": str(tmp_path), "DATABASE_URL": h.settings.database_url})
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "admin", "create-user", "--email", email,
         "--password-stdin"],
        input=password + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"admin user {email} ready" in done.stdout


def session_cookie(client: TestClient) -> str:
    for cookie in client.session.cookie_jar:
        if cookie.key == auth.SESSION_COOKIE:
            return cookie.value
    raise AssertionError("no session cookie")


async def audit_actions(h: Harness) -> list[tuple[str, int | None, dict[str, Any]]]:
    async with h.db.read() as session:
        rows = (await session.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
    return [(r.action, r.actor_admin_id, r.detail) for r in rows]


# --- the gate -------------------------------------------------------------------------------


PAGES = [
    "/admin/",
    "/admin/orders",
    "/admin/orders/JP-AAAA",
    "/admin/proofs",
    "/admin/proofs/1/image?exp=1&sig=x",
    "/admin/trips",
    "/admin/trips/DEMO",
    "/admin/jastipers",
    "/admin/audit?actor=web",
    "/admin/broadcasts",
    "/admin/broadcasts/new",
    "/admin/broadcasts/1",
    "/admin/broadcasts/1/progress.json",
    "/admin/broadcasts/1/confirm",
    "/admin/queue",
    "/admin/anything",
]


async def test_no_admin_page_answers_without_a_session(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    for path in PAGES:
        resp = await h.client.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert resp.headers["Location"].startswith("/admin/login?next=/admin/"), path
        assert "sig=" not in resp.headers["Location"]
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
    for path in (
        "/admin/proofs/1/approve",
        "/admin/orders/JP-AAAA/move",
        "/admin/logout",
        "/admin/trips/DEMO/status",
        "/admin/jastipers/1/suspend",
        "/admin/broadcasts/new",
        "/admin/broadcasts/1/confirm",
        "/admin/queue/outbox/retry",
        "/admin/queue/inbound/1/requeue",
    ):
        resp = await h.client.post(path, data={"csrf_token": "x"}, allow_redirects=False)
        assert resp.status == 401, path
    # the bare /admin goes to the panel, which sends a stranger to the login form
    resp = await h.client.get("/admin")
    assert resp.status == 200 and 'action="/admin/login"' in await resp.text()


async def test_login_page_headers_and_form_work_without_javascript(harness: Harness) -> None:
    resp = await harness.client.get("/admin/login")
    body = await resp.text()
    assert resp.status == 200
    assert "<script" not in body and "style=" not in body and "<style" not in body
    assert '<form method="post" action="/admin/login">' in body
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    css = await harness.client.get("/admin/static/admin.css")
    assert css.status == 200 and css.content_type == "text/css"


async def test_login_logout_and_the_session_is_gone(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await make_admin(h)
    resp = await try_login(h.client)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/"
    set_cookie = resp.headers.getall("Set-Cookie")
    (cookie,) = [c for c in set_cookie if c.startswith(f"{auth.SESSION_COOKIE}=")]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    token = session_cookie(h.client)
    async with h.db.read() as session:
        stored = (await session.execute(select(AdminSession.token_hash))).scalars().all()
    assert token not in stored and len(stored) == 1  # only a hash of it is kept

    page = await h.client.get("/admin/")
    assert page.status == 200 and EMAIL in await page.text()

    logout_token = await csrf_of(h.client, "/admin/")
    resp = await h.client.post(
        "/admin/logout", data={"csrf_token": logout_token}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/admin/login"
    after = await h.client.get("/admin/", allow_redirects=False)
    assert after.status == 303
    # the old cookie, replayed, opens nothing: the session was revoked on the server
    h.client.session.cookie_jar.update_cookies({auth.SESSION_COOKIE: token})
    replay = await h.client.get("/admin/", allow_redirects=False)
    assert replay.status == 303
    actions = [a for a, _, _ in await audit_actions(h)]
    assert "admin.login" in actions and "admin.logout" in actions


async def test_wrong_password_and_unknown_account_get_the_same_answer(harness: Harness) -> None:
    h = harness
    await make_admin(h)
    wrong = await try_login(h.client, EMAIL, "not the password")
    wrong_body = await wrong.text()
    unknown = await try_login(h.client, "nobody@example.com", "not the password")
    unknown_body = await unknown.text()
    assert wrong.status == unknown.status == 401
    assert "Email atau kata sandi salah." in wrong_body
    # the same page, but for the email typed back into the form
    assert wrong_body.replace(EMAIL, "X") == unknown_body.replace("nobody@example.com", "X")
    assert "Set-Cookie" not in wrong.headers and "Set-Cookie" not in unknown.headers
    failed = [(a, d) for a, _, d in await audit_actions(h) if a == "admin.login.failed"]
    assert len(failed) == 2
    for _action, detail in failed:
        assert detail["network"] == "127.0.0.0/24"
        assert "not the password" not in str(detail)


async def test_the_login_is_throttled_per_account_and_per_address(harness: Harness) -> None:
    h = harness
    await make_admin(h)
    await make_admin(h, "second@example.com")
    for _ in range(5):
        resp = await try_login(h.client, EMAIL, "wrong guess", forwarded="203.0.113.7")
        assert resp.status == 401
    # the sixth try waits, even with the right password, and from another address too
    blocked = await try_login(h.client, forwarded="198.51.100.9")
    assert blocked.status == 429 and "Coba lagi dalam 1 menit" in await blocked.text()
    # an unknown account is throttled the same way (the answer tells nothing)
    for _ in range(5):
        await try_login(h.client, "ghost@example.com", "x", forwarded="192.0.2.1")
    ghost = await try_login(h.client, "ghost@example.com", "x", forwarded="192.0.2.99")
    assert ghost.status == 429
    # the address that failed five times (on two accounts) waits for any account
    other = await try_login(h.client, "second@example.com", PASSWORD, forwarded="192.0.2.1")
    assert other.status == 429
    fine = await try_login(h.client, "second@example.com", PASSWORD, forwarded="192.0.2.50")
    assert fine.status == 303

    # the wait passes (moved in the database, not slept); a further failure doubles it
    async with h.db.transaction() as session:
        await session.execute(
            update(AdminLoginThrottle).values(locked_until=utcnow() - dt.timedelta(seconds=1))
        )
    again = await try_login(h.client, EMAIL, "still wrong", forwarded="198.51.100.77")
    assert again.status == 401
    async with h.db.read() as session:
        rows = (await session.execute(select(AdminLoginThrottle))).scalars().all()
    (account,) = [r for r in rows if r.failures == 6]
    assert account.locked_until is not None
    assert account.locked_until - account.last_failure_at == dt.timedelta(minutes=2)
    assert all(not r.key.startswith("addr:198") and "203.0" not in r.key for r in rows)
    # after the wait, the right password works and the account starts from zero
    async with h.db.transaction() as session:
        await session.execute(
            update(AdminLoginThrottle).values(locked_until=utcnow() - dt.timedelta(seconds=1))
        )
    ok = await try_login(h.client, forwarded="198.51.100.200")
    assert ok.status == 303
    actions = [a for a, _, _ in await audit_actions(h)]
    assert actions.count("admin.login.throttled") == 3


async def test_a_request_without_its_csrf_token_is_refused_and_changes_nothing(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    buyer, order, proof = await buyer_with_proof(h, "Sari")
    await logged_in(h)
    told = len(h.fake.sent_to(buyer))
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": ""}):
        resp = await h.client.post(f"/admin/proofs/{proof.id}/approve", data=data)
        assert resp.status == 403
        assert "Muat ulang halamannya" in await resp.text()
    resp = await h.client.post(
        f"/admin/orders/{order.code}/move", data={"to": "paid"}, allow_redirects=False
    )
    assert resp.status == 403
    logout = await h.client.post("/admin/logout", data={}, allow_redirects=False)
    assert logout.status == 403
    await h.settle()
    async with h.db.read() as session:
        assert (await session.get(PaymentProof, proof.id)).status == "submitted"  # type: ignore[union-attr]
        assert (await session.get(Order, order.id)).status == "proof_submitted"  # type: ignore[union-attr]
    assert len(h.fake.sent_to(buyer)) == told
    assert (await h.client.get("/admin/", allow_redirects=False)).status == 200  # still in
    # the login form needs its token too
    h.client.session.cookie_jar.clear()
    bare = await h.client.post("/admin/login", data={"email": EMAIL, "password": PASSWORD})
    assert bare.status == 403


async def test_sessions_expire_when_idle_and_after_twelve_hours(harness: Harness) -> None:
    h = harness
    await logged_in(h)
    now = utcnow()
    async with h.db.transaction() as session:
        await session.execute(
            update(AdminSession).values(last_seen_at=now - dt.timedelta(minutes=29))
        )
    assert (await h.client.get("/admin/", allow_redirects=False)).status == 200
    async with h.db.read() as session:
        seen = (await session.execute(select(AdminSession.last_seen_at))).scalar_one()
    assert now - seen < dt.timedelta(minutes=1)  # using it kept it alive

    async with h.db.transaction() as session:
        await session.execute(
            update(AdminSession).values(last_seen_at=now - dt.timedelta(minutes=31))
        )
    idle = await h.client.get("/admin/", allow_redirects=False)
    assert idle.status == 303 and idle.headers["Location"].startswith("/admin/login")

    h.client.session.cookie_jar.clear()
    await try_login(h.client)
    async with h.db.transaction() as session:
        await session.execute(
            update(AdminSession)
            .where(AdminSession.revoked_at.is_(None))
            .values(
                created_at=now - dt.timedelta(hours=12, minutes=1),
                last_seen_at=now - dt.timedelta(minutes=1),
            )
        )
    old = await h.client.get("/admin/", allow_redirects=False)
    assert old.status == 303
    async with h.db.read() as session:
        revoked = (await session.execute(select(AdminSession.revoked_at))).scalars().all()
    assert all(r is not None for r in revoked)


async def test_a_disabled_admin_loses_the_session_and_cannot_log_in(harness: Harness) -> None:
    h = harness
    await logged_in(h)
    assert (await h.client.get("/admin/", allow_redirects=False)).status == 200
    assert await disable_admin(h.settings, EMAIL)
    assert (await h.client.get("/admin/", allow_redirects=False)).status == 303
    async with h.db.read() as session:
        assert (await session.execute(select(AdminSession.revoked_at))).scalar_one() is not None
    again = await try_login(h.client)
    assert again.status == 401 and "Email atau kata sandi salah." in await again.text()
    # create-user reactivates it with a new password
    await make_admin(h, EMAIL, "a brand new passphrase")
    assert (await try_login(h.client, EMAIL, "a brand new passphrase")).status == 303


async def test_a_scrypt_hash_is_replaced_by_argon2id_at_login(harness: Harness) -> None:
    h = harness
    async with h.db.transaction() as session:
        session.add(AdminUser(email=EMAIL, password_hash=scrypt_hash(PASSWORD)))
    assert (await try_login(h.client, EMAIL, "wrong one")).status == 401
    async with h.db.read() as session:
        stored = (await session.execute(select(AdminUser.password_hash))).scalar_one()
    assert stored.startswith("scrypt$")  # a failed login changes nothing
    assert (await try_login(h.client)).status == 303
    async with h.db.read() as session:
        stored = (await session.execute(select(AdminUser.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$")
    h.client.session.cookie_jar.clear()
    assert (await try_login(h.client)).status == 303  # the new hash verifies
    assert "admin.password.rehashed" in [a for a, _, _ in await audit_actions(h)]


# --- the critical path --------------------------------------------------------------------


async def test_an_order_from_chat_is_approved_in_the_panel_as_in_chat(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    await h.seed_demo()

    # the reference: a buyer whose proof the jastiper approves in chat
    chat_buyer, chat_order, _proof = await buyer_with_proof(h, "Budi")
    approve_id = h.fake.sent_to(DEMO_PHONE)[-1]["interactive"]["action"]["buttons"][0]
    await h.tap(DEMO_PHONE, approve_id["reply"]["id"], "Setujui", name="Tina")
    from_chat = h.fake.texts_to(chat_buyer)[-1]

    # a buyer orders and sends the proof in chat; an admin made with the CLI logs in
    buyer, order, proof = await buyer_with_proof(h, "Sari")
    cli_create_user(h, tmp_path / "cli", EMAIL, PASSWORD)
    assert (await try_login(h.client)).status == 303
    dashboard = await (await h.client.get("/admin/")).text()
    link = f'href="/admin/orders/{order.code}"'
    assert link in dashboard  # one click from /admin/
    assert "Bukti transfer menunggu dicek" in dashboard and "<svg" in dashboard

    page = await h.client.get(f"/admin/orders/{order.code}")
    text = await page.text()
    assert page.status == 200
    assert "Kit Kat Matcha" in text and "Sari" in text
    assert "Jl. Melati No. 5" in text  # the address, decrypted for the admin
    image = re.search(r'src="(/admin/proofs/\d+/image\?exp=\d+&amp;sig=[0-9a-f]+)"', text)
    assert image, "the proof is shown through a signed link"
    shown = await h.client.get(image.group(1).replace("&amp;", "&"))
    assert shown.status == 200 and (await shown.read())[:3] == b"\xff\xd8\xff"
    assert shown.headers["Cache-Control"] == "no-store"

    token = CSRF.search(text).group(1)  # type: ignore[union-attr]
    resp = await h.client.post(
        f"/admin/proofs/{proof.id}/approve",
        data={"csrf_token": token, "back": f"/admin/orders/{order.code}"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == f"/admin/orders/{order.code}?done=approved"
    await h.settle()
    from_panel = h.fake.texts_to(buyer)[-1]
    assert from_panel == from_chat.replace(chat_order.code, order.code)
    assert "sudah dikonfirmasi" in from_panel
    async with h.db.read() as session:
        assert (await session.get(Order, order.id)).status == "paid"  # type: ignore[union-attr]
    approvals = [(a, admin) for a, admin, d in await audit_actions(h) if a == "proof.approve"]
    assert approvals[-1][1] is not None  # the admin, by id, in the audit log
    history = await (await h.client.get(resp.headers["Location"])).text()
    assert "Bukti transfer disetujui" in history and "Bukti disetujui" in history

    # the dashboard counts what both paid orders transferred (unique digits in) as money in
    async with h.db.read() as session:
        paid = (await session.execute(select(Order.total + Order.unique_cents))).scalars().all()
    figures = await (await h.client.get("/admin/")).text()
    revenue = re.search(r'"num">([^<]+)</span><span>Uang masuk \(refund dikurangi\)', figures)
    assert revenue and revenue.group(1) == format_rupiah(sum(paid))
    assert '"num">Rp 0</span><span>Belum dibayar' in figures
    wib_today = utcnow().astimezone(ZoneInfo(JAKARTA)).date()  # the chart's days are WIB
    assert f"<title>{wib_today.isoformat()}: 2 pesanan</title>" in figures

    # a second approval (the jastiper's button, or a double submit) changes nothing
    again = await h.client.post(f"/admin/proofs/{proof.id}/approve", data={"csrf_token": token})
    assert again.status == 409 and "sudah diproses" in await again.text()

    # log out: /admin/ shows nothing
    await h.client.post("/admin/logout", data={"csrf_token": token})
    after = await h.client.get("/admin/")
    body = await after.text()
    assert 'action="/admin/login"' in body and order.code not in body and "Sari" not in body
    gone = await h.client.get(image.group(1).replace("&amp;", "&"), allow_redirects=False)
    assert gone.status == 303


async def test_reject_with_a_reason_and_move_an_order_tell_the_buyer(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer, order, proof = await buyer_with_proof(h, "Sari")
    await logged_in(h)
    token = await csrf_of(h.client, "/admin/proofs")
    missing = await h.client.post(f"/admin/proofs/{proof.id}/reject", data={"csrf_token": token})
    assert missing.status == 409 and "alasan penolakan" in await missing.text()
    resp = await h.client.post(
        f"/admin/proofs/{proof.id}/reject",
        data={"csrf_token": token, "reason": "1"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/admin/proofs?done=rejected"
    await h.settle()
    told = h.fake.texts_to(buyer)[-1]
    assert f"Bukti transfer untuk {order.code} ditolak jastiper: Nominal tidak sesuai." in told

    # the order awaits payment again: only "paid" is on offer, and "shipped" is refused
    page = await (await h.client.get(f"/admin/orders/{order.code}")).text()
    assert 'value="paid"' in page and 'value="shipped"' not in page
    refused = await h.client.post(
        f"/admin/orders/{order.code}/move",
        data={"csrf_token": token, "to": "shipped", "tracking": "JNE1"},
    )
    assert refused.status == 409 and "belum bisa diubah" in await refused.text()
    for to, extra in (("paid", {}), ("shipped", {"tracking": "JNE123"})):
        if to == "shipped":  # not without a tracking number: the same words as /ship
            for blank in ({"tracking": "  "}, {}):
                refused = await h.client.post(
                    f"/admin/orders/{order.code}/move",
                    data={"csrf_token": token, "to": to, **blank},
                )
                assert refused.status == 409
                assert "Isi nomor resi untuk status Dikirim" in await refused.text()
        resp = await h.client.post(
            f"/admin/orders/{order.code}/move",
            data={"csrf_token": token, "to": to, **extra},
            allow_redirects=False,
        )
        assert resp.status == 303, await resp.text()
    await h.settle()
    assert h.fake.texts_to(buyer)[-1] == (
        f"Pesanan {order.code} sudah dikirim! Nomor resi: JNE123 📦"
    )


async def test_orders_are_found_by_code_name_trip_and_status(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    _sari, sari_order, _p = await buyer_with_proof(h, "Sari Wulan")
    budi = await joined(h, "Budi Santoso")
    await order_one(h, budi, "Kit Kat Matcha", "1")
    async with h.db.read() as session:
        budi_order = (
            await session.execute(select(Order).order_by(Order.id.desc()).limit(1))
        ).scalar_one()
    await logged_in(h)

    async def codes(query: str) -> set[str]:
        text = await (await h.client.get(f"/admin/orders?{query}")).text()
        return set(re.findall(r'href="/admin/orders/([A-Z0-9-]+)"', text))

    both = {sari_order.code, budi_order.code}
    assert await codes("") == both
    assert await codes("q=budi") == {budi_order.code}  # sealed names, searched in Python
    assert await codes("q=WULAN") == {sari_order.code}
    assert await codes(f"q={sari_order.code.lower()}") == {sari_order.code}
    assert await codes("status=proof_submitted") == {sari_order.code}
    assert await codes("status=awaiting_payment&trip=demo") == {budi_order.code}
    assert await codes("trip=NOPE") == set()
    today = utcnow().date()
    assert await codes(f"from={today - dt.timedelta(days=1)}") == both
    assert await codes(f"to={today - dt.timedelta(days=2)}") == set()
    odd = await (await h.client.get("/admin/orders?from=31-12-2026")).text()
    assert "filter tanggal diabaikan" in odd


# --- signed links, language, HTTPS cookies ---------------------------------------------------


async def test_the_proof_link_expires_and_a_tampered_one_is_refused(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    _buyer, _order, proof = await buyer_with_proof(h, "Sari")
    await logged_in(h)
    page = await (await h.client.get("/admin/proofs")).text()
    found = re.search(r'src="/admin/proofs/(\d+)/image\?exp=(\d+)&amp;sig=([0-9a-f]+)"', page)
    assert found and int(found.group(1)) == proof.id
    exp, sig = int(found.group(2)), found.group(3)
    assert exp - utcnow().timestamp() <= 15 * 60
    good = f"/admin/proofs/{proof.id}/image?exp={exp}&sig={sig}"
    assert (await h.client.get(good)).status == 200

    key = security.signing_key(h.settings)

    def signed(what: str, expires: int) -> str:
        import hashlib
        import hmac

        return hmac.new(key, f"link:{what}:{expires}".encode(), hashlib.sha256).hexdigest()

    past = int(utcnow().timestamp()) - 1
    expired = f"/admin/proofs/{proof.id}/image?exp={past}&sig={signed(f'proof:{proof.id}', past)}"
    far = int(utcnow().timestamp()) + 3600
    too_long = f"/admin/proofs/{proof.id}/image?exp={far}&sig={signed(f'proof:{proof.id}', far)}"
    for bad in (
        expired,
        too_long,
        f"/admin/proofs/{proof.id}/image?exp={exp}&sig={sig[:-1]}{'1' if sig[-1] == '0' else '0'}",
        f"/admin/proofs/{proof.id}/image?exp={exp + 1}&sig={sig}",
        f"/admin/proofs/{proof.id + 1}/image?exp={exp}&sig={sig}",
        f"/admin/proofs/{proof.id}/image",
    ):
        assert (await h.client.get(bad)).status == 403, bad
    # a log line carrying the link does not carry its signature
    assert sig not in redact(f"GET {good} 200") and "exp=" in redact(f"GET {good} 200")


async def test_the_panel_speaks_english_when_asked(harness: Harness) -> None:
    h = harness
    english = await h.client.get("/admin/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Log in to the admin panel" in await english.text()
    indonesian = await h.client.get("/admin/login")
    assert "Masuk ke panel admin" in await indonesian.text()
    chosen = await h.client.get("/admin/login?lang=en")
    assert "Log in to the admin panel" in await chosen.text()
    remembered = await h.client.get("/admin/login")  # the lang cookie keeps it
    assert "Log in to the admin panel" in await remembered.text()
    await make_admin(h)
    assert (await try_login(h.client, EMAIL, "nope")).status == 401
    wrong = await try_login(h.client, EMAIL, "nope")
    assert "Wrong email or password." in await wrong.text()


@pytest.fixture
async def https_client(
    database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> AsyncIterator[tuple[TestClient, Any]]:
    settings = make_settings(
        database_url,
        tmp_path,
        wa_api_base=fake_graph.base_url,
        public_base_url="https://jastip.example",
    )
    app = create_app(settings, run_background=False)
    async with TestClient(TestServer(app)) as client:
        yield client, settings


async def test_over_https_the_cookie_is_host_prefixed_and_secure(
    https_client: tuple[TestClient, Any],
) -> None:
    client, settings = https_client
    await create_admin(settings, EMAIL, PASSWORD)
    form = await client.get("/admin/login")
    login_cookie = form.headers["Set-Cookie"]
    assert login_cookie.startswith("__Host-jastipin_login=") and "Secure" in login_cookie
    value = login_cookie.split(";")[0].split("=", 1)[1]
    token = CSRF.search(await form.text()).group(1)  # type: ignore[union-attr]
    resp = await client.post(
        "/admin/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": token},
        headers={"Cookie": f"__Host-jastipin_login={value}"},
        allow_redirects=False,
    )
    assert resp.status == 303
    (cookie,) = [
        c for c in resp.headers.getall("Set-Cookie") if c.startswith("__Host-jastipin_admin=")
    ]
    for part in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert part in cookie
    session_id = cookie.split(";")[0].split("=", 1)[1]
    page = await client.get(
        "/admin/", headers={"Cookie": f"__Host-jastipin_admin={session_id}"}, allow_redirects=False
    )
    assert page.status == 200
    # the unprefixed name (which a plain-HTTP page could set) opens nothing here
    plain = await client.get(
        "/admin/", headers={"Cookie": f"jastipin_admin={session_id}"}, allow_redirects=False
    )
    assert plain.status == 303

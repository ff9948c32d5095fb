"""Bad input gets a clear 4xx or a friendly answer, never a 500, a dropped connection or
a request it should not cause: deeply nested webhook JSON, control characters in the
login's ``next``, a media id that is a path, an upload declared as HTML, an older /web
link, and strangers who write once and never come back (purged, on both databases)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot import jobs, simulate
from bot.app import create_app
from bot.devchat import graph
from bot.keys import MEDIA
from bot.settings import Settings
from services import jastiper_web
from storage.demo import DEMO_PHONE
from storage.models import Jastiper, User, utcnow
from storage.repo import users as users_repo
from tests.conftest import Harness, phone
from tests.journeys import joined, order_one

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- the webhook's JSON ----------------------------------------------------------------------


async def test_a_signed_body_nested_thousands_deep_is_a_400_and_the_bot_goes_on(
    harness: Harness,
) -> None:
    h = harness
    for deep in (b"[" * 50_000 + b"]" * 50_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000):
        resp = await h.post(deep)
        assert resp.status == 400
        assert "Malformed update" in await resp.text()
    # a string full of brackets nests nothing
    shallow = simulate.text(phone(), "[" * 500 + "{" * 500)
    assert (await h.post(shallow)).status == 200
    # and the next real message is answered
    await h.seed_demo()
    buyer = phone()
    assert any("Jastip Tokyo Demo" in t for t in await h.say(buyer, "JOIN DEMO"))


async def test_a_body_over_the_size_limit_is_a_413(harness: Harness) -> None:
    resp = await harness.post(json.dumps({"pad": "x" * (4 * 1024 * 1024)}).encode())
    assert resp.status == 413


# --- the login's next ------------------------------------------------------------------------


async def test_control_characters_in_next_fall_back_to_the_dashboard(harness: Harness) -> None:
    from bot.accounts import create_admin

    h = harness
    await create_admin(h.settings, "ops@example.com", "correct horse battery")
    form = await h.client.get("/admin/login", params={"next": "/admin/orders\r\nX-Evil: 1"})
    assert form.status == 200
    assert 'value="/admin/"' in await form.text()
    token = CSRF.search(await form.text())
    assert token is not None
    resp = await h.client.post(
        "/admin/login",
        data={
            "email": "ops@example.com",
            "password": "correct horse battery",
            "csrf_token": token.group(1),
            "next": "/admin/orders\r\nSet-Cookie: evil=1",
        },
        allow_redirects=False,
    )
    # a redirect the browser can follow, not a connection dropped after the login
    assert resp.status == 303 and resp.headers["Location"] == "/admin/"
    assert "evil" not in resp.headers.get("Set-Cookie", "")


# --- media ids -------------------------------------------------------------------------------


async def test_a_media_id_that_is_a_path_never_reaches_the_graph_api(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h, "Sari")
    await order_one(h, buyer, "Kit Kat Matcha", "1")
    for bad in ("../../me", "123/../../me", "me", "12345?fields=access_token"):
        sent = await h.send(simulate.media(buyer, "image", bad, "image/jpeg"))
        # the buyer hears that the photo could not be fetched, in their language
        assert any("gagal kami ambil" in json.dumps(m) for m in sent), bad
    assert h.fake.media_lookups == [] and h.fake.unhandled == []


# --- uploads in the simulator ----------------------------------------------------------------


async def test_the_simulator_serves_an_upload_declared_as_html_as_a_download(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        media_dir=tmp_path / "media",
        pii_key=b"k" * 32,
    )
    assert settings.dev_mode
    app = create_app(settings, run_background=False)
    async with TestClient(TestServer(app)) as client:
        page = b"<html><script>alert(document.cookie)</script></html>"
        media_id = await graph.store_upload(app[MEDIA], page, "text/html", "x.html")
        photo = await graph.store_upload(app[MEDIA], b"\xff\xd8\xff\xe0jpeg", "image/jpeg")
        for path in (f"/dev/chat/media/in/{media_id}", f"/dev/graph/files/{media_id}"):
            resp = await client.get(path)
            assert resp.status == 200, path
            assert resp.content_type == "application/octet-stream"
            assert resp.headers["Content-Disposition"] == "attachment"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
        resp = await client.get(f"/dev/chat/media/in/{photo}")
        assert resp.content_type == "image/jpeg"  # a picture keeps its type (the page shows it)
        assert resp.headers["Content-Disposition"] == "attachment"


# --- /web links ------------------------------------------------------------------------------


async def test_a_new_web_link_revokes_the_older_unused_ones(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    now = utcnow()
    async with h.db.transaction() as session:
        user = await users_repo.upsert_user(session, h.cipher, bsuid=None, wa_id=DEMO_PHONE)
        tina = (
            await session.execute(select(Jastiper).where(Jastiper.user_id == user.id))
        ).scalar_one()
        first = await jastiper_web.issue_link(session, tina, now)
        second = await jastiper_web.issue_link(session, tina, now)
        third = await jastiper_web.issue_link(session, tina, now + dt.timedelta(seconds=5))
    later = now + dt.timedelta(seconds=10)
    async with h.db.transaction() as session:
        assert not await jastiper_web.link_usable(session, first, later)
        assert not await jastiper_web.link_usable(session, second, later)
        assert await jastiper_web.open_link(session, first, later) is None
        assert await jastiper_web.open_link(session, third, later) is not None


# --- strangers -------------------------------------------------------------------------------


async def test_strangers_who_never_join_are_purged_after_the_retention(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    strangers = [phone() for _ in range(12)]
    for number in strangers:
        await h.say(number, "halo, ini siapa?")
    buyer = await joined(h, "Sari")
    newcomer = phone()
    # Given everyone but the newcomer wrote more than INBOX_RETENTION_DAYS ago
    retention = h.settings.inbox_retention_days
    async with h.db.transaction() as session:
        await session.execute(
            update(User).values(last_inbound_at=utcnow() - dt.timedelta(days=retention + 1))
        )
    await h.say(newcomer, "halo")
    async with h.db.read() as session:
        before = len((await session.execute(select(User.id))).all())

    # When the scheduler's pass runs
    done = await jobs.run_periodic(h.db, None, h.settings)

    # Then the strangers are gone, the buyer, the jastiper and the newcomer stay
    assert done["strangers_purged"] == len(strangers)
    async with h.db.read() as session:
        left = len((await session.execute(select(User.id))).all())
        kept = {
            users_repo.send_address(u, h.cipher)
            for u in (await session.execute(select(User))).scalars().all()
        }
    assert left == before - len(strangers)
    assert {buyer, newcomer, DEMO_PHONE} <= kept
    assert not kept & set(strangers)
    assert (await jobs.run_periodic(h.db, None, h.settings))["strangers_purged"] == 0
    # a stranger who comes back is simply new again
    assert await h.say(strangers[0], "halo")

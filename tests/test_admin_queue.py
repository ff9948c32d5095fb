"""The queue page over HTTP, on both databases: depths, dead letters with their error in
words, retry one and all (the send then goes out), an inbound unit requeued and then
processed, Dramatiq's queues, ``ADMIN_ALLOWED_IPS``, and CSRF-less forms changing
nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot import simulate
from bot.app import create_app
from bot.inbox import split_update
from bot.keys import ACTORS, OUTBOX, PROCESSOR
from bot.settings import ConfigError, Settings
from storage.models import InboundUpdate, OutboxMessage
from storage.repo import inbox as inbox_repo
from tests.admin_pages import (
    compose,
    confirm,
    csrf_of,
    joined_buyers,
    logged_in,
    progress,
    received_broadcast,
)
from tests.conftest import Harness, make_settings
from tests.fakes.graph_api import FakeGraphAPI
from tests.journeys import run_actor

UNDELIVERABLE = {"code": 131026, "http_status": 400, "title": "Message undeliverable"}


async def _failed_broadcast(h: Harness, buyers: int, failing: int) -> tuple[int, list[str]]:
    """A broadcast from the panel whose sends to the first ``failing`` buyers failed for
    good (131026)."""
    numbers = await joined_buyers(h, buyers)
    await logged_in(h)
    broadcast_id = await compose(h)
    await confirm(h, broadcast_id)
    await run_actor(h)
    for number in numbers[:failing]:
        h.fake.fail_next(to=number, **UNDELIVERABLE)  # type: ignore[arg-type]
    await h.app[OUTBOX].flush()
    return broadcast_id, numbers


async def _failed_rows(h: Harness) -> list[int]:
    async with h.db.read() as session:
        stmt = select(OutboxMessage.id).where(OutboxMessage.status == "failed")
        return list((await session.execute(stmt)).scalars())


async def post(h: Harness, path: str, *, token: bool = True) -> int:
    data = {"csrf_token": await csrf_of(h.client, "/admin/queue")} if token else {}
    resp = await h.client.post(path, data=data, allow_redirects=False)
    return resp.status


async def test_a_dead_send_is_shown_in_words_and_retrying_it_sends_it(harness: Harness) -> None:
    h = harness
    broadcast_id, numbers = await _failed_broadcast(h, buyers=2, failing=1)
    assert received_broadcast(h, numbers[0]) == 0
    (row_id,) = await _failed_rows(h)
    page = await (await h.client.get("/admin/queue")).text()
    assert 'data-outbox="failed">1<' in page
    assert "nomor tidak bisa menerima pesan WhatsApp" in page  # 131026 in words
    assert f'action="/admin/queue/outbox/{row_id}/retry"' in page
    assert 'data-queue="broadcasts">0<' in page  # the Dramatiq queue, drained

    assert await post(h, f"/admin/queue/outbox/{row_id}/retry") == 303
    after = await (await h.client.get("/admin/queue?done=retried&n=1")).text()
    assert "1 pesan gagal masuk antrean kirim lagi" in after
    await h.app[OUTBOX].flush()
    assert [received_broadcast(h, n) for n in numbers] == [1, 1]  # the retried send went, once
    assert await _failed_rows(h) == []
    report = await progress(h, broadcast_id)
    assert (report["sent"], report["failed"]) == (2, 0)
    # retrying a row that is no longer failed changes nothing
    assert await post(h, f"/admin/queue/outbox/{row_id}/retry") == 303
    await h.app[OUTBOX].flush()
    assert [received_broadcast(h, n) for n in numbers] == [1, 1]


async def test_retry_all_sends_every_dead_send(harness: Harness) -> None:
    h = harness
    _broadcast_id, numbers = await _failed_broadcast(h, buyers=3, failing=2)
    assert len(await _failed_rows(h)) == 2
    assert await post(h, "/admin/queue/outbox/retry") == 303
    async with h.db.read() as session:
        attempts = (
            await session.execute(
                select(OutboxMessage.attempts).where(OutboxMessage.broadcast_id.is_not(None))
            )
        ).scalars()
        assert 0 in set(attempts)  # the retried rows start their attempts over
    await h.app[OUTBOX].flush()
    assert [received_broadcast(h, n) for n in numbers] == [1, 1, 1]
    page = await (await h.client.get("/admin/queue")).text()
    assert 'data-outbox="failed">0<' in page and "Tidak ada pesan keluar yang gagal" in page


async def _parked_unit(h: Harness, number: str, text: str) -> int:
    """A buyer's message stored and then parked as failed after five attempts (as the
    inbox does when processing keeps raising)."""
    (unit,) = split_update(simulate.text(number, text, name="W0"))
    async with h.db.transaction() as session:
        await inbox_repo.store_units(session, [unit])
        await session.execute(
            update(InboundUpdate)
            .where(InboundUpdate.key == unit["key"])
            .values(
                status="failed",
                attempts=5,
                last_error=f"OperationalError: could not store {text!r}",
            )
        )
        return int(
            (
                await session.execute(
                    select(InboundUpdate.id).where(InboundUpdate.key == unit["key"])
                )
            ).scalar_one()
        )


async def test_a_parked_inbound_unit_requeued_is_processed(harness: Harness) -> None:
    h = harness
    (number,) = await joined_buyers(h, 1)
    unit_id = await _parked_unit(h, number, "MENU")
    await logged_in(h)
    before = len(h.fake.sent_to(number))
    await h.app[PROCESSOR].sweep(older_than_seconds=0)
    assert len(h.fake.sent_to(number)) == before, "a failed unit is not swept by itself"
    page = await (await h.client.get("/admin/queue")).text()
    assert 'data-inbound="failed">1<' in page
    assert "gagal diproses 5 kali (OperationalError)" in page
    assert "MENU" not in page.split("Pesan masuk yang gagal diproses")[1]  # no buyer words
    assert await post(h, f"/admin/queue/inbound/{unit_id}/requeue") == 303
    await h.app[PROCESSOR].sweep(older_than_seconds=0)
    await h.app[OUTBOX].flush()
    replies = h.fake.texts_to(number)[before:]
    assert any("Menu" in r for r in replies), replies
    async with h.db.read() as session:
        status = (
            await session.execute(select(InboundUpdate.status).where(InboundUpdate.id == unit_id))
        ).scalar_one()
    assert status == "done"


async def test_requeue_all_takes_every_parked_unit(harness: Harness) -> None:
    h = harness
    numbers = await joined_buyers(h, 2)
    for number in numbers:
        await _parked_unit(h, number, "MENU")
    await logged_in(h)
    before = [len(h.fake.sent_to(n)) for n in numbers]
    assert await post(h, "/admin/queue/inbound/requeue") == 303
    await h.app[PROCESSOR].sweep(older_than_seconds=0)
    await h.app[OUTBOX].flush()
    assert all(len(h.fake.sent_to(n)) > b for n, b in zip(numbers, before, strict=True))


async def test_dramatiq_queue_depth_and_dead_jobs(harness: Harness) -> None:
    h = harness
    await joined_buyers(h, 1)
    await logged_in(h)
    h.app[ACTORS].send_broadcast.send(999_999)  # waits: no worker runs in this test
    page = await (await h.client.get("/admin/queue")).text()
    assert 'data-queue="broadcasts">1<' in page


async def test_without_a_csrf_token_nothing_is_retried(harness: Harness) -> None:
    h = harness
    _broadcast_id, numbers = await _failed_broadcast(h, buyers=2, failing=1)
    (row_id,) = await _failed_rows(h)
    unit_id = await _parked_unit(h, numbers[1], "MENU")
    for path in (
        f"/admin/queue/outbox/{row_id}/retry",
        "/admin/queue/outbox/retry",
        f"/admin/queue/inbound/{unit_id}/requeue",
        "/admin/queue/inbound/requeue",
        "/admin/queue/jobs/retry",
    ):
        assert await post(h, path, token=False) == 403, path
    await h.app[OUTBOX].flush()
    await h.app[PROCESSOR].sweep(older_than_seconds=0)
    assert await _failed_rows(h) == [row_id]
    assert received_broadcast(h, numbers[0]) == 0
    async with h.db.read() as session:
        status = (
            await session.execute(select(InboundUpdate.status).where(InboundUpdate.id == unit_id))
        ).scalar_one()
    assert status == "failed"


# --- ADMIN_ALLOWED_IPS -----------------------------------------------------------------------


@pytest.fixture
async def fenced(
    database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> AsyncIterator[Harness]:
    """The app with the queue page allowed from 10.1.2.0/24 and one address only."""
    settings = make_settings(
        database_url,
        tmp_path,
        wa_api_base=fake_graph.base_url,
        admin_allowed_ips=("10.1.2.0/24", "192.0.2.7/32"),
    )
    app = create_app(settings, run_background=False)
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, fake_graph, settings)


async def test_the_allowlist_refuses_the_queue_to_other_addresses(fenced: Harness) -> None:
    h = fenced
    await h.seed_demo()
    await logged_in(h)  # the test client is 127.0.0.1: not on the list
    refused = await h.client.get("/admin/queue", allow_redirects=False)
    assert refused.status == 403
    assert "alamat yang diizinkan" in await refused.text()
    assert refused.headers["X-Frame-Options"] == "DENY"  # still the panel's headers
    assert (await h.client.get("/admin/queue/outbox/retry")).status == 403
    assert (await h.client.get("/admin/")).status == 200  # only the queue is fenced
    # through our reverse proxy (loopback peer): the address the proxy saw counts
    inside = await h.client.get("/admin/queue", headers={"X-Forwarded-For": "10.1.2.77"})
    assert inside.status == 200 and "Antrean Dramatiq" in await inside.text()
    outside = await h.client.get("/admin/queue", headers={"X-Forwarded-For": "10.1.3.1"})
    assert outside.status == 403
    # a form from outside is refused before anything else, token or not
    token = re.search(r'name="csrf_token" value="([^"]+)"', await inside.text())
    assert token
    resp = await h.client.post(
        "/admin/queue/outbox/retry",
        data={"csrf_token": token.group(1)},
        headers={"X-Forwarded-For": "198.51.100.1"},
        allow_redirects=False,
    )
    assert resp.status == 403
    # without a session, an outsider gets the same 403 (not even the login page)
    h.client.session.cookie_jar.clear()
    assert (await h.client.get("/admin/queue", allow_redirects=False)).status == 403


def test_admin_allowed_ips_is_read_and_checked() -> None:
    base = {"PII_ENCRYPTION_KEY": "A" * 43 + "="}
    env = {**base, "ADMIN_ALLOWED_IPS": " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32"}
    settings = Settings.from_env(env)
    assert settings.admin_allowed_ips == ("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32")
    assert Settings.from_env(base).admin_allowed_ips == ()
    with pytest.raises(ConfigError, match="ADMIN_ALLOWED_IPS"):
        Settings.from_env({**base, "ADMIN_ALLOWED_IPS": "10.0.0.0/8, office"})


def test_depths_and_dead_jobs_on_the_redis_broker() -> None:
    """With Redis, the depths are the broker's own lists: waiting, and dead after the
    actor's retries; retrying the dead puts them back in line."""
    import secrets
    import time

    import dramatiq
    import redis
    from dramatiq.brokers.redis import RedisBroker

    from bot.broker import queue_depths, retry_dead_letters
    from tests.conftest import REQUIRE_SERVICES

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except Exception as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip("no Redis on 127.0.0.1:6379")
    namespace = f"jp-depth-{secrets.token_hex(4)}-dramatiq"
    broker = RedisBroker(url="redis://127.0.0.1:6379/0", namespace=namespace)

    @dramatiq.actor(
        broker=broker, actor_name="send_broadcast", queue_name="broadcasts", max_retries=0
    )
    def failing(broadcast_id: int) -> None:
        raise RuntimeError("database unreachable")

    try:
        assert queue_depths(broker) == [("broadcasts", 0, 0, 0, 0)]
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            failing.send(41)
            deadline = time.monotonic() + 20
            while not client.zcard(f"{namespace}:broadcasts.XQ") and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            worker.stop()
        failing.send(42)
        failing.send(43)  # no worker now: they wait
        assert queue_depths(broker) == [("broadcasts", 2, 0, 0, 1)]
        assert retry_dead_letters(broker) == 1
        assert queue_depths(broker) == [("broadcasts", 3, 0, 0, 0)]
    finally:
        for key in client.scan_iter(f"{namespace}:*"):
            client.delete(key)
        client.close()
        broker.close()

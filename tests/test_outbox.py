"""The outbox: retries, order per recipient, and no double sends after a crash."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from bot import simulate
from bot.keys import OUTBOX
from services import replies
from storage.models import OutboxMessage, User, utcnow
from storage.repo import outbox as outbox_repo
from storage.repo.users import upsert_user
from tests.conftest import Harness, phone
from tests.journeys import joined, order_one


async def _user(h: Harness, number: str) -> User:
    async with h.db.transaction() as session:
        return await upsert_user(session, h.cipher, bsuid=None, wa_id=number)


async def _queue(h: Harness, user: User, *texts: str) -> None:
    async with h.db.transaction() as session:
        for t in texts:
            outbox_repo.queue(session, user.id, replies.text(t))


async def _rows(h: Harness) -> list[OutboxMessage]:
    async with h.db.read() as session:
        return list(
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        )


async def _make_due(h: Harness) -> None:
    """Time passes: every waiting retry becomes due."""
    async with h.db.transaction() as session:
        await session.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
        )


async def _expire_leases(h: Harness, ago: dt.timedelta) -> None:
    async with h.db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "sending")
            .values(lease_until=utcnow() - ago)
        )


async def test_a_transient_failure_is_retried_and_sent_exactly_once(harness: Harness) -> None:
    number = phone()
    user = await _user(harness, number)
    await _queue(harness, user, "Halo")
    harness.fake.fail_next(code=131000, http_status=500)
    await harness.app[OUTBOX].flush()
    assert harness.fake.sent_to(number) == []
    (row,) = await _rows(harness)
    assert row.status == "pending" and row.attempts == 1 and row.error_code == 131000
    await _make_due(harness)
    await harness.app[OUTBOX].flush()
    assert harness.fake.texts_to(number) == ["Halo"]
    (row,) = await _rows(harness)
    assert row.status == "sent" and row.wa_message_id == harness.cipher.digest_id(
        harness.fake.sent_to(number)[0]["wamid"]
    )


async def test_a_permanent_failure_is_recorded_and_not_retried(harness: Harness) -> None:
    number = phone()
    user = await _user(harness, number)
    await _queue(harness, user, "Halo", "Apa kabar")
    harness.fake.fail_next(code=131026, http_status=400, title="Message undeliverable")
    await harness.app[OUTBOX].flush()
    await _make_due(harness)
    await harness.app[OUTBOX].flush()
    first, second = await _rows(harness)
    assert first.status == "failed" and first.error_code == 131026 and first.attempts == 1
    # the next message to the same person still goes out
    assert second.status == "sent"
    assert harness.fake.texts_to(number) == ["Apa kabar"]


async def test_messages_to_one_recipient_keep_their_order_across_retries(harness: Harness) -> None:
    a, b = phone(), phone()
    ua, ub = await _user(harness, a), await _user(harness, b)
    await _queue(harness, ua, "satu", "dua", "tiga")
    await _queue(harness, ub, "lain")
    harness.fake.fail_next(code=131000, http_status=500, to=a)
    await harness.app[OUTBOX].flush()
    # b is not held up by a's failure; a's later messages wait for the first
    assert harness.fake.texts_to(b) == ["lain"]
    assert harness.fake.texts_to(a) == []
    await _make_due(harness)
    await harness.app[OUTBOX].flush()
    assert harness.fake.texts_to(a) == ["satu", "dua", "tiga"]


async def test_a_send_whose_answer_was_lost_is_confirmed_by_its_status_not_resent(
    harness: Harness,
) -> None:
    number = phone()
    user = await _user(harness, number)
    await _queue(harness, user, "Pesanan diterima")
    harness.fake.disconnect_next()
    await harness.app[OUTBOX].flush()
    # Meta got it; we never heard back
    assert harness.fake.texts_to(number) == ["Pesanan diterima"]
    (row,) = await _rows(harness)
    assert row.status == "sending", row.error_title
    sent = harness.fake.sent_to(number)[0]
    assert sent["biz_opaque_callback_data"] == f"ob:{row.id}"
    # Meta's status webhook carries our tracker: the row is confirmed as sent
    resp = await harness.post(
        simulate.status(sent["wamid"], "sent", number, tracker=f"ob:{row.id}")
    )
    assert resp.status == 200
    await harness.settle()
    await _expire_leases(harness, dt.timedelta(hours=1))
    await harness.app[OUTBOX].recover()
    await harness.app[OUTBOX].flush()
    assert harness.fake.texts_to(number) == ["Pesanan diterima"]
    (row,) = await _rows(harness)
    assert row.status == "sent" and row.wa_message_id == harness.cipher.digest_id(sent["wamid"])


async def test_a_crash_before_sending_resends_after_the_grace_period(harness: Harness) -> None:
    number = phone()
    user = await _user(harness, number)
    await _queue(harness, user, "Halo lagi")
    # a dispatcher claims the row, then dies before sending anything
    claimed = await harness.app[OUTBOX]._claim()
    assert len(claimed) == 1
    # while the lease runs, nobody else sends it
    await harness.app[OUTBOX].recover()
    await harness.app[OUTBOX].flush()
    assert harness.fake.texts_to(number) == []
    # lease and grace over, no status ever came: it was not sent, so send it once
    await _expire_leases(harness, dt.timedelta(minutes=10))
    confirmed, requeued = await harness.app[OUTBOX].recover()
    assert (confirmed, requeued) == (0, 1)
    await harness.app[OUTBOX].flush()
    await harness.app[OUTBOX].recover()
    await harness.app[OUTBOX].flush()
    assert harness.fake.texts_to(number) == ["Halo lagi"]


async def test_every_reply_is_accounted_free_inside_the_window(harness: Harness) -> None:
    await harness.seed_demo()
    number = phone()
    await harness.say(number, "JOIN DEMO")
    rows = await _rows(harness)
    assert rows and all(r.status == "sent" and not r.billable and r.cost == 0 for r in rows)


async def test_an_expired_token_never_turns_messages_into_failures(harness: Harness) -> None:
    number = phone()
    user = await _user(harness, number)
    await _queue(harness, user, "Tetap terkirim")
    harness.fake.fail_next(12, code=190, http_status=401, title="Session has expired")
    for _ in range(12):
        await harness.app[OUTBOX].flush()
        await _make_due(harness)
    (row,) = await _rows(harness)
    assert row.status == "pending" and row.attempts == 12 and row.error_code == 190
    # the operator rotates the token: the message goes out
    await harness.app[OUTBOX].flush()
    assert harness.fake.texts_to(number) == ["Tetap terkirim"]


async def test_failed_rows_can_be_requeued_by_an_operator(harness: Harness) -> None:
    number = phone()
    user = await _user(harness, number)
    await _queue(harness, user, "Coba lagi")
    harness.fake.fail_next(code=131026, http_status=400)
    await harness.app[OUTBOX].flush()
    async with harness.db.transaction() as session:
        assert await outbox_repo.requeue_failed(session) == 1
    await harness.app[OUTBOX].flush()
    assert harness.fake.texts_to(number) == ["Coba lagi"]


async def test_replies_never_wait_for_the_broadcast_pace_when_redis_is_away(
    harness: Harness,
) -> None:
    """Given the broadcast pace on a Redis that does not answer, when a buyer writes, then
    the reply is still sent: only broadcast sends depend on the pace."""
    import redis.asyncio as aioredis

    from bot.pace import SharedPace

    h = harness
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    outbox = h.app[OUTBOX]
    outbox.pace = SharedPace(80, redis=dead, cap=80, prefix="test-dead")
    try:
        buyer = phone()
        texts = await h.say(buyer, "BANTUAN")
        assert texts and "Kata yang bisa kamu kirim" in texts[0]
    finally:
        await dead.aclose()


async def test_a_redis_that_never_answers_does_not_hold_replies_up(harness: Harness) -> None:
    """Given the number's cap on a Redis that takes connections but never answers (a
    network partition), when buyers write, then each is answered (uncounted) — the
    reply does not wait for Redis to time out."""
    import asyncio

    import redis.asyncio as aioredis

    from bot.pace import SharedPace

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads, never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # no client-side timeout either: only the pace's own bound lets a reply go
    stuck = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=None)
    h = harness
    h.app[OUTBOX].pace = SharedPace(80, redis=stuck, cap=80, prefix="test-silent")
    try:
        for _ in range(2):  # the first asks and gives up; the next does not ask
            buyer = phone()
            # generous: a reply stuck on Redis would never come at all
            texts = await asyncio.wait_for(h.say(buyer, "BANTUAN"), timeout=60)
            assert texts and "Kata yang bisa kamu kirim" in texts[0]
    finally:
        await stuck.aclose(close_connection_pool=True)
        server.close()
        await server.wait_closed()


# --- replies queued on the session (outbox.queue), written just before the commit ------


def _texts(h: Harness, number: str) -> list[str]:
    return [m["text"]["body"] for m in h.fake.sent_to(number)]


async def test_queued_replies_and_rows_numbered_at_once_go_out_in_the_order_written(
    harness: Harness,
) -> None:
    """A flow's replies wait on the unit of work until the commit; a row whose id is
    needed at once in between (a broadcast's) must still be numbered after them, and the
    recipient gets all of them in the order they were written."""
    number = phone()
    user = await _user(harness, number)
    async with harness.db.transaction() as session:
        outbox_repo.queue(session, user.id, replies.text("satu"))
        outbox_repo.queue(session, user.id, replies.text("dua"))
        (row_id,) = await outbox_repo.queue_numbered(
            session, [{"user_id": user.id, "payload": replies.text("tiga")}]
        )
        assert row_id  # numbered now
        outbox_repo.queue(session, user.id, replies.text("empat"))
    await harness.app[OUTBOX].flush()
    assert _texts(harness, number) == ["satu", "dua", "tiga", "empat"]


async def test_a_queued_reply_is_dropped_with_its_rolled_back_transaction(
    harness: Harness,
) -> None:
    number = phone()
    user = await _user(harness, number)
    try:
        async with harness.db.transaction() as session:
            outbox_repo.queue(session, user.id, replies.text("tidak jadi"))
            raise RuntimeError("the flow failed")
    except RuntimeError:
        pass
    async with harness.db.transaction() as session:
        outbox_repo.queue(session, user.id, replies.text("jadi"))
    await harness.app[OUTBOX].flush()
    assert _texts(harness, number) == ["jadi"]


async def test_a_reply_queued_in_a_rolled_back_savepoint_is_not_sent(harness: Harness) -> None:
    """Placing an order reserves stock in a savepoint: when that part fails, what it
    said goes with it, while the replies before it stay and keep their order."""
    number = phone()
    user = await _user(harness, number)
    async with harness.db.transaction() as session:
        outbox_repo.queue(session, user.id, replies.text("sebelum"))
        try:
            async with outbox_repo.savepoint(session):
                outbox_repo.queue(session, user.id, replies.text("dibatalkan"))
                await session.execute(select(User.id))  # flushes inside the savepoint
                raise RuntimeError("sold out meanwhile")
        except RuntimeError:
            pass
        outbox_repo.queue(session, user.id, replies.text("lalu"))
        async with outbox_repo.savepoint(session):
            outbox_repo.queue(session, user.id, replies.text("pesanan"))
        outbox_repo.queue(session, user.id, replies.text("sesudah"))
    await harness.app[OUTBOX].flush()
    assert _texts(harness, number) == ["sebelum", "lalu", "pesanan", "sesudah"]


async def test_a_commit_with_a_savepoint_still_open_writes_the_queued_replies(
    harness: Harness,
) -> None:
    number = phone()
    user = await _user(harness, number)
    async with harness.db.transaction() as session:
        outbox_repo.queue(session, user.id, replies.text("tetap terkirim"))
        await session.begin_nested()  # never closed: the commit ends it
    await harness.app[OUTBOX].flush()
    assert _texts(harness, number) == ["tetap terkirim"]


async def test_at_the_cap_a_purchase_steps_reply_is_claimed_before_browsing_queued_earlier(
    harness: Harness,
) -> None:
    """Replies queue when the number sends at its cap: the next claim takes a buyer's
    order confirmation before the catalogue pages queued ahead of it, yet never before
    an earlier message to the same buyer (a recipient's messages keep their order)."""
    browsing = [await _user(harness, phone()) for _ in range(5)]
    buyer = await _user(harness, phone())
    async with harness.db.transaction() as session:
        for user in browsing:
            outbox_repo.queue(session, user.id, replies.text("Katalog"))
        outbox_repo.queue(session, browsing[0].id, replies.text("Pesanan dibuat"), priority=1)
        outbox_repo.queue(session, buyer.id, replies.text("Pesanan dibuat"), priority=1)
    async with harness.db.transaction() as session:
        claimed = await outbox_repo.claim_batch(session, limit=3, lease=dt.timedelta(seconds=60))
    got = {(row.user_id, row.payload["text"]) for row in claimed}
    assert (buyer.id, "Pesanan dibuat") in got  # queued last, claimed first
    assert (browsing[0].id, "Katalog") in got  # its own earlier message goes first
    assert (browsing[0].id, "Pesanan dibuat") not in got
    assert len(got) == 3


async def test_checkout_replies_are_queued_as_purchase_steps(harness: Harness) -> None:
    """The confirmation and how to pay are marked to go first; the catalogue is not."""
    await harness.seed_demo()
    buyer = await joined(harness)
    await order_one(harness, buyer, "Royce Nama Chocolate", "1")
    rows = await _rows(harness)
    mine = [r for r in rows if r.payload.get("text", "").startswith("Pesanan *")]
    assert mine and all(r.priority == 1 for r in mine)
    catalogue = [r for r in rows if r.payload.get("type") == "list"]
    assert catalogue and all(r.priority == 0 for r in catalogue)

"""Broadcasts on Dramatiq: every subscribed participant once, at the configured pace."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import jobs, simulate
from bot.jobs import fan_out
from bot.keys import OUTBOX, PROCESSOR
from bot.pace import CappedPace, LocalPace, SharedPace, granted
from bot.settings import Settings
from storage.demo import DEMO_PHONE
from storage.models import Broadcast, BroadcastDelivery, OutboxMessage
from tests.conftest import Harness, user_named
from tests.fakes.graph_api import message_text
from tests.journeys import (
    BROADCAST_TEXT,
    joined,
    last_wrote_days_ago,
    run_actor,
    templates_to,
    tina,
)


async def _confirmed_broadcast(h: Harness, buyers: int, stop: int = 1) -> list[str]:
    await h.seed_demo()
    numbers = [await joined(h, f"B{i}") for i in range(buyers)]
    for number in numbers[:stop]:
        await h.say(number, "STOP")
    await tina(h, f"/broadcast DEMO {BROADCAST_TEXT}")
    await h.tap_title(DEMO_PHONE, "Kirim")
    return numbers


async def test_every_subscribed_buyer_gets_it_exactly_once(harness: Harness) -> None:
    h = harness
    numbers = await _confirmed_broadcast(h, buyers=20, stop=1)
    await run_actor(h)
    await h.app[OUTBOX].flush()
    got = [n for n in numbers if any(BROADCAST_TEXT in t for t in h.fake.texts_to(n))]
    assert got == numbers[1:], "each subscribed buyer once, the one who sent STOP never"
    assert all(sum(BROADCAST_TEXT in t for t in h.fake.texts_to(n)) == 1 for n in numbers[1:])
    summary = h.fake.texts_to(DEMO_PHONE)[-1]
    assert "Broadcast DEMO selesai: 19 terkirim, 0 gagal" in summary
    async with h.db.read() as session:
        assert (await session.execute(select(Broadcast.status))).scalar_one() == "done"


async def test_a_too_long_broadcast_is_refused_in_chat_as_on_the_web(harness: Harness) -> None:
    """Over the limit the jastiper hears the limit and their length; nothing is cut short
    and nothing is drafted (the panel says the same)."""
    h = harness
    await h.seed_demo()
    (answer,) = await tina(h, "/broadcast DEMO " + "x" * 1001)
    assert "1001 karakter; paling banyak 1000" in answer
    async with h.db.read() as session:
        assert (await session.execute(select(Broadcast))).first() is None


async def test_running_the_actor_twice_sends_nothing_twice(harness: Harness) -> None:
    h = harness
    await _confirmed_broadcast(h, buyers=5, stop=0)
    async with h.db.read() as session:
        broadcast_id = (await session.execute(select(Broadcast.id))).scalar_one()
    assert await fan_out(h.db, broadcast_id) == 5
    # a worker killed after queuing, restarted: the same message runs again
    assert await fan_out(h.db, broadcast_id) == 0
    async with h.db.read() as session:
        rows = (
            await session.execute(
                select(func.count(OutboxMessage.id)).where(OutboxMessage.broadcast_id.is_not(None))
            )
        ).scalar_one()
        deliveries = (await session.execute(select(func.count(BroadcastDelivery.id)))).scalar_one()
    assert (rows, deliveries) == (5, 5)


async def test_a_rate_limit_pauses_broadcasts_but_not_replies(harness: Harness) -> None:
    h = harness
    numbers = await _confirmed_broadcast(h, buyers=3, stop=0)
    async with h.db.read() as session:
        broadcast_id = (await session.execute(select(Broadcast.id))).scalar_one()
    await fan_out(h.db, broadcast_id)
    h.fake.fail_next(code=130429, http_status=400, title="Rate limit hit")
    await h.app[OUTBOX].send_due()
    pace = h.app[OUTBOX].pace
    assert pace is not None and await pace.paused()
    before = sum(BROADCAST_TEXT in t for n in numbers for t in h.fake.texts_to(n))
    await h.app[OUTBOX].flush()
    assert sum(BROADCAST_TEXT in t for n in numbers for t in h.fake.texts_to(n)) == before
    (answer,) = await h.say(numbers[0], "MENU")  # replies still go out
    assert "Menu" in answer


async def test_a_reply_rate_limited_goes_again_within_seconds_and_broadcasts_go_on(
    harness: Harness,
) -> None:
    """Meta's 130429 on a reply (issue #28): the person gets the answer seconds later,
    not after a minute; replies take half the cap for a while; nothing is paused, so a
    broadcast confirmed meanwhile still goes out."""
    h = harness
    numbers = await _confirmed_broadcast(h, buyers=2, stop=0)
    buyer = numbers[0]
    pace = h.app[OUTBOX].pace
    assert isinstance(pace, CappedPace)
    h.fake.fail_next(code=130429, http_status=400, title="Rate limit hit", to=buyer)
    before = len(h.fake.sent_to(buyer))
    resp = await h.post(simulate.text(buyer, "MENU"))
    assert resp.status == 200
    await h.app[PROCESSOR].drain()
    await h.app[OUTBOX].flush()  # the reply: answered 130429, due again in 2 s
    assert [e for _p, e in h.fake.rejected if e["code"] == 130429]
    assert not pace.pausing() and pace.reply_cap() == pace.cap // 2
    # the broadcast queued before is not held up by the reply's rate limit
    async with h.db.read() as session:
        broadcast_id = (await session.execute(select(Broadcast.id))).scalar_one()
    await fan_out(h.db, broadcast_id)
    await h.app[OUTBOX].flush()
    assert all(any(BROADCAST_TEXT in t for t in h.fake.texts_to(n)) for n in numbers)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # due again 2 s after the 130429, a minute before
    while not any("Menu" in t for t in h.fake.texts_to(buyer)[before:]):
        assert loop.time() < deadline, "the rate-limited reply did not go again"
        await asyncio.sleep(0.25)
        await h.app[OUTBOX].flush()
    assert len(h.fake.sent_to(buyer)) - before >= 1


async def test_the_local_pace_keeps_to_its_rate() -> None:
    import time

    pace = LocalPace(rate=50)
    per_second: dict[int, int] = {}
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        granted = await pace.take(20)
        per_second[int(time.time())] = per_second.get(int(time.time()), 0) + granted
        await asyncio.sleep(0.01)
    assert max(per_second.values()) <= 50, per_second  # never more than the rate a second
    whole = list(per_second.values())[:-1]  # the loop may end early in its last second
    assert len(whole) >= 2 and min(whole) == 50  # and all of it
    # the sends of a claim start 1/rate apart, not at once
    started = []
    for _ in range(10):
        await pace.space()
        started.append(time.monotonic())
    assert started[-1] - started[0] >= 0.15  # 10 sends at 50/s: ~0.18 s, not at once
    await pace.pause()
    assert await pace.take(50) == 0 and pace.rate == 25


async def test_one_process_without_redis_keeps_replies_and_broadcasts_within_the_tier() -> None:
    """The embedded default (no Redis) counts the number's seconds itself: replies and
    broadcasts together never exceed the cap in a second, replies first (a broadcast
    leaves the reserve to them), and a reply finding its second full books the next."""
    from bot.pace import InProcessPace

    pace = InProcessPace(1000, cap=10, reply_reserve=3)
    replies = await asyncio.gather(*(pace.reply_slot() for _ in range(25)))
    broadcasts = [await pace.space() for _ in range(12)]
    per_second: dict[int, list[int]] = {}
    for second in replies:
        assert second is not None
        per_second.setdefault(second, [0, 0])[0] += 1
    for second in broadcasts:
        per_second.setdefault(second, [0, 0])[1] += 1
    assert per_second == {k: list(v) for k, v in pace.granted().items() if sum(v)}
    assert all(r + b <= 10 for r, b in per_second.values()), per_second
    first = min(per_second)
    assert per_second[first][0] == 10  # the first second is the replies'
    # a broadcast never takes a second's last three slots (the replies' reserve)
    assert all(b <= 7 for _, b in per_second.values())
    assert pace.reply_waits >= 15  # 25 replies in a 10-a-second number: most waited


async def test_replies_start_spread_over_their_second_never_in_the_one_before() -> None:
    """Meta counts a send in the second it arrives. Forty replies asked at once of a
    number allowing ten a second: each starts inside the second it was counted in (not
    a moment early, in a second already full), at most ten start in any second, and
    those of one second are spread over it instead of leaving together at its start."""
    import time

    from bot.pace import InProcessPace

    pace = InProcessPace(1000, cap=10)

    async def reply() -> tuple[int | None, float]:
        second = await pace.reply_slot()
        return second, time.time()

    sent = await asyncio.gather(*(reply() for _ in range(40)))
    started_in = Counter(int(at) for _, at in sent)
    assert all(second == int(at) for second, at in sent), sent
    assert max(started_in.values()) <= 10, started_in
    by_second: dict[int, list[float]] = {}
    for second, at in sent:
        assert second is not None
        by_second.setdefault(second, []).append(at - second)
    full = [offsets for offsets in by_second.values() if len(offsets) == 10]
    assert full, by_second
    assert all(max(o) - min(o) >= 0.7 for o in full), by_second  # spread, not a burst


def test_without_redis_the_serving_process_paces_at_the_tier(tmp_path: Path) -> None:
    from bot.pace import InProcessPace, build_pace

    settings = Settings.from_env(
        {"JASTIPIN_DATA_DIR": str(tmp_path), "BROADCAST_NUMBER_CAP": "80"}
    )
    pace = build_pace(settings)
    assert isinstance(pace, InProcessPace) and pace.cap == 80


async def test_two_workers_never_exceed_the_shared_cap_on_redis(redis_client: Any) -> None:
    client = redis_client
    prefix = "jastipin-test-pace"
    # each worker alone would send 50 a second; the number allows 30
    a = SharedPace(50, redis=client, cap=30, prefix=prefix)
    b = SharedPace(50, redis=client, cap=30, prefix=prefix)
    try:
        import time

        started: list[int] = []  # the second each send was let start in

        async def sends(pace: SharedPace) -> None:
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                started.append(await pace.space())

        await asyncio.gather(sends(a), sends(b))
        per_second = Counter(started)
        assert max(per_second.values()) <= 30, per_second  # never more, across both
        whole = [per_second[s] for s in sorted(per_second)[1:-1]]
        assert whole and min(whole) >= 25, per_second  # and close to it
        await a.pause()
        assert await b.paused()  # every worker sees the pause
    finally:
        await client.delete(f"{prefix}:pace:paused")


async def test_replies_go_first_and_share_the_numbers_cap_with_broadcasts_on_redis(
    redis_client: Any,
) -> None:
    """Meta counts replies and broadcasts against one per-second rate. Cap 10, 3 kept for
    replies: broadcasts fill 7 of a second and no more; replies take the rest; a reply
    finding its second full books the next one before any broadcast there can."""
    client = redis_client
    prefix = f"jastipin-test-share-{secrets.token_hex(4)}"
    pace = SharedPace(50, redis=client, cap=10, reply_reserve=3, prefix=prefix)
    second = 4_000_000_000  # a second of its own: nothing else counts in it
    try:
        broadcasts = [await pace.take_broadcast_slot(second) for _ in range(9)]
        assert broadcasts.count(True) == 7, "broadcasts leave the reserve to replies"
        replies = [await pace.take_reply_slot(second) for _ in range(4)]
        assert replies == [second] * 3 + [second + 1], "the 4th reply books the next second"
        later = [await pace.take_broadcast_slot(second + 1) for _ in range(9)]
        assert later.count(True) == 6, "the reply booked there came first"
        # replies may use a whole second, never more than the cap
        more = [await pace.take_reply_slot(second + 1) for _ in range(5)]
        assert more == [second + 1] * 3 + [second + 2] * 2
        counted = await granted(client, prefix)
        assert counted == {second: (3, 7), second + 1: (4, 6), second + 2: (2, 0)}
    finally:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)


async def test_buyers_are_answered_during_a_broadcast_within_the_numbers_cap(
    harness: Harness, redis_client: Any
) -> None:
    """Given a broadcast to 15 buyers under a number cap of 6 a second (2 kept for
    replies) shared through Redis, when two other buyers write while it goes out, then
    they are answered before the broadcast is done, and no second was granted more than
    the cap: replies and broadcast sends counted together where the sender took them."""
    h = harness
    numbers = await _confirmed_broadcast(h, buyers=17, stop=2)
    writers, audience = numbers[:2], numbers[2:]
    async with h.db.read() as session:
        broadcast_id = (await session.execute(select(Broadcast.id))).scalar_one()
    await fan_out(h.db, broadcast_id)
    outbox = h.app[OUTBOX]
    prefix = f"jastipin-test-mixed-{secrets.token_hex(4)}"
    pace = SharedPace(50, redis=redis_client, cap=6, reply_reserve=2, prefix=prefix)
    outbox.pace = pace
    already = len(h.fake.sent)
    try:
        sending = asyncio.create_task(outbox.flush())
        # (one writer's flush may send the other's answer: both are looked at below)
        await asyncio.gather(*(h.say(n, "MENU") for n in writers))
        await sending
        await outbox.flush()
        counted = await granted(redis_client, prefix)
    finally:
        async for key in redis_client.scan_iter(match=f"{prefix}*"):
            await redis_client.delete(key)

    since = h.fake.sent[already:]
    sent = [m["to"] in audience and BROADCAST_TEXT in (message_text(m) or "") for m in since]
    assert all(any(m["to"] == n for m in since) for n in writers), "a writer got no answer"
    answered = [i for i, m in enumerate(since) if m["to"] in writers]
    assert max(answered) < max(i for i, b in enumerate(sent) if b), (
        "the answers waited for the broadcast to finish"
    )
    assert all(sum(BROADCAST_TEXT in t for t in h.fake.texts_to(n)) == 1 for n in audience)
    print("granted per second (replies, broadcasts):", dict(sorted(counted.items())))
    assert sum(b for _r, b in counted.values()) == sent.count(True) == len(audience)
    # every other message since (the answers, Tina's summary) took a reply's slot
    assert sum(r for r, _b in counted.values()) == sent.count(False), counted
    assert all(r + b <= 6 for r, b in counted.values()), counted
    assert all(b <= 6 - 2 for _r, b in counted.values()), counted
    assert pace.reply_waits == 0, "a reply waited although the reserve was free"


async def test_after_130429_every_worker_pauses_then_resumes_slower_on_redis(
    redis_client: Any,
) -> None:
    client = redis_client
    prefix = "jastipin-test-resume"
    a = SharedPace(40, redis=client, cap=100, prefix=prefix, pause_seconds=1.0)
    b = SharedPace(40, redis=client, cap=100, prefix=prefix, pause_seconds=1.0)
    try:
        await asyncio.sleep(0.2)
        assert await a.take(10) > 0 and await b.take(10) > 0
        await a.pause()  # a got Meta's 130429
        assert await a.take(10) == 0 and await b.take(10) == 0, "every worker waits"
        await asyncio.sleep(1.2)
        assert not await b.paused()
        assert await a.take(10) > 0 and await b.take(10) > 0, "and then resumes"
        assert a.rate == b.rate == 20  # every worker goes on at half its rate
    finally:
        await client.delete(f"{prefix}:pace:paused")


async def test_status_webhooks_move_deliveries_forward_and_status_shows_them(
    harness: Harness,
) -> None:
    from bot import simulate

    h = harness
    numbers = await _confirmed_broadcast(h, buyers=3, stop=0)
    (none_yet,) = await tina(h, "/broadcast status")
    assert "*#1 DEMO* — broadcast, antre (0%)" in none_yet
    assert "belum ada yang dikirim" in none_yet
    await run_actor(h)
    await h.app[OUTBOX].flush()
    sent = [next(m for m in h.fake.sent_to(n) if BROADCAST_TEXT in str(m)) for n in numbers]
    # out of order: read arrives before delivered; a failure for the third
    await h.post(simulate.status(sent[0]["wamid"], "read", numbers[0]))
    await h.post(simulate.status(sent[0]["wamid"], "delivered", numbers[0]))
    await h.post(simulate.status(sent[1]["wamid"], "delivered", numbers[1]))
    await h.post(simulate.status(sent[2]["wamid"], "failed", numbers[2], error_code=131026))
    await h.settle()
    async with h.db.read() as session:
        statuses = sorted((await session.execute(select(BroadcastDelivery.status))).scalars())
    assert statuses == ["delivered", "failed", "read"]
    (report,) = await tina(h, "/broadcast status")
    assert "*#1 DEMO* — broadcast, selesai (100%)" in report
    assert "1 diterima, 1 dibaca, 1 gagal" in report
    assert "1× nomor tidak bisa menerima pesan WhatsApp" in report  # 131026, in words


async def test_unsubscribed_participants_are_removed_after_90_days(harness: Harness) -> None:
    import datetime as dt

    from sqlalchemy import update

    from storage.models import Participant, utcnow

    h = harness
    await h.seed_demo()
    await joined(h, "Keep")
    await joined(h, "Old")
    async with h.db.transaction() as session:
        old_id = await user_named(session, "Old")
        await session.execute(
            update(Participant)
            .where(Participant.user_id == old_id)
            .values(unsubscribed_at=utcnow() - dt.timedelta(days=91))
        )
    assert await jobs.purge_unsubscribed(h.db) == 1
    assert await jobs.purge_unsubscribed(h.db) == 0
    async with h.db.read() as session:
        left = (await session.execute(select(Participant.user_id))).scalars().all()
    assert old_id not in left and len(left) == 1


async def test_a_segment_narrows_the_audience(harness: Harness) -> None:
    from tests.journeys import order_one

    h = harness
    await h.seed_demo()
    buyers = [await joined(h, f"S{i}") for i in range(3)]
    await order_one(h, buyers[0], "Daiso Storage Box", "1")
    (estimate,) = await tina(h, "/broadcast DEMO #unpaid Jangan lupa transfer ya")
    assert "Penerima: 1" in estimate
    (estimate,) = await tina(h, "/broadcast DEMO #noorder Ada produk baru!")
    assert "Penerima: 2" in estimate
    (bad,) = await tina(h, "/broadcast DEMO #vip Halo")
    assert "Segmen yang ada" in bad
    await run_actor(h)  # nothing confirmed yet: nothing sent
    assert not any("Jangan lupa" in t for t in h.fake.texts_to(buyers[0]))


async def _with_templates(h: Harness, *, rate: int = 650) -> None:
    from storage.repo import messaging

    async with h.db.transaction() as session:
        for locale, language in (("id", "id"), ("en", "en_US")):
            await messaging.set_template(
                session,
                "broadcast",
                locale=locale,
                name="jastipin_broadcast",
                language=language,
                category="marketing",
            )
        await messaging.set_rate(session, "marketing", rate)
        await messaging.set_rate(session, "utility", 300)


async def test_outside_the_window_a_template_goes_and_a_late_free_message_falls_back(
    harness: Harness,
) -> None:
    """Meta's way: a free message after the window closed is accepted, then fails with
    131047 in a status webhook; the template goes instead, and the cost is what the
    status webhooks' pricing says."""
    from tests.conftest import APP_SECRET

    h = harness
    await h.seed_demo()
    await _with_templates(h)
    inside, outside, closed = [await joined(h, name) for name in ("In", "Out", "Closed")]
    await last_wrote_days_ago(h, "Out", 2)
    h.fake.window_closed = {closed}  # our clock says open, Meta's says closed
    h.fake.status_webhook = (str(h.client.make_url("/api/webhooks/whatsapp")), APP_SECRET)
    # Meta bills this template as utility, not the marketing we estimated
    h.fake.template_categories = {"jastipin_broadcast": "utility"}
    (estimate,) = await tina(h, f"/broadcast DEMO {BROADCAST_TEXT}")
    assert "Berbayar: 1" in estimate and "Perkiraan biaya: Rp 650" in estimate
    await h.tap_title(DEMO_PHONE, "Kirim")
    await run_actor(h)
    for _ in range(50):  # statuses arrive over the webhook; the fallback is queued and sent
        await h.settle()
        if len(templates_to(h, closed)) == 1 and len(h.fake.statuses_posted) >= 7:
            break
        await asyncio.sleep(0.05)
    assert [t for t in h.fake.texts_to(inside) if BROADCAST_TEXT in t] == [
        f"📢 *Jastip Tokyo Demo*\n{BROADCAST_TEXT}"
    ]
    assert templates_to(h, inside) == []
    for number in (outside, closed):
        (template,) = templates_to(h, number)
        assert template["name"] == "jastipin_broadcast" and template["language"]["code"] == "id"
        params = [p["text"] for p in template["components"][0]["parameters"]]
        assert params == ["Jastip Tokyo Demo", BROADCAST_TEXT]
    assert [e["code"] for _p, e in h.fake.rejected] == [131047]
    async with h.db.read() as session:
        modes = sorted(
            (await session.execute(select(BroadcastDelivery.mode, BroadcastDelivery.status))).all()
        )
    assert modes == [("free", "sent"), ("template", "sent"), ("template", "sent")]
    await h.settle()
    (report,) = await tina(h, "/broadcast status")
    assert "3 terkirim" in report and "biaya Rp 600" in report  # 2 × utility Rp 300


async def test_131047_answered_at_once_also_falls_back_and_free_only_skips(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    await _with_templates(h)
    closed, outside = [await joined(h, name) for name in ("Closed", "Out")]
    await last_wrote_days_ago(h, "Out", 3)
    h.fake.window_closed = {closed}
    await tina(h, f"/broadcast DEMO {BROADCAST_TEXT}")
    (queued,) = await h.tap_title(DEMO_PHONE, "Gratis saja")
    assert "antrean untuk 1 penerima" in queued
    await run_actor(h)
    await h.app[OUTBOX].flush()
    # free only: nobody gets a (paid) template, the closed window is a recorded failure
    assert templates_to(h, outside) == [] and templates_to(h, closed) == []
    async with h.db.read() as session:
        outcome = sorted(
            (
                await session.execute(
                    select(BroadcastDelivery.status, BroadcastDelivery.error_code)
                )
            ).all()
        )
    assert outcome == [("failed", 131047), ("skipped", 131047)]
    await tina(h, "/broadcast DEMO Diskon akhir pekan!")
    await h.tap_title(DEMO_PHONE, "Kirim")
    await run_actor(h)
    await h.app[OUTBOX].flush()
    assert len(templates_to(h, closed)) == 1 and len(templates_to(h, outside)) == 1
    summary = h.fake.texts_to(DEMO_PHONE)[-1]
    assert "2 terkirim, 0 gagal" in summary and "Biaya: Rp 1.300" in summary


async def test_a_buyer_who_stopped_marketing_at_meta_gets_no_more_broadcasts(
    harness: Harness,
) -> None:
    """131050 (the user turned marketing messages off in WhatsApp), answered at once or
    in a status webhook: recorded, and the next broadcast leaves them out until they
    write START."""
    from bot import simulate

    h = harness
    numbers = await _confirmed_broadcast(h, buyers=3, stop=0)
    h.fake.fail_next(code=131050, http_status=400, title="User's marketing off", to=numbers[0])
    await run_actor(h)
    await h.app[OUTBOX].flush()
    # the other one says so later, in a failed status webhook
    (sent,) = [m for m in h.fake.sent_to(numbers[1]) if BROADCAST_TEXT in str(m)]
    await h.post(simulate.status(sent["wamid"], "failed", numbers[1], error_code=131050))
    await h.settle()
    (estimate,) = await tina(h, "/broadcast DEMO Ada diskon")
    assert "Penerima: 1" in estimate
    await h.say(numbers[0], "START")
    (estimate,) = await tina(h, "/broadcast DEMO Ada diskon")
    assert "Penerima: 2" in estimate


async def test_a_broadcast_whose_last_send_a_status_webhook_confirmed_still_finishes(
    harness: Harness,
) -> None:
    """Meta took the send but its answer was lost; the status webhook settles it later,
    after every worker has moved on: the broadcast still finishes and the jastiper
    hears once."""
    from bot import simulate
    from bot.jobs import finish_settled

    h = harness
    numbers = await _confirmed_broadcast(h, buyers=2, stop=0)
    async with h.db.read() as session:
        broadcast_id = (await session.execute(select(Broadcast.id))).scalar_one()
    await fan_out(h.db, broadcast_id)
    h.fake.disconnect_next(1)
    await h.app[OUTBOX].flush()
    first = next(m for m in h.fake.sent if BROADCAST_TEXT in str(m) and m["to"] in numbers)
    await h.post(
        simulate.status(
            first["wamid"], "sent", first["to"], tracker=first["biz_opaque_callback_data"]
        )
    )
    await h.settle()
    await h.app[OUTBOX].recover()
    assert await finish_settled(h.db) == 1  # what the scheduler and workers run
    assert await finish_settled(h.db) == 0
    await h.app[OUTBOX].flush()
    async with h.db.read() as session:
        assert (await session.execute(select(Broadcast.status))).scalar_one() == "done"
    assert sum("selesai" in t for t in h.fake.texts_to(DEMO_PHONE)) == 1


async def test_two_workers_finishing_at_once_tell_the_jastiper_once(harness: Harness) -> None:
    from sqlalchemy import update

    from bot.jobs import finish_if_done

    h = harness
    await _confirmed_broadcast(h, buyers=2, stop=0)
    async with h.db.read() as session:
        broadcast_id = (await session.execute(select(Broadcast.id))).scalar_one()
    await fan_out(h.db, broadcast_id)
    await h.app[OUTBOX].flush()
    async with h.db.transaction() as session:  # as just before the last two batches
        await session.execute(update(Broadcast).values(status="sending"))
    before = sum("selesai" in t for t in h.fake.texts_to(DEMO_PHONE))
    results = await asyncio.gather(
        finish_if_done(h.db, broadcast_id), finish_if_done(h.db, broadcast_id)
    )
    await h.app[OUTBOX].flush()
    assert results.count(True) == 1
    assert sum("selesai" in t for t in h.fake.texts_to(DEMO_PHONE)) - before == 1


async def test_sends_waiting_their_turn_are_held_back_when_meta_says_slow_down(
    harness: Harness,
) -> None:
    h = harness
    numbers = await _confirmed_broadcast(h, buyers=3, stop=0)
    async with h.db.read() as session:
        broadcast_id = (await session.execute(select(Broadcast.id))).scalar_one()
    await fan_out(h.db, broadcast_id)
    outbox = h.app[OUTBOX]
    pace = outbox.pace
    assert pace is not None
    pace.rate = pace.configured_rate = 2  # two a second: the second send waits 0.5 s
    passing = asyncio.create_task(outbox.send_due())
    await asyncio.sleep(0.2)
    await pace.pause()  # as if another send had just got 130429
    await passing
    got = [n for n in numbers if any(BROADCAST_TEXT in t for t in h.fake.texts_to(n))]
    assert len(got) == 1, "the one that waited for its turn was not sent"
    async with h.db.read() as session:
        held = (
            await session.execute(
                select(OutboxMessage.status, OutboxMessage.error_code).where(
                    OutboxMessage.broadcast_id == broadcast_id,
                    OutboxMessage.status != "sent",
                )
            )
        ).all()
    # the held-back one waits out the pause (not failed); the third was never claimed
    assert sorted(held, key=str) == [("pending", 130429), ("pending", None)]


async def test_a_pace_that_cannot_answer_holds_sends_back_without_losing_the_batch(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis gone mid-broadcast: nothing is sent, nothing is left 'sending' for lease
    recovery to resend later; the rows simply wait for another try."""
    h = harness
    numbers = await _confirmed_broadcast(h, buyers=3, stop=0)
    async with h.db.read() as session:
        broadcast_id = (await session.execute(select(Broadcast.id))).scalar_one()
    await fan_out(h.db, broadcast_id)
    pace = h.app[OUTBOX].pace

    async def unavailable() -> int:
        raise ConnectionError("Redis is gone")

    monkeypatch.setattr(pace, "space", unavailable)
    assert await h.app[OUTBOX].send_due() == 3
    assert not any(BROADCAST_TEXT in t for n in numbers for t in h.fake.texts_to(n))
    async with h.db.read() as session:
        states = (
            await session.execute(
                select(OutboxMessage.status).where(OutboxMessage.broadcast_id == broadcast_id)
            )
        ).scalars()
        assert sorted(states) == ["pending"] * 3

"""Broadcasts through the real processes, on Postgres and Redis: ``jastipin serve``, two
``jastipin worker`` processes sharing the Dramatiq broker and the pace, and
``jastipin scheduler`` — and one of the workers killed with SIGKILL mid-broadcast."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import simulate
from bot.inbox import split_update
from bot.pace import granted
from storage.db import Database
from storage.demo import DEMO_PHONE
from storage.models import (
    OutboxMessage,
)
from storage.repo import inbox as inbox_repo
from storage.sealed import open_cipher
from tests import stack as e2e
from tests.conftest import (
    APP_SECRET,
    phone,
)
from tests.fakes.graph_api import message_text
from tests.stack import (
    GRACE_SECONDS,
    LEASE_SECONDS,
    QUERY_SECONDS,
    START_SECONDS,
    Stack,
    jastipers_broadcast,
    seed_participants,
    until_drained,
)
from tests.stack import stack as stack

# Real processes (serve, two or three workers, the scheduler) on Postgres and Redis, each
# start-up a few seconds of imports: 80-140 s per test on a machine 8 people share, well
# over the suite's 120 s; every wait inside has its own deadline (each test's sum < 600 s)
pytestmark = pytest.mark.timeout(600)


def _assert_no_numbers_in_logs(s: Stack, numbers: list[str]) -> None:
    logs = s.log_text()
    assert logs, "the processes wrote no logs at all"
    leaked = [n for n in [*numbers, DEMO_PHONE] if n in logs]
    assert not leaked, f"{len(leaked)} phone number(s) reached the logs"


async def test_broadcast_reaches_every_subscribed_buyer_once_through_two_workers(
    stack: Stack,
) -> None:
    """20 buyers join the demo trip, one sends STOP; the demo jastiper sends
    ``/broadcast DEMO …``, sees the estimate, confirms; each of the 19 gets the text
    exactly once and the 20th nothing — with Redis and two ``jastipin worker``
    processes."""
    s = stack
    s.env.update(BROADCAST_RATE_LIMIT="10", BROADCAST_NUMBER_CAP="15")
    s.fake.status_webhook = (f"http://127.0.0.1:{s.port}/api/webhooks/whatsapp", APP_SECRET)
    text = f"Matcha Kit Kat sudah datang! ({secrets.token_hex(3)})"
    await s.run("db", "upgrade")
    await s.run("demo")
    await asyncio.gather(s.serve(), s.start("worker-1", "worker"), s.start("worker-2", "worker"))

    # the automatic summary depends on the day and hour: not part of this test
    await e2e.say(s, DEMO_PHONE, "/summary DEMO off", name="Tina", expect="Ringkasan DEMO")
    buyers = [phone() for _ in range(20)]
    await asyncio.gather(*(e2e.join(s, n, f"B{i}") for i, n in enumerate(buyers)))
    await e2e.say(s, buyers[0], "STOP", name="B0", expect="tidak akan menerima info")
    await e2e.say(s, DEMO_PHONE, f"/broadcast DEMO {text}", name="Tina", expect="Penerima: 19")
    await e2e.tap(s, DEMO_PHONE, "Kirim", name="Tina", expect="masuk antrean untuk 19 penerima")
    assert not e2e.received(s.fake, text) - Counter({DEMO_PHONE: 1}), "sent before the scheduler"

    await s.run("scheduler", "--once")
    summary = "Broadcast DEMO selesai: 19 terkirim"
    await e2e.until(
        lambda: (
            len(e2e.received(s.fake, text)) >= 20  # the 19 and Tina's estimate
            and any(summary in t for t in s.fake.texts_to(DEMO_PHONE))
        ),
        within=30,
        what=lambda: (
            f"{len(e2e.received(s.fake, text)) - 1} of 19 buyers got the broadcast; "
            f"Tina's last message: {s.fake.texts_to(DEMO_PHONE)[-1:]}\n{s.log_text()[-3000:]}"
        ),
    )
    db = Database(s.db_url)
    try:
        await until_drained(db, within=15)
        status, deliveries = await jastipers_broadcast(db)
    finally:
        await db.dispose()

    got = e2e.received(s.fake, text)
    assert buyers[0] not in got, "the buyer who sent STOP got the broadcast"
    assert {n: got[n] for n in buyers[1:]} == dict.fromkeys(buyers[1:], 1)
    assert deliveries == {"sent": 19}
    assert status == "done", f"every delivery is sent, yet the broadcast is still {status!r}"
    summaries = [t for t in s.fake.texts_to(DEMO_PHONE) if "Broadcast DEMO selesai" in t]
    assert len(summaries) == 1, f"Tina got {len(summaries)} summaries: {summaries}"
    assert "19 terkirim, 0 gagal" in summaries[0]
    assert "broadcast fanned out" in s.log_text("worker-1") + s.log_text("worker-2")
    _assert_no_numbers_in_logs(s, buyers)


class GrantedSeconds:
    """What the senders granted, second by second, read from the pace's Redis counters
    (kept a minute each) every half second while a test runs, so none is missed."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.seconds: dict[int, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None

    async def read(self) -> None:
        for second, (replies, broadcasts) in (await granted(self.client, self.prefix)).items():
            seen = self.seconds.get(second, (0, 0))
            self.seconds[second] = (max(seen[0], replies), max(seen[1], broadcasts))

    async def _watch(self) -> None:
        while True:  # until stop() cancels it: the test holds it in a try/finally
            async with asyncio.timeout(QUERY_SECONDS):
                await self.read()
            await asyncio.sleep(0.5)

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # wait() neither raises the watcher's CancelledError nor swallows one aimed at
            # the test itself (suppress(CancelledError) around the await would: a test
            # cancelled at its time limit then went on as if nothing had happened)
            await asyncio.wait({self._task})
            self._task = None
        async with asyncio.timeout(QUERY_SECONDS):
            await self.read()


async def _kill_mid_broadcast(
    s: Stack, text: str, total: int
) -> tuple[int, int, str, dict[str, int]]:
    """The scheduler dispatches the broadcast; worker-1 is killed with a third sent and
    worker-3 started; after lease + grace one more scheduler pass. Returns how many were
    sent at the kill, how many rows were claimed again, the broadcast's status and its
    deliveries by status."""
    await s.run("scheduler", "--once")
    await e2e.until(
        lambda: sum(e2e.received(s.fake, text).values()) >= total // 3,
        within=30,
        what=lambda: (
            f"only {sum(e2e.received(s.fake, text).values())} sent\n{s.log_text()[-3000:]}"
        ),
    )
    await s.kill("worker-1")
    at_kill = sum(e2e.received(s.fake, text).values())
    await s.start("worker-3", "worker")
    await e2e.until(  # the unsent ones go out again after their lease and the grace
        lambda: len(e2e.received(s.fake, text)) == total,
        within=LEASE_SECONDS + GRACE_SECONDS + 45,
        what=lambda: f"{len(e2e.received(s.fake, text))} of {total} recipients got it",
    )
    # Longer than lease + grace: a row wrongly thought unsent would be sent again now.
    await asyncio.sleep(LEASE_SECONDS + GRACE_SECONDS + 1)
    await s.run("scheduler", "--once")  # one more recovery pass, then let it settle
    db = Database(s.db_url)
    try:
        await until_drained(db, within=15)
        status, deliveries = await jastipers_broadcast(db)
        async with asyncio.timeout(QUERY_SECONDS), db.read() as session:
            resent = (
                await session.execute(
                    select(func.count(OutboxMessage.id)).where(
                        OutboxMessage.broadcast_id.is_not(None), OutboxMessage.attempts > 1
                    )
                )
            ).scalar_one()
    finally:
        await db.dispose()
    return at_kill, resent, status, deliveries


async def test_a_worker_killed_mid_broadcast_leaves_every_recipient_exactly_one_message(
    stack: Stack, redis_client: Any
) -> None:
    """A worker killed with SIGKILL mid-broadcast and restarted → every recipient
    exactly once: what it sent but never recorded is confirmed from the status webhook,
    what it claimed but never sent goes out again after its lease and the grace."""
    s = stack
    s.env.update(BROADCAST_RATE_LIMIT="40", BROADCAST_NUMBER_CAP="60")
    s.fake.latency = 0.05
    s.fake.status_webhook = (f"http://127.0.0.1:{s.port}/api/webhooks/whatsapp", APP_SECRET)
    text = f"Restock Royce besok pagi! ({secrets.token_hex(3)})"
    total = 300
    await s.run("db", "upgrade")
    await s.run("demo")
    numbers = await seed_participants(s, total, text)
    await asyncio.gather(s.serve(), s.start("worker-1", "worker"), s.start("worker-2", "worker"))

    watch = GrantedSeconds(redis_client, s.prefix)
    watch.start()
    try:
        at_kill, resent, status, deliveries = await _kill_mid_broadcast(s, text, total)
    finally:
        await watch.stop()

    got = e2e.received(s.fake, text)
    twice = {n: c for n, c in got.items() if c != 1}
    print(f"killed after {at_kill} sends; {resent} row(s) claimed again after the kill")
    assert not twice, f"{len(twice)} recipient(s) got it more than once: {sorted(twice.values())}"
    assert set(got) == set(numbers)
    assert not {"pending", "queued"} & set(deliveries), deliveries
    assert deliveries == {"sent": total}
    assert status == "done", f"every delivery is sent, yet the broadcast is still {status!r}"
    summaries = [t for t in s.fake.texts_to(DEMO_PHONE) if "Broadcast DEMO selesai" in t]
    assert len(summaries) == 1, f"Tina got {len(summaries)} summaries: {summaries}"
    assert f"{total} terkirim, 0 gagal" in summaries[0]
    # the shared cap held across the workers, the killed one and its replacement included
    # (3 workers × 40/s would be 120/s without it), counted where the senders took their
    # slots: replies and broadcast sends together, never more than 60 in a second, and
    # broadcasts never in the 6 kept for replies (60 // 10)
    slots = watch.seconds
    assert sum(b for _r, b in slots.values()) >= total, f"slots not all seen: {slots}"
    assert max(r + b for r, b in slots.values()) <= 60, slots
    assert max(b for _r, b in slots.values()) <= 60 - 6, slots
    # where "Meta" received them, for information only: a loaded machine bunches arrivals
    per_second = Counter(int(m["at"]) for m in s.fake.sent if text in (message_text(m) or ""))
    print(f"busiest second at the fake: {max(per_second.values())} (cap 60)")
    _assert_no_numbers_in_logs(s, numbers)


async def test_a_worker_beside_an_inline_api_takes_only_the_units_it_left(stack: Stack) -> None:
    """With the API processing inline, a unit it is still working through is not a
    worker's to take (both would parse it and wait on each other's row locks); one left
    pending for six sweeps is — a crashed API's message still gets its answer."""
    s = stack
    s.env["INBOX_SWEEP_SECONDS"] = "0.5"  # the API's own for 6 × 0.5 = 3 s
    await s.run("db", "upgrade")
    await s.run("demo")
    await s.start("worker-1", "worker")
    await e2e.until(
        lambda: "worker started" in s.log_text("worker-1"),
        within=START_SECONDS,
        what=lambda: s.log_text("worker-1")[-3000:],
    )
    open_cipher(s.pii_key)  # the stored body is sealed with the stack's key
    buyer = phone()
    db = Database(s.db_url)
    loop = asyncio.get_running_loop()
    try:
        async with db.transaction() as session:
            # as the API stores a webhook, then crashes before processing it
            await inbox_repo.store_units(
                session, split_update(simulate.text(buyer, "MENU", name="Lina"))
            )
        stored = loop.time()
        await e2e.until(
            lambda: bool(s.fake.sent_to(buyer)),
            within=30,
            what=lambda: s.log_text("worker-1")[-3000:],
        )
        answered = loop.time() - stored
    finally:
        await db.dispose()
    assert answered >= 2.5, f"taken after {answered:.1f} s, while the API may hold it"
    assert "belum bergabung" in (message_text(s.fake.sent_to(buyer)[0]) or "")

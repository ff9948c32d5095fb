"""The send pace: ``BROADCAST_RATE_LIMIT`` broadcast messages per second per worker, a
per-second cap for the phone number shared by every worker (Redis) that counts replies
and broadcasts together, replies first, and the two-minute pause after Meta's 130429
rate limit on a broadcast send (runbook E), after which broadcasts resume at half the
rate. A 130429 on a reply does not stop anything: replies count against half the cap
for ``SLOW_REPLY_SECONDS`` and that reply goes again within seconds (issue #28).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bot import metrics
from services import tier

log = logging.getLogger(__name__)

PAUSE_SECONDS = 120
RECOVER_SECONDS = 600  # ten minutes without a 130429: back to the configured rate
EDGE = 0.1  # no shared-cap slot in a second's last 100 ms: the send could land in the next
KEEP_SECONDS = 60  # each second's count stays readable in Redis for a minute
REPLY_LOOKAHEAD = 4  # a reply finding its second full books one of the next three
REPLY_ASK_SECONDS = 0.25  # a reply waits no longer than this for Redis to answer
AWAY_SECONDS = 5.0  # after a Redis error, replies go uncounted this long without asking
SLOW_REPLY_SECONDS = 10.0  # after a reply's 130429: replies take half the cap this long


class LocalPace:
    """One worker's pace: at most ``rate`` broadcast rows claimed in any calendar second,
    and their sends started ``1 / rate`` apart (:meth:`space`), so a claim of many rows
    never lands in Meta's same instant; pause and slow-down kept in memory."""

    def __init__(self, rate: float, *, pause_seconds: float = PAUSE_SECONDS) -> None:
        self.rate = rate
        self.configured_rate = rate
        self.pause_seconds = pause_seconds
        self._slowed_at = 0.0
        self._next_turn = 0.0
        self._paused_until = 0.0
        self._second = 0
        self._used = 0

    async def space(self) -> int:
        """Wait for this send's turn: this worker's broadcast sends start ``1 / rate``
        apart, so what Meta receives in any one second stays within the rate even when a
        whole claim of rows goes out at once."""
        now = time.monotonic()
        # a turn missed by a busy event loop may be made up, by 20 ms at most
        turn = max(now - 0.02, self._next_turn)
        self._next_turn = turn + 1.0 / self.rate
        if turn > now:
            await asyncio.sleep(turn - now)
        return int(time.time())  # the second this send starts in

    async def paused(self) -> bool:
        return self.pausing()

    async def reply_slot(self) -> int | None:
        """Replies are not counted by this pace alone (see :class:`CappedPace`)."""
        return None

    def slow_replies(self) -> None:
        """Meta said 130429 to a reply. Without a cap to count against there is nothing
        to lower: the reply's own short retry (``bot.outbox.backoff``) is the slowing."""

    def pausing(self) -> bool:
        """This worker knows of a pause now (no Redis round trip: asked per send)."""
        return time.monotonic() < self._paused_until

    async def pause(self) -> None:
        self._paused_until = time.monotonic() + self.pause_seconds
        self._slow_down()

    def _slow_down(self) -> None:
        """Resume at half the rate after a pause; the full rate comes back after ten
        quiet minutes."""
        self.rate = max(1.0, self.rate / 2)
        self._slowed_at = time.monotonic()

    def refund(self, unused: int) -> None:
        """Give back what was granted but not used (fewer rows were due)."""
        if unused > 0:
            self._used = max(0, self._used - unused)

    async def take(self, wanted: int) -> int:
        """How many broadcast sends may start now (at most ``wanted``)."""
        if await self.paused():
            return 0
        now = time.monotonic()
        if self.rate < self.configured_rate and now - self._slowed_at > RECOVER_SECONDS:
            self.rate = self.configured_rate
        second = int(time.time())
        if second != self._second:
            self._second, self._used = second, 0
        granted = max(0, min(wanted, int(self.rate) - self._used))
        self._used += granted
        return granted


class CappedPace(LocalPace):
    """The local pace plus the phone number's per-second cap, replies and broadcasts
    together, replies first: a broadcast send takes a slot only while its second holds
    fewer than ``cap - reply_reserve`` (see :meth:`space`); a reply takes one while it
    holds fewer than ``cap``, booking the next second with room when this one is full
    (see :meth:`reply_slot`). Where the seconds are counted is the subclass's:
    :class:`InProcessPace` in memory (one process, no Redis), :class:`SharedPace` in
    Redis (every worker)."""

    def __init__(
        self,
        rate: float,
        *,
        cap: int,
        reply_reserve: int = 0,
        pause_seconds: float = PAUSE_SECONDS,
    ) -> None:
        super().__init__(rate, pause_seconds=pause_seconds)
        self.cap = cap
        self.reply_reserve = min(max(0, reply_reserve), cap - 1)
        self.reply_waits = 0  # replies that found their second full and took a later one
        self._away_until = 0.0
        self._replies_slow_until = 0.0

    def slow_replies(self) -> None:
        """Meta said 130429 to a reply: for ``SLOW_REPLY_SECONDS`` this worker's replies
        count against half the cap (arrivals bunch more than the counter saw); broadcasts
        go on within their own share, no two-minute stop."""
        self._replies_slow_until = time.monotonic() + SLOW_REPLY_SECONDS
        metrics.REPLY_SLOWDOWNS.inc()
        log.warning("reply rate limited: replies slowed", extra={"seconds": SLOW_REPLY_SECONDS})

    def reply_cap(self) -> int:
        """The per-second count under which a reply takes a slot: the cap, or half of it
        for a while after a reply's 130429."""
        if time.monotonic() < self._replies_slow_until:
            return max(1, self.cap // 2)
        return self.cap

    async def take_broadcast_slot(self, second: int) -> bool:
        raise NotImplementedError

    async def space(self) -> int:
        """This worker's turn, then a broadcast slot in the number's current second: at
        most ``cap - reply_reserve`` sends start in any calendar second across all
        workers, fewer when replies took some (counted when they start, not when their
        rows were claimed, which may be a second earlier)."""
        await super().space()
        while True:
            now = time.time()
            second = int(now)
            if now - second > 1 - EDGE:
                # too late in this second: the request could reach Meta in the next one
                await asyncio.sleep(second + 1 - now)
                continue
            if await self.take_broadcast_slot(second):
                return second
            await asyncio.sleep(max(0.001, second + 1 - time.time()))

    async def take_reply_slot(self, first: int) -> int | None:
        """One reply in the first second from ``first`` on with room under the reply cap
        (a few seconds ahead at most): the second booked, or None when all are full."""
        taken = await self.take_reply_place(first)
        return None if taken is None else taken[0]

    async def take_reply_place(self, first: int) -> tuple[int, int] | None:
        """:meth:`take_reply_slot` with the sends counted in that second before this one
        (its place in the second: where in the second it starts)."""
        raise NotImplementedError

    async def reply_slot(self) -> int | None:
        """A reply's slot, counted in the second it reaches Meta, and its start spread
        over that second: the k-th send counted in second S starts no earlier than
        ``S + k / cap`` (less the ``EDGE``), never before S itself. Replies that found
        their second full and booked a later one therefore do not all start at its first
        instant (or, waking a little early, in the second before, already full): the
        number's arrivals stay under the cap in every second, where Meta counts them.
        Never raises, and never holds a reply up on the counter: on an error or an
        answer slower than ``REPLY_ASK_SECONDS`` the reply goes out uncounted, and
        replies do not ask again for ``AWAY_SECONDS``."""
        if time.monotonic() < self._away_until:
            return None
        while True:
            first = int(time.time() + EDGE)
            try:
                taken = await asyncio.wait_for(self.take_reply_place(first), REPLY_ASK_SECONDS)
            except Exception as exc:  # Redis away or slow: the reply goes out anyway
                self._away_until = time.monotonic() + AWAY_SECONDS
                metrics.REPLIES_UNCOUNTED.inc()
                log.warning("reply slot unavailable", extra={"error": type(exc).__name__})
                return None
            if taken is None:  # replies alone fill the next seconds: ask again later
                await asyncio.sleep(max(0.001, first + REPLY_LOOKAHEAD - EDGE - time.time()))
                continue
            second, place = taken
            if second > first:
                self.reply_waits += 1
                metrics.REPLY_SLOT_WAITS.inc()
            await asyncio.sleep(max(0.0, self.start_of(second, place) - time.time()))
            return second

    def start_of(self, second: int, place: int) -> float:
        """When the send counted ``place``-th in ``second`` may start: spread over the
        second at the cap's rate, the last ``EDGE`` left free."""
        return second + min(place, self.cap) / self.cap * (1 - EDGE)


class InProcessPace(CappedPace):
    """The number's cap counted in this process's memory: the embedded default (one
    ``jastipin serve``, no Redis) keeps within the number's tier too, replies first."""

    def __init__(self, rate: float, *, cap: int, reply_reserve: int = 0) -> None:
        super().__init__(rate, cap=cap, reply_reserve=reply_reserve)
        self._seconds: dict[int, list[int]] = {}  # epoch second -> [replies, broadcasts]

    def _counts(self, second: int) -> list[int]:
        if len(self._seconds) > KEEP_SECONDS:  # forget seconds older than a minute
            for old in [k for k in self._seconds if k < second - KEEP_SECONDS]:
                del self._seconds[old]
        return self._seconds.setdefault(second, [0, 0])

    async def take_broadcast_slot(self, second: int) -> bool:
        counts = self._counts(second)
        if sum(counts) >= self.cap - self.reply_reserve:
            return False
        counts[1] += 1
        return True

    async def take_reply_place(self, first: int) -> tuple[int, int] | None:
        cap = self.reply_cap()
        for second in range(first, first + REPLY_LOOKAHEAD):
            counts = self._counts(second)
            taken = sum(counts)
            if taken < cap:
                counts[0] += 1
                return second, taken
        return None

    def granted(self) -> dict[int, tuple[int, int]]:
        """The last minute as counted: ``{epoch second: (replies, broadcasts)}``."""
        return {k: (v[0], v[1]) for k, v in self._seconds.items()}


class SharedPace(CappedPace):
    """The number's cap across all workers, and a pause every worker sees, both in Redis.

    Each second of the number is a hash ``<prefix>:pace:sec:<epoch second>`` counting
    the replies (``r``) and broadcast sends (``b``) that start in it; the scripts below
    take a slot atomically. The hashes are kept a minute: they are the record of what
    was granted (:func:`granted`)."""

    _BROADCAST = """
    local h = redis.call('HMGET', KEYS[1], 'r', 'b')
    if (tonumber(h[1]) or 0) + (tonumber(h[2]) or 0) >= tonumber(ARGV[1]) then return 0 end
    redis.call('HINCRBY', KEYS[1], 'b', 1)
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    return 1
    """
    _REPLY = """
    for i, key in ipairs(KEYS) do
        local h = redis.call('HMGET', key, 'r', 'b')
        local taken = (tonumber(h[1]) or 0) + (tonumber(h[2]) or 0)
        if taken < tonumber(ARGV[1]) then
            redis.call('HINCRBY', key, 'r', 1)
            redis.call('EXPIRE', key, ARGV[2])
            return {i, taken}
        end
    end
    return {0, 0}
    """

    def __init__(
        self,
        rate: float,
        *,
        redis: Any,
        cap: int,
        prefix: str,
        reply_reserve: int = 0,
        pause_seconds: float = PAUSE_SECONDS,
    ) -> None:
        super().__init__(rate, cap=cap, reply_reserve=reply_reserve, pause_seconds=pause_seconds)
        self._in_pause = False
        self.redis = redis
        self.prefix = prefix
        self._broadcast_script = redis.register_script(self._BROADCAST)
        self._reply_script = redis.register_script(self._REPLY)

    def _key(self, second: int) -> str:
        return f"{self.prefix}:pace:sec:{second}"

    async def paused(self) -> bool:
        """The shared pause; a worker that sees one begin slows down too."""
        paused = bool(await self.redis.exists(f"{self.prefix}:pace:paused"))
        if paused and not self._in_pause:
            self._slow_down()
            self._paused_until = time.monotonic() + self.pause_seconds
        self._in_pause = paused
        return paused

    async def pause(self) -> None:
        if not self._in_pause:
            await super().pause()
            self._in_pause = True  # this worker slowed down already
        await self.redis.set(
            f"{self.prefix}:pace:paused", "1", px=max(1, int(self.pause_seconds * 1000))
        )

    async def take_broadcast_slot(self, second: int) -> bool:
        """One broadcast send in ``second``, if replies and broadcasts there leave room
        under ``cap - reply_reserve``."""
        keys = [self._key(second)]
        args = [self.cap - self.reply_reserve, KEEP_SECONDS]
        return bool(int(await self._broadcast_script(keys=keys, args=args)))

    async def take_reply_place(self, first: int) -> tuple[int, int] | None:
        keys = [self._key(first + i) for i in range(REPLY_LOOKAHEAD)]
        found, taken = await self._reply_script(keys=keys, args=[self.reply_cap(), KEEP_SECONDS])
        return (first + int(found) - 1, int(taken)) if int(found) else None


async def granted(redis: Any, prefix: str) -> dict[int, tuple[int, int]]:
    """The number's last minute as counted: ``{epoch second: (replies, broadcasts)}``."""
    out: dict[int, tuple[int, int]] = {}
    pattern = f"{prefix}:pace:sec:*"
    async for raw in redis.scan_iter(match=pattern, count=500):
        key = raw.decode() if isinstance(raw, bytes) else raw
        replies, broadcasts = await redis.hmget(key, "r", "b")
        out[int(key.rsplit(":", 1)[1])] = (int(replies or 0), int(broadcasts or 0))
    return out


def build_pace(settings: Any) -> LocalPace:
    if settings.redis_url:
        import redis.asyncio as aioredis

        # every send asks for a slot: wait for a free connection rather than fail with
        # "Too many connections" when many sends ask at once
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=32, timeout=10
        )
        client = aioredis.Redis(connection_pool=pool)
        cap = settings.broadcast_number_cap
        reserve = settings.reply_reserve
        return SharedPace(
            settings.broadcast_rate_limit,
            redis=client,
            cap=cap,
            reply_reserve=tier.reply_reserve(cap, reserve),
            prefix=settings.queue_prefix,
        )
    # no Redis: one process sends, and counts the number's seconds itself
    cap = settings.broadcast_number_cap
    reserve = settings.reply_reserve
    return InProcessPace(
        settings.broadcast_rate_limit,
        cap=cap,
        reply_reserve=tier.reply_reserve(cap, reserve),
    )

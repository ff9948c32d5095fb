"""The broadcast pace: ``BROADCAST_RATE_LIMIT`` messages per second per worker, a cap for
the phone number shared by every worker (Redis), and the two-minute pause after Meta's
130429 rate limit (runbook E), after which sending resumes at half the rate.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

PAUSE_SECONDS = 120
RECOVER_SECONDS = 600  # ten minutes without a 130429: back to the configured rate
EDGE = 0.1  # no shared-cap slot in a second's last 100 ms: the send could land in the next


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


class SharedPace(LocalPace):
    """The local pace plus a per-second cap for the phone number across all workers
    (taken per send, see :meth:`space`), and a pause every worker sees, both in Redis."""

    _TAKE = """
    local used = redis.call('INCRBY', KEYS[1], ARGV[1])
    if used == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], 2) end
    local over = used - tonumber(ARGV[2])
    if over > 0 then
        local give_back = math.min(over, tonumber(ARGV[1]))
        redis.call('DECRBY', KEYS[1], give_back)
        return tonumber(ARGV[1]) - give_back
    end
    return tonumber(ARGV[1])
    """

    def __init__(
        self,
        rate: float,
        *,
        redis: Any,
        cap: int,
        prefix: str,
        pause_seconds: float = PAUSE_SECONDS,
    ) -> None:
        super().__init__(rate, pause_seconds=pause_seconds)
        self._in_pause = False
        self.redis = redis
        self.cap = cap
        self.prefix = prefix
        self._script = redis.register_script(self._TAKE)

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

    async def space(self) -> int:
        """This worker's turn, then a slot in the number's current second: at most
        ``cap`` sends start in any calendar second across all workers (counted when they
        start, not when their rows were claimed, which may be a second earlier)."""
        await super().space()
        while True:
            now = time.time()
            second = int(now)
            if now - second > 1 - EDGE:
                # too late in this second: the request could reach Meta in the next one
                await asyncio.sleep(second + 1 - now)
                continue
            key = f"{self.prefix}:pace:{second}"
            if int(await self._script(keys=[key], args=[1, self.cap])):
                return second
            await asyncio.sleep(max(0.001, second + 1 - time.time()))


def build_pace(settings: Any) -> LocalPace:
    if settings.redis_url:
        import redis.asyncio as aioredis

        # every broadcast send asks for a slot: wait for a free connection rather than
        # fail with "Too many connections" when many sends ask at once
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=32, timeout=10
        )
        client = aioredis.Redis(connection_pool=pool)
        cap = settings.broadcast_number_cap
        return SharedPace(
            settings.broadcast_rate_limit, redis=client, cap=cap, prefix=settings.queue_prefix
        )
    return LocalPace(settings.broadcast_rate_limit)

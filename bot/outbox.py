"""The outbox dispatcher: sends committed replies, in order per recipient, with retries.

A row is claimed (status ``sending`` with a lease) in one short transaction, sent, then
recorded as sent with Meta's message id in another. Every send carries the row's
tracker (``biz_opaque_callback_data``), which Meta echoes in status webhooks: a row a
crashed dispatcher left in ``sending`` is confirmed by that status rather than sent
again, and only re-sent when no status arrived within a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot import metrics
from bot.pace import LocalPace
from bot.sends import RE_ENGAGEMENT
from bot.transport import RATE_LIMIT_CODES, WAIT_IT_OUT_CODES, SendFailure, Transport
from storage.crypto import PiiCipher
from storage.db import Database
from storage.models import OutboxMessage, User, utcnow
from storage.repo import broadcasts as broadcast_repo
from storage.repo import messaging
from storage.repo import outbox as outbox_repo
from storage.repo.users import send_address

log = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=60)
RESEND_GRACE = dt.timedelta(seconds=120)
MAX_ATTEMPTS = 8
WINDOW = dt.timedelta(hours=24)


def backoff(attempt: int, *, rate_limited: bool = False) -> dt.timedelta:
    """1 s, 2 s, 4 s, … capped at 5 minutes; a rate limit waits at least a minute."""
    seconds = min(300.0, 2.0 ** max(0, attempt - 1))
    if rate_limited:
        seconds = max(seconds, 60.0)
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    to: str
    payload: dict
    attempts: int
    in_window: bool
    broadcast_id: int | None = None


class OutboxDispatcher:
    """Drains the outbox through a transport. Safe to run in several processes."""

    def __init__(
        self,
        db: Database,
        transport: Transport,
        cipher: PiiCipher,
        *,
        batch: int = 50,
        poll_seconds: float = 0.5,
        default_rate: int = 0,
        pace: LocalPace | None = None,
        on_broadcast_progress: Callable[[int], Awaitable[None]] | None = None,
        lease: dt.timedelta = LEASE,
        resend_grace: dt.timedelta = RESEND_GRACE,
    ) -> None:
        self.db = db
        self.transport = transport
        self.cipher = cipher
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.default_rate = default_rate
        self._rates: dict[str, int] = {}
        self._rates_at = -1e9
        self.pace = pace
        self.on_broadcast_progress = on_broadcast_progress
        self.lease = lease
        self.resend_grace = resend_grace
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """New rows were committed: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Send forever (until cancelled)."""
        last_recovery = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() - last_recovery > 10:
                    await self.recover()
                    last_recovery = loop.time()
                sent = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox dispatcher pass failed")
                sent = 0
            if sent == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    async def recover(self) -> tuple[int, int]:
        async with self.db.transaction() as session:
            return await outbox_repo.recover_expired_leases(session, grace=self.resend_grace)

    async def flush(self, *, max_passes: int = 100) -> int:
        """Send everything due now (tests, the CLI); return how many rows were handled."""
        total = 0
        for _ in range(max_passes):
            n = await self.send_due()
            if n == 0:
                break
            total += n
        return total

    async def send_due(self) -> int:
        claimed = await self._claim()
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._send_one(c) for c in claimed))
        touched: set[int] = set()
        async with self.db.transaction() as session:
            await self._load_rates(session)
            for item, result in zip(claimed, results, strict=True):
                await self._record(session, item, result)
                if item.broadcast_id is not None:
                    touched.add(item.broadcast_id)
                    await broadcast_repo.record_delivery(session, item.id)
        for failure in results:
            if isinstance(failure, SendFailure) and failure.code == 130429 and self.pace:
                await self.pace.pause()  # runbook E: every worker waits two minutes
        if self.on_broadcast_progress is not None:
            for broadcast_id in touched:
                await self.on_broadcast_progress(broadcast_id)
        return len(claimed)

    async def _load_rates(self, session) -> None:  # type: ignore[no-untyped-def]
        """The rate table, read at most once a minute (it changes when Meta's prices do)."""
        now = asyncio.get_running_loop().time()
        if now - self._rates_at > 60:
            self._rates = await messaging.rates(session, default=self.default_rate)
            self._rates_at = now

    async def _claim(self) -> list[_Claimed]:
        granted = await self.pace.take(self.batch) if self.pace is not None else None
        async with self.db.transaction() as session:
            rows = await outbox_repo.claim_batch(
                session, limit=self.batch, lease=self.lease, broadcast_limit=granted
            )
            out = []
            now = utcnow()
            for row in rows:
                user = await session.get(User, row.user_id)
                assert user is not None
                in_window = bool(user.last_inbound_at and now - user.last_inbound_at < WINDOW)
                out.append(
                    _Claimed(
                        id=row.id,
                        to=send_address(user, self.cipher),
                        payload=row.payload,
                        attempts=row.attempts,
                        in_window=in_window,
                        broadcast_id=row.broadcast_id,
                    )
                )
        if self.pace is not None and granted:
            self.pace.refund(granted - sum(1 for c in out if c.broadcast_id is not None))
        return out

    async def _send_one(self, item: _Claimed) -> str | SendFailure:
        start = asyncio.get_running_loop().time()
        try:
            wamid = await self.transport.send(
                item.to, item.payload, tracker=outbox_repo.tracker_for(item.id)
            )
        except SendFailure as failure:
            metrics.WA_SEND_ERRORS.labels(code=str(failure.code)).inc()
            return failure
        except Exception as exc:  # a bug in a payload must not stop the dispatcher
            log.exception("unexpected error sending outbox row %s", item.id)
            return SendFailure(code=None, title=type(exc).__name__, transient=True)
        finally:
            metrics.WA_SEND_SECONDS.observe(asyncio.get_running_loop().time() - start)
        return wamid

    async def _record(self, session, item: _Claimed, result: str | SendFailure) -> None:  # type: ignore[no-untyped-def]
        if isinstance(result, str):
            template = item.payload.get("type") == "template"
            billable = template or not item.in_window
            category = item.payload.get("category", "utility") if template else "service"
            # our estimate until the status webhook's pricing says what Meta bills
            cost = self._rates.get(category, self.default_rate) if billable else 0
            await outbox_repo.mark_sent(
                session, item.id, result, billable=billable, cost=cost, category=category
            )
            metrics.MESSAGES_SENT.labels(billable=str(billable).lower()).inc()
            return
        failure = result
        fallback = item.payload.get("fallback")
        if failure.code == RE_ENGAGEMENT and fallback:
            # the window closed before the free message went: send the approved template
            log.info("window closed, sending the template", extra={"outboxId": item.id})
            await outbox_repo.replace_payload(session, item.id, fallback)
            return
        if failure.ambiguous:
            # Leave it "sending" with an expired lease: recovery confirms it from the
            # status webhook carrying its tracker, or resends after the grace period.
            log.warning("send outcome unknown", extra={"outboxId": item.id})
            await outbox_repo.mark_uncertain(session, item.id, title=failure.title)
            return
        waits = failure.code in WAIT_IT_OUT_CODES
        if failure.transient and (waits or item.attempts < MAX_ATTEMPTS):
            delay = backoff(item.attempts, rate_limited=failure.code in RATE_LIMIT_CODES or waits)
            log.warning(
                "send failed, retrying",
                extra={"outboxId": item.id, "code": failure.code, "retryIn": delay.seconds},
            )
            await outbox_repo.mark_retry(
                session, item.id, delay=delay, code=failure.code, title=failure.title
            )
        else:
            log.warning("send failed for good", extra={"outboxId": item.id, "code": failure.code})
            await outbox_repo.mark_failed(session, item.id, code=failure.code, title=failure.title)


async def pending(db: Database) -> int:
    async with db.read() as session:
        return await outbox_repo.pending_count(session)


__all__ = ["OutboxDispatcher", "OutboxMessage", "backoff", "pending"]

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

from sqlalchemy.exc import DBAPIError

from bot import metrics
from bot.pace import LocalPace
from bot.retry import Backoff
from bot.transport import RATE_LIMIT_CODES, WAIT_IT_OUT_CODES, SendFailure, Transport
from services.sends import RE_ENGAGEMENT, in_window
from storage import trace
from storage.crypto import PiiCipher
from storage.db import Database, lock_conflict
from storage.models import OutboxMessage, OutboxStatus, utcnow
from storage.repo import broadcasts as broadcast_repo
from storage.repo import messaging
from storage.repo import outbox as outbox_repo
from storage.repo import users as users_repo
from storage.repo.statuses import MARKETING_OPT_OUT
from storage.repo.users import send_address

log = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=60)
RESEND_GRACE = dt.timedelta(seconds=120)
RECORD_ATTEMPTS = 3  # recording a batch of sends that met a deadlock: tries in all
MAX_ATTEMPTS = 8


def backoff(attempt: int, *, rate_limited: bool = False, reply: bool = False) -> dt.timedelta:
    """1 s, 2 s, 4 s, … capped at 5 minutes; a rate limit waits at least a minute, but a
    reply's 130429 only 2 s, 4 s, … up to a minute: a person is waiting for it and the
    number's next seconds have room (issue #28)."""
    seconds = min(300.0, 2.0 ** max(0, attempt - 1))
    if rate_limited and reply:
        seconds = min(60.0, max(2.0, seconds * 2))
    elif rate_limited:
        seconds = max(seconds, 60.0)
    return dt.timedelta(seconds=seconds)


class _Released:
    """A claimed row not sent because the process is stopping (handed back later)."""


_RELEASED = _Released()


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    to: str
    payload: dict
    attempts: int
    in_window: bool
    broadcast_id: int | None = None
    user_id: int = 0
    request_id: str | None = None  # the request whose work queued it
    trip_id: int | None = None

    def scope(self) -> contextlib.AbstractContextManager[None]:
        """Lines about this send carry the request that caused it and its ids."""
        return trace.scope(
            self.request_id, tripId=self.trip_id, userId=self.user_id, outboxId=self.id
        )


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
        lanes: int = 1,
        lane_transports: list[Transport] | None = None,
        after_recovery: Callable[[], Awaitable[object]] | None = None,
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
        self._progress_due: set[int] = set()
        self._progress_at = 0.0
        self.lease = lease
        self.resend_grace = resend_grace
        self.lanes = max(1, lanes)
        self.lane_transports = lane_transports or [transport]
        self.after_recovery = after_recovery
        self._wake = asyncio.Event()
        self._stopping = False
        # rows this process claimed whose send has not begun: what a shutdown hands back
        self._unstarted: set[int] = set()

    def notify(self) -> None:
        """New rows were committed: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Send forever (until cancelled), in ``lanes`` concurrent claim-send-record
        loops: while one lane waits for Meta's answers, the others claim and send, so the
        pace, not the Graph API's latency, sets the rate. A recipient's messages still go
        in order: a row is only claimed when no older one of theirs is open.

        Returns once :meth:`shutdown` asked it to stop and the sends in hand are done."""
        await asyncio.gather(*(self._lane(i) for i in range(self.lanes)))

    async def shutdown(self, running: asyncio.Task[None] | None, *, within: float) -> int:
        """Stop claiming, let the sends in flight finish (``running`` is the task of
        :meth:`run`; cancelled after ``within`` seconds), then hand the rows claimed but
        never sent back at once, so the next process sends them without waiting for their
        lease. A row whose send began is never handed back: it is recorded, or left to
        lease recovery (sent twice otherwise). Returns how many rows were handed back."""
        self._stopping = True
        self._wake.set()
        if running is not None:
            done, _ = await asyncio.wait({running}, timeout=within)
            if not done:
                log.warning("outbox sends still in flight at shutdown: left to lease recovery")
                running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        ids, self._unstarted = sorted(self._unstarted), set()
        if not ids:
            return 0
        async with self.db.transaction(urgent=True) as session:
            released = await outbox_repo.release_unsent(session, ids)
        log.info("outbox rows handed back at shutdown", extra={"released": released})
        return released

    async def _lane(self, index: int) -> None:
        last_recovery = 0.0
        loop = asyncio.get_running_loop()
        # a pass that fails (the database unreachable) is tried again after 2×, 4×, …
        # the poll interval, up to a minute: an outage costs a few lines, not a flood
        backoff = Backoff(self.poll_seconds)
        while not self._stopping:
            try:
                if index == 0 and loop.time() - last_recovery > 10:
                    await self.recover()
                    if self.after_recovery is not None:
                        await self.after_recovery()  # broadcasts settled by webhooks
                    last_recovery = loop.time()
                sent = await self.send_due(self.lane_transports[index % len(self.lane_transports)])
                backoff.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox dispatcher pass failed", extra={"try": backoff.failures + 1})
                wait = backoff.failed()
                with contextlib.suppress(TimeoutError):
                    # only shutdown cuts the wait short (nothing commits without a database)
                    await asyncio.wait_for(self._stop_requested(), timeout=wait)
                continue
            if sent == 0 and not self._stopping:
                try:
                    await self._report_progress(idle=True)
                except Exception:
                    log.exception("broadcast progress check failed")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    async def _stop_requested(self) -> None:
        while not self._stopping:
            self._wake.clear()
            await self._wake.wait()

    async def _report_progress(self, *, idle: bool) -> None:
        """Tell the broadcasts that were sent to (finish them, summary to the jastiper) at
        most once a second while busy — each check counts deliveries — and at once when
        the outbox runs dry, so the last batch is never left unreported."""
        if self.on_broadcast_progress is None or not self._progress_due:
            return
        now = asyncio.get_running_loop().time()
        if not idle and now - self._progress_at < 1.0:
            return
        self._progress_at = now
        due, self._progress_due = self._progress_due, set()
        for broadcast_id in due:
            await self.on_broadcast_progress(broadcast_id)

    async def recover(self) -> tuple[int, int]:
        async with self.db.transaction() as session:
            return await outbox_repo.recover_expired_leases(session, grace=self.resend_grace)

    async def flush(self, *, max_passes: int = 100) -> int:
        """Send everything due now (tests, the CLI); return how many rows were handled."""
        total = 0
        for _ in range(max_passes):
            n = await self.send_due()
            if n == 0:
                if not self._progress_due:
                    break
                await self._report_progress(idle=True)  # may queue a summary: go on
                continue
            total += n
        return total

    async def send_due(self, transport: Transport | None = None) -> int:
        claimed = await self._claim()
        if not claimed:
            return 0
        sender = transport or self.transport
        results = await asyncio.gather(*(self._send_one(sender, c) for c in claimed))
        for item, result in zip(claimed, results, strict=True):
            if result is not _RELEASED:  # sent, failed or held back: recorded below
                self._unstarted.discard(item.id)
        touched = {c.broadcast_id for c in claimed if c.broadcast_id is not None}
        sent = [(c, r) for c, r in zip(claimed, results, strict=True) if isinstance(r, str)]
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                async with self.db.transaction() as session:
                    await self._load_rates(session)
                    await self._record_sent(session, sent)
                    for item, result in zip(claimed, results, strict=True):
                        if isinstance(result, SendFailure):
                            with item.scope():
                                await self._record_failure(session, item, result)
                            if item.broadcast_id is not None:
                                await broadcast_repo.record_delivery(session, item.id)
                break
            except DBAPIError as exc:
                # what was sent must be recorded, or lease recovery sends it again: a
                # transaction Postgres picked as a deadlock's victim simply goes again
                if attempt == RECORD_ATTEMPTS or not lock_conflict(exc):
                    raise
                log.warning("recording sends met a lock conflict, again", extra={"try": attempt})
                await asyncio.sleep(0.05 * attempt)
        for item, _wamid in sent:  # counted once recorded (a record may go again)
            metrics.MESSAGES_SENT.labels(billable=str(_billable(item)).lower()).inc()
            with item.scope():  # a reply's line; a broadcast's thousands only at debug
                level = logging.INFO if item.broadcast_id is None else logging.DEBUG
                log.log(level, "outbox row sent", extra={"try": item.attempts})
        for item, failure in zip(claimed, results, strict=True):
            if (
                isinstance(failure, SendFailure)
                and failure.code == 130429
                and not failure.held_back
                and self.pace
            ):
                if item.broadcast_id is None:
                    self.pace.slow_replies()  # a reply: replies slow down, nothing stops
                else:
                    await self.pace.pause()  # runbook E: every worker waits two minutes
        self._progress_due |= touched
        await self._report_progress(idle=False)
        return len(claimed)

    async def _load_rates(self, session) -> None:  # type: ignore[no-untyped-def]
        """The rate table, read at most once a minute (it changes when Meta's prices do)."""
        now = asyncio.get_running_loop().time()
        if now - self._rates_at > 60:
            self._rates = await messaging.rates(session, default=self.default_rate)
            self._rates_at = now

    async def _claim(self) -> list[_Claimed]:
        # look before claiming: most wake-ups find nothing new, and on SQLite a claim
        # queues for the single writer
        async with self.db.read() as session:
            replies_due, broadcasts_due = await outbox_repo.due(session)
        if not replies_due and not broadcasts_due:
            return []
        granted = None
        if self.pace is not None:
            granted = 0
            if broadcasts_due:
                try:
                    granted = await self.pace.take(self.batch)
                except Exception as exc:  # Redis away: broadcasts wait, replies never do
                    log.warning("broadcast pace unavailable", extra={"error": type(exc).__name__})
        async with self.db.transaction() as session:
            rows = await outbox_repo.claim_batch(
                session,
                limit=self.batch if replies_due else 0,
                lease=self.lease,
                broadcast_limit=granted,
            )
            out = []
            now = utcnow()
            users = await users_repo.send_columns(session, {row.user_id for row in rows})
            for row in rows:
                user = users[row.user_id]
                out.append(
                    _Claimed(
                        id=row.id,
                        to=send_address(user, self.cipher),
                        payload=row.payload,
                        attempts=row.attempts,
                        in_window=in_window(user.last_inbound_at, now),
                        broadcast_id=row.broadcast_id,
                        user_id=row.user_id,
                        request_id=row.request_id,
                        trip_id=row.trip_id,
                    )
                )
        self._unstarted.update(c.id for c in out)
        if self.pace is not None and granted:
            self.pace.refund(granted - sum(1 for c in out if c.broadcast_id is not None))
        return out

    async def _send_one(
        self, transport: Transport, item: _Claimed
    ) -> str | SendFailure | _Released:
        if item.broadcast_id is None and self.pace is not None:
            # a reply counts against the number's cap and goes before broadcasts; it
            # never raises and never waits long on Redis (uncounted when Redis is away)
            await self.pace.reply_slot()
        elif item.broadcast_id is not None and self.pace is not None:
            try:
                await self.pace.space()
            except Exception as exc:  # Redis away: not sent, so simply try again later
                log.warning("broadcast pace unavailable", extra={"error": type(exc).__name__})
                # held back, not failed: an outage however long never uses up attempts
                return SendFailure(
                    code=None, title=type(exc).__name__, transient=True, held_back=True
                )
            if self.pace.pausing():  # Meta said 130429 while this one waited its turn
                return SendFailure(
                    code=130429, title="broadcasts paused", transient=True, held_back=True
                )
        if self._stopping:  # shutting down: handed back, sent by the next process
            return _RELEASED
        self._unstarted.discard(item.id)  # from here on the send may reach Meta
        start = asyncio.get_running_loop().time()
        with item.scope():
            try:
                wamid = await transport.send(
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

    async def _record_sent(self, session, sent: list[tuple[_Claimed, str]]) -> None:  # type: ignore[no-untyped-def]
        """One statement for the whole batch: the rows, then their broadcast deliveries."""
        if not sent:
            return
        now = utcnow()
        rows = []
        for item, wamid in sent:
            template = item.payload.get("type") == "template"
            billable = _billable(item)
            category = item.payload.get("category", "utility") if template else "service"
            # our estimate until the status webhook's pricing says what Meta bills
            cost = self._rates.get(category, self.default_rate) if billable else 0
            rows.append(
                {
                    "id": item.id,
                    "status": OutboxStatus.SENT.value,
                    "wa_message_id": wamid,
                    "sent_at": now,
                    "lease_until": None,
                    "billable": billable,
                    "cost": cost,
                    "category": category,
                }
            )
        await outbox_repo.mark_sent_batch(session, rows)
        broadcast_rows = [item.id for item, _w in sent if item.broadcast_id is not None]
        if broadcast_rows:
            await broadcast_repo.mark_deliveries_sent(session, broadcast_rows)

    async def _record_failure(self, session, item: _Claimed, failure: SendFailure) -> None:  # type: ignore[no-untyped-def]
        fallback = item.payload.get("fallback")
        if failure.code == RE_ENGAGEMENT and fallback:
            # the window closed before the free message went: send the approved template
            log.info("window closed, sending the template", extra={"outboxId": item.id})
            await outbox_repo.replace_payload(session, item.id, fallback)
            return
        if failure.code == MARKETING_OPT_OUT:
            await broadcast_repo.stop_marketing(session, item.user_id)
        if failure.ambiguous:
            # Leave it "sending" with an expired lease: recovery confirms it from the
            # status webhook carrying its tracker, or resends after the grace period.
            log.warning("send outcome unknown", extra={"outboxId": item.id})
            await outbox_repo.mark_uncertain(session, item.id, title=failure.title)
            return
        waits = failure.code in WAIT_IT_OUT_CODES
        if failure.transient and (waits or failure.held_back or item.attempts < MAX_ATTEMPTS):
            delay = backoff(
                item.attempts,
                rate_limited=failure.code in RATE_LIMIT_CODES or waits,
                reply=failure.code == 130429 and item.broadcast_id is None,
            )
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


def _billable(item: _Claimed) -> bool:
    """A template is paid for; a free-form message only outside the 24-hour window."""
    return item.payload.get("type") == "template" or not item.in_window


async def pending(db: Database) -> int:
    async with db.read() as session:
        return await outbox_repo.pending_count(session)


__all__ = ["OutboxDispatcher", "OutboxMessage", "backoff", "pending"]

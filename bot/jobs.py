"""Scheduled and queued work: each job opens its own transactions and calls the services.

Every job is idempotent: running it twice (two schedulers, a retried Dramatiq message)
does no harm.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from bot.metrics import (
    BROADCASTS_REDISPATCHED,
    SCHEDULER_JOB_FAILURES,
    SCHEDULER_JOB_LAST_SUCCESS,
    SCHEDULER_JOB_RUNS,
    SCHEDULER_JOB_SECONDS,
)
from services import broadcasts, notices, orders, trips, waitlist
from storage import trace
from storage.db import Database
from storage.models import BroadcastStatus, utcnow
from storage.proof_copies import replicate_proofs
from storage.repo import broadcasts as broadcasts_repo
from storage.repo import outbox as outbox_repo
from storage.repo import privacy

log = logging.getLogger(__name__)

GATHER_SECONDS = 60
PURGE_AFTER_DAYS = 90
STALL_SECONDS = 120.0  # BROADCAST_STALL_SECONDS


async def expire_unpaid_orders(db: Database) -> int:
    """Expire orders unpaid past their deadline, return their stock, tell each buyer once."""
    async with db.transaction() as session:
        expired = await orders.expire_due(session, utcnow())
    if expired:
        log.info("expired unpaid orders", extra={"count": len(expired)})
    return len(expired)


async def expire_waitlist_holds(db: Database) -> int:
    """Waitlist holds that ran out go back to the stock and on to the next in line."""
    async with db.transaction() as session:
        lapsed = await waitlist.expire_holds(session, utcnow())
    if lapsed:
        log.info("waitlist holds lapsed", extra={"count": lapsed})
    return lapsed


async def notify_new_orders(db: Database, *, gather_seconds: int = GATHER_SECONDS) -> int:
    """Tell each jastiper about new orders, a burst gathered into one message."""
    async with db.transaction() as session:
        return await orders.notify_jastipers(
            session, utcnow(), gather=dt.timedelta(seconds=gather_seconds)
        )


async def announce_new_products(
    db: Database, *, quiet: dt.timedelta = notices.PRODUCT_QUIET
) -> int:
    async with db.transaction() as session:
        return await notices.announce_new_products(session, utcnow(), quiet=quiet)


async def schedule_summaries(db: Database, *, now: dt.datetime | None = None) -> int:
    async with db.transaction() as session:
        return await notices.schedule_summaries(session, now or utcnow())


async def remind_unpaid(db: Database, *, before: dt.timedelta = notices.REMIND_BEFORE) -> int:
    async with db.transaction() as session:
        sent = await notices.remind_unpaid(session, utcnow(), before=before)
    if sent:
        log.info("payment reminders queued", extra={"count": sent})
    return sent


async def purge_unsubscribed(db: Database, *, days: int = PURGE_AFTER_DAYS) -> int:
    """Remove participants who unsubscribed more than ``days`` ago (PII retention)."""
    async with db.transaction() as session:
        return await trips.purge_unsubscribed(session, utcnow(), days=days)


async def expire_exports(settings: Any) -> int:
    """Delete recaps and exports older than EXPORT_RETENTION_HOURS: they hold buyers'
    names, numbers and streets, and the jastiper received them when they were made."""
    from storage.media import build_media_store, expire

    store = build_media_store(settings, sealed=False)
    gone = await expire(store, older_than_hours=settings.export_retention_hours)
    if gone:
        log.info("expired exports deleted", extra={"count": gone})
    return gone


async def purge_inbox(db: Database, *, days: int = 7) -> int:
    """Delete inbox units handled more than ``days`` ago (their bodies are personal data;
    Meta's redelivery window is shorter)."""
    async with db.transaction() as session:
        return await privacy.purge_inbox(session, older_than=dt.timedelta(days=days))


async def purge_strangers(db: Database, *, days: int = 7) -> int:
    """Forget people who wrote but never joined anything, quiet for ``days`` (the inbox's
    retention): every unknown number that writes would otherwise stay a row forever."""
    async with db.transaction() as session:
        return await privacy.purge_strangers(session, older_than=dt.timedelta(days=days))


# --- broadcasts ------------------------------------------------------------------------------


async def fan_out(db: Database, broadcast_id: int, *, chunk: int = broadcasts.CHUNK) -> int:
    """Create the deliveries and queue the sends, a chunk per transaction; returns how
    many were queued now. What the Dramatiq actor runs; safe to run twice, and twice at
    once (a re-dispatched stalled broadcast beside its original message)."""
    async with db.transaction() as session:
        if not await broadcasts.start_fan_out(session, broadcast_id, utcnow()):
            return 0
    queued = 0
    while True:
        async with db.transaction() as session:
            batch = await broadcasts.queue_batch(session, broadcast_id, utcnow(), limit=chunk)
        if batch is None:
            break
        queued += batch
    if queued:
        async with db.transaction() as session:
            await outbox_repo.analyze(session)
    await finish_if_done(db, broadcast_id)
    return queued


async def finish_if_done(db: Database, broadcast_id: int) -> bool:
    """Mark the broadcast done and tell the jastiper, once no delivery waits."""
    async with db.transaction() as session:
        return await broadcasts.finish_if_done(session, broadcast_id, utcnow())


async def finish_settled(db: Database) -> int:
    """Finish broadcasts whose last deliveries were settled elsewhere than in a sending
    worker — by a status webhook or lease recovery after a crash — so that nothing
    would otherwise look at them again. Returns how many finished."""
    async with db.read() as session:
        ids = await broadcasts_repo.sending_without_open_deliveries(session)
    return sum([await finish_if_done(db, broadcast_id) for broadcast_id in ids])


async def dispatch_queued_broadcasts(db: Database, actors: Any) -> int:
    """Hand confirmed broadcasts to the Dramatiq actor (once each; the actor is
    idempotent, so a crash between the two steps costs nothing). A summary goes to the
    actor when its buyers come due (once per moment one does, and at its evening hour),
    not on every pass."""
    async with db.read() as session:
        due = await broadcasts.due_for_dispatch(session, utcnow())
    for broadcast_id, status, request_id in due:
        # the job carries the id of the request that confirmed it (bot/broker.py), or of
        # this pass when none did (a broadcast stored before ids were)
        with trace.scope(request_id or trace.request_id(), broadcastId=broadcast_id):
            actors.send_broadcast.send(broadcast_id)
        if status == BroadcastStatus.QUEUED:
            async with db.transaction() as session:
                await broadcasts.mark_dispatched(session, broadcast_id, utcnow())
    return len(due)


async def redispatch_stalled(
    db: Database, actors: Any, *, stall: dt.timedelta = dt.timedelta(seconds=STALL_SECONDS)
) -> int:
    """Dispatch again each broadcast whose fan-out has not moved for ``stall``: its
    Dramatiq message was lost (Redis restarted without its data, a message dead after
    its retries) or its worker died mid-way. Should the original still be running after
    all, the fan-out claims each recipient once, so nobody gets it twice. Returns how
    many went again."""
    now = utcnow()
    async with db.read() as session:
        stalled = await broadcasts_repo.stalled(session, still_since=now - stall)
    for broadcast_id, request_id in stalled:
        # as its first dispatch: the id of the request that confirmed it (or of this pass),
        # on this line, on the job and on the replies the job queues
        with trace.scope(request_id or trace.request_id(), broadcastId=broadcast_id):
            actors.send_broadcast.send(broadcast_id)
            log.warning("broadcast stalled, dispatched again", extra={"jobId": broadcast_id})
        async with db.transaction() as session:
            # the next try only after another still period, not on every pass
            await broadcasts_repo.mark_progress(session, broadcast_id, at=now)
        BROADCASTS_REDISPATCHED.inc()
    return len(stalled)


Job = Callable[[], Awaitable[int]]


async def run_job(name: str, job: Job) -> int | None:
    """Run one periodic job on its own: an error is logged (its kind and where it
    happened — never its message, which may quote a buyer's data), counted in
    ``jastipin_scheduler_job_failures_total{job}`` and left for the next pass. Returns
    what the job did, or None when it failed.

    Each run is work of its own, with a fresh request id (storage/trace.py): on its log
    lines, and stored with the replies and broadcasts it queues, so that their sends and
    fan-outs, in whichever process, are followed to this run as a message's are to its
    webhook."""
    started = time.perf_counter()
    try:
        with trace.scope(trace.new_request_id(), job=name):
            result = await job()
    except Exception as exc:  # any job's error: the other jobs still run
        SCHEDULER_JOB_FAILURES.labels(job=name).inc()
        SCHEDULER_JOB_RUNS.labels(job=name, result="failed").inc()
        log.error(
            "scheduled job failed, retried on the next pass",
            extra={"job": name, "error": _kinds(exc), "where": _where(exc)},
        )
        return None
    finally:
        SCHEDULER_JOB_SECONDS.labels(job=name).observe(time.perf_counter() - started)
    SCHEDULER_JOB_LAST_SUCCESS.labels(job=name).set(time.time())
    SCHEDULER_JOB_RUNS.labels(job=name, result="ok").inc()
    return result


def _kinds(exc: BaseException) -> str:
    """The exception's class and those of its causes: ``OperationalError <- OSError``."""
    kinds: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(kinds) < 5:
        kinds.append(type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(kinds)


def _where(exc: BaseException, *, frames: int = 6) -> str:
    """The innermost frames as ``file:line function`` (code locations, no values)."""
    stack = traceback.extract_tb(exc.__traceback__)[-frames:]
    return " > ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in stack)


async def run_periodic(
    db: Database, actors: Any | None, settings: Any | None = None
) -> dict[str, int]:
    """One pass of every periodic job (the scheduler's loop body): what each did, and
    under ``failed`` how many raised. Each job runs on its own (see :func:`run_job`):
    one that fails stops neither the others nor the next pass."""
    stall = dt.timedelta(seconds=getattr(settings, "broadcast_stall_seconds", STALL_SECONDS))
    retention = int(getattr(settings, "inbox_retention_days", 7))
    jobs: list[tuple[str, str, Job]] = [
        ("expired", "expire_orders", lambda: expire_unpaid_orders(db)),
        ("reminded", "remind_unpaid", lambda: remind_unpaid(db)),
        ("holds_lapsed", "expire_waitlist_holds", lambda: expire_waitlist_holds(db)),
        ("order_notices", "notify_new_orders", lambda: notify_new_orders(db)),
        ("product_notices", "announce_new_products", lambda: announce_new_products(db)),
        ("summaries", "schedule_summaries", lambda: schedule_summaries(db)),
        ("purged", "purge_unsubscribed", lambda: purge_unsubscribed(db)),
        ("inbox_purged", "purge_inbox", lambda: purge_inbox(db, days=retention)),
        ("strangers_purged", "purge_strangers", lambda: purge_strangers(db, days=retention)),
    ]
    if settings is not None:
        jobs.append(("exports_expired", "expire_exports", lambda: expire_exports(settings)))
    if settings is not None and getattr(settings, "s3_backup_bucket", None):
        jobs.append(("backed_up", "backup_proofs", lambda: replicate_proofs(db, settings)))
    if actors is not None:
        jobs.append(
            ("broadcasts", "dispatch_broadcasts", lambda: dispatch_queued_broadcasts(db, actors))
        )
        jobs.append(
            (
                "redispatched",
                "redispatch_stalled_broadcasts",
                lambda: redispatch_stalled(db, actors, stall=stall),
            )
        )
    jobs.append(("finished", "finish_broadcasts", lambda: finish_settled(db)))
    done: dict[str, int] = {"failed": 0}
    for key, name, job in jobs:
        result = await run_job(name, job)
        if result is None:
            done["failed"] += 1
        else:
            done[key] = result
    return done

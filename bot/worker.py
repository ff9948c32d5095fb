"""``jastipin worker`` and ``jastipin scheduler``: the processes beside the API.

The worker sends the outbox (several workers may run: rows are claimed with row locks
on Postgres) and processes inbound units: all of them with ``INBOX_INLINE=0``, else the
ones a crash left pending. On Postgres workers share that backlog user by user, each
user's units under one process's lease at a time (``bot/inbox.py``). The scheduler runs the
periodic jobs; every job is idempotent, so two schedulers do no harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal

import dramatiq

from bot import jobs
from bot.broker import build_broker
from bot.observe import observed
from bot.outbox import OutboxDispatcher
from bot.retry import Backoff
from bot.runtime import (
    INBOX_DRAIN_SECONDS,
    JOBS_DRAIN_SECONDS,
    OUTBOX_DRAIN_SECONDS,
    build_runtime,
)
from bot.settings import Settings
from bot.tasks import Actors, JobRunner, build_actors
from bot.transport import SandboxTransport
from storage.db import Database
from storage.sealed import open_cipher

log = logging.getLogger(__name__)

# seconds between two passes of the periodic jobs (docs/RUNBOOK.md says so too)
SCHEDULER_INTERVAL_SECONDS = 20
# with the API processing inline: a unit pending for this many INBOX_SWEEP_SECONDS was
# left by it (a crash, a failed attempt), and a worker's sweeper takes it up
ORPHANED_AFTER = 6


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    rt = build_runtime(settings)
    outbox, processor = rt.outbox, rt.processor
    stop = stop or _stop_on_signals()
    log.info("worker started", extra={"transport": rt.transport.name})

    # With INBOX_INLINE=0 the API only stores updates and workers process them at once;
    # otherwise workers only pick up what an API process left pending: units it has had
    # for ORPHANED_AFTER sweeps. Sooner, a worker would race a busy API through its
    # backlog for the same units (both parsing them, each claim waiting for the other's
    # row locks: seen on Postgres with a 10,000-message burst, docs/BENCHMARKS.md).
    interval = 0.2 if not settings.inbox_inline else settings.inbox_sweep_seconds
    older_than = (
        0.0 if not settings.inbox_inline else settings.inbox_sweep_seconds * ORPHANED_AFTER
    )

    async def sweep_forever() -> None:
        backoff = Backoff(interval)  # the database gone: 2×, 4×, … the interval
        wait = interval
        while True:
            await asyncio.sleep(wait)
            try:
                while await processor.sweep(older_than_seconds=older_than) and not stop.is_set():
                    pass
                backoff.succeeded()
                wait = interval
            except Exception:
                log.exception("inbox sweep failed")
                wait = backoff.failed()

    broker = build_broker(settings)
    build_actors(broker, settings, JobRunner(rt.db))  # one Database for the actors too
    async with observed(settings, "worker", rt.db, broker):
        dramatiq_worker = dramatiq.Worker(
            broker, worker_threads=settings.worker_concurrency, worker_timeout=500
        )
        dramatiq_worker.start()
        sending = asyncio.create_task(outbox.run())
        sweeping = asyncio.create_task(sweep_forever())
        await stop.wait()
        log.info("worker stopping")
        sweeping.cancel()  # no new units; the ones in hand get INBOX_DRAIN_SECONDS below
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
        # at once, each bounded: the Dramatiq messages in progress finish (prefetched
        # ones go back to Redis), the sends in flight finish and claimed rows not sent
        # are handed back, the inbox units in hand finish or stay pending
        await asyncio.gather(
            asyncio.to_thread(dramatiq_worker.stop, timeout=int(JOBS_DRAIN_SECONDS * 1000)),
            outbox.shutdown(sending, within=OUTBOX_DRAIN_SECONDS),
            processor.close(within=INBOX_DRAIN_SECONDS),
        )
    await rt.aclose()
    log.info("worker stopped")


async def run_scheduler(settings: Settings, *, once: bool = False) -> int:
    """Periodic jobs (see :func:`bot.jobs.run_periodic`) and recovery of stuck outbox
    leases, every 20 s. A job that raises is logged, counted and tried again on the next
    pass; the scheduler itself keeps running. Returns how many jobs of the last pass
    failed (what ``--once`` exits on)."""
    db = Database(settings.database_url, sqlite_inline=settings.sqlite_inline)
    broker = build_broker(settings)
    # without Redis nothing outside this process would run the broadcasts' messages:
    # they are left to `jastipin serve`, whose embedded worker runs them
    actors = build_actors(broker, settings) if settings.redis_url else None
    # recovery only reads and updates rows: it never sends, so no real transport
    outbox = OutboxDispatcher(
        db,
        SandboxTransport(),
        open_cipher(settings.pii_key),
        resend_grace=dt.timedelta(seconds=settings.outbox_resend_grace_seconds),
    )
    stop = _stop_on_signals()
    try:
        if once:  # a one-shot run beside the service: no port of its own
            return await _schedule(db, actors, settings, outbox, stop, once=True)
        async with observed(settings, "scheduler", db, broker):
            return await _schedule(db, actors, settings, outbox, stop, once=False)
    finally:
        await db.dispose()


async def _schedule(
    db: Database,
    actors: Actors | None,
    settings: Settings,
    outbox: OutboxDispatcher,
    stop: asyncio.Event,
    *,
    once: bool,
) -> int:
    while True:
        done = await jobs.run_periodic(db, actors, settings)
        recovered = (0, 0)

        async def recover() -> int:
            nonlocal recovered
            recovered = await outbox.recover()
            return sum(recovered)

        if await jobs.run_job("outbox_recovery", recover) is None:
            done["failed"] += 1
        confirmed, requeued = recovered
        log.info("scheduler pass", extra={**done, "confirmed": confirmed, "requeued": requeued})
        if once:
            return int(done["failed"])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=SCHEDULER_INTERVAL_SECONDS)
        if stop.is_set():
            return int(done["failed"])


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop

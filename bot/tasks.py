"""Dramatiq actors, bound to the broker that ``bot.broker`` built — passed in, so no
actor is created at import time and no default broker is ever guessed.

Actors take ids, not objects, and are safe to run twice. They run on Dramatiq's worker
threads but do their work on the process's own event loop with its one ``Database``
(:class:`JobRunner`): a second engine on the same SQLite file in the same process is
what lost writes in issue #21, and an engine and an event loop per message cost more
than a small fan-out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import dramatiq

from bot.settings import Settings
from storage.db import Database
from storage.sqlite_inline import offloaded

log = logging.getLogger(__name__)

T = TypeVar("T")

# an actor's coroutine gets this long on the loop before its Dramatiq thread gives up
# (the coroutine is cancelled; the message is retried, and every actor is idempotent)
JOB_SECONDS = 300.0


class JobRunner:
    """Runs actors' coroutines on this process's event loop with its one Database.

    Made inside the running loop (``serve``'s app, ``jastipin worker``); ``run`` is
    called from Dramatiq's worker threads and waits for the coroutine's result."""

    def __init__(self, db: Database, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.db = db
        self.loop = loop or asyncio.get_running_loop()

    def run(self, job: Callable[[Database], Awaitable[T]], *, timeout: float = JOB_SECONDS) -> T:
        async def offloaded_job() -> T:
            # long fan-outs run on the database's threads, never holding the loop that
            # answers webhooks (storage/sqlite_inline.py)
            with offloaded():
                return await job(self.db)

        future = asyncio.run_coroutine_threadsafe(offloaded_job(), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise


@dataclasses.dataclass(frozen=True)
class Actors:
    send_broadcast: Any


def build_actors(
    broker: dramatiq.Broker, settings: Settings, runner: JobRunner | None = None
) -> Actors:
    """Register this project's actors on ``broker``. ``runner``: where they run; a
    process without one (the scheduler, the CLI) only sends messages."""

    def send_broadcast(broadcast_id: int) -> None:
        """Fan a confirmed broadcast out to its recipients (idempotent)."""
        from bot.jobs import fan_out

        if runner is None:
            raise RuntimeError("this process runs no jobs: start `jastipin worker`")
        queued = runner.run(lambda db: fan_out(db, broadcast_id))
        log.info("broadcast fanned out", extra={"jobId": broadcast_id, "queued": queued})

    decorate = dramatiq.actor(
        broker=broker, actor_name="send_broadcast", queue_name="broadcasts", max_retries=5
    )
    return Actors(send_broadcast=decorate(send_broadcast))

"""Dramatiq actors, bound to the broker that ``bot.broker`` built — passed in, so no
actor is created at import time and no default broker is ever guessed.

Actors take ids, not objects, and are safe to run twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import dramatiq

from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Actors:
    send_broadcast: Any


def build_actors(broker: dramatiq.Broker, settings: Settings) -> Actors:
    """Register this project's actors on ``broker``."""

    def send_broadcast(broadcast_id: int) -> None:
        """Fan a confirmed broadcast out to its recipients (idempotent)."""
        from bot.jobs import fan_out
        from storage.db import Database

        async def run() -> int:
            db = Database(settings.database_url, sqlite_inline=settings.sqlite_inline)
            try:
                return await fan_out(db, broadcast_id)
            finally:
                await db.dispose()

        queued = asyncio.run(run())
        log.info("broadcast fanned out", extra={"jobId": broadcast_id, "queued": queued})

    decorate = dramatiq.actor(
        broker=broker, actor_name="send_broadcast", queue_name="broadcasts", max_retries=5
    )
    return Actors(send_broadcast=decorate(send_broadcast))

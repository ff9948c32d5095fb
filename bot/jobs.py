"""Scheduled and queued work: each job opens its own transactions and calls the services.

Every job is idempotent: running it twice (two schedulers, a retried Dramatiq message)
does no harm.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from services import broadcasts, notices, orders, trips
from storage.backup import replicate_proofs
from storage.db import Database
from storage.models import utcnow
from storage.repo import broadcasts as broadcasts_repo
from storage.repo import outbox as outbox_repo
from storage.repo import privacy

log = logging.getLogger(__name__)

GATHER_SECONDS = 60
PURGE_AFTER_DAYS = 90


async def expire_unpaid_orders(db: Database) -> int:
    """Expire orders unpaid past their deadline, return their stock, tell each buyer once."""
    async with db.transaction() as session:
        expired = await orders.expire_due(session, utcnow())
    if expired:
        log.info("expired unpaid orders", extra={"count": len(expired)})
    return len(expired)


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


async def purge_inbox(db: Database, *, days: int = 7) -> int:
    """Delete inbox units handled more than ``days`` ago (their bodies are personal data;
    Meta's redelivery window is shorter)."""
    async with db.transaction() as session:
        return await privacy.purge_inbox(session, older_than=dt.timedelta(days=days))


# --- broadcasts ------------------------------------------------------------------------------


async def fan_out(db: Database, broadcast_id: int) -> int:
    """Create the deliveries and queue the sends, a chunk per transaction; returns how
    many were queued now. What the Dramatiq actor runs; safe to run twice."""
    async with db.transaction() as session:
        if not await broadcasts.start_fan_out(session, broadcast_id, utcnow()):
            return 0
    queued = 0
    while True:
        async with db.transaction() as session:
            batch = await broadcasts.queue_batch(session, broadcast_id, utcnow())
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
    actor on every pass until its evening hour, as its buyers come due one by one."""
    async with db.read() as session:
        due = await broadcasts_repo.due_for_dispatch(session)
    for broadcast_id, status in due:
        actors.send_broadcast.send(broadcast_id)
        if status == "queued":
            async with db.transaction() as session:
                await broadcasts_repo.mark_dispatched(session, broadcast_id)
    return len(due)


async def run_periodic(
    db: Database, actors: Any | None, settings: Any | None = None
) -> dict[str, int]:
    """One pass of every periodic job (the scheduler's loop body); what each did."""
    done = {
        "expired": await expire_unpaid_orders(db),
        "reminded": await remind_unpaid(db),
        "order_notices": await notify_new_orders(db),
        "product_notices": await announce_new_products(db),
        "summaries": await schedule_summaries(db),
        "purged": await purge_unsubscribed(db),
        "inbox_purged": await purge_inbox(
            db, days=getattr(settings, "inbox_retention_days", 7) if settings else 7
        ),
    }
    if settings is not None and getattr(settings, "s3_backup_bucket", None):
        done["backed_up"] = await replicate_proofs(db, settings)
    if actors is not None:
        done["broadcasts"] = await dispatch_queued_broadcasts(db, actors)
    done["finished"] = await finish_settled(db)
    return done

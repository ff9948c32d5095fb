"""Broadcasts: fan a confirmed broadcast out to its recipients, once each, and report.

``fan_out`` is what the Dramatiq actor runs. It is safe to run twice or to resume after
a crash: every recipient gets a delivery row under a unique (broadcast, recipient) key
before anything is queued, and a delivery becomes an outbox row exactly once, in the
same transaction that marks it queued. The outbox dispatcher then sends at the
broadcast pace (``bot/pace.py``).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from flows import replies
from locales import Translator, _
from storage.db import Database
from storage.models import Broadcast, BroadcastDelivery, Jastiper, Trip, User, utcnow
from storage.repo import broadcasts as repo
from storage.repo import outbox
from storage.repo._sql import insert_ignoring_conflicts, is_postgres

log = logging.getLogger(__name__)

CHUNK = 500


async def fan_out(db: Database, broadcast_id: int) -> int:
    """Create the deliveries and queue the sends; returns how many were queued now."""
    async with db.transaction() as session:
        stmt = select(Broadcast).where(Broadcast.id == broadcast_id)
        if is_postgres(session):
            stmt = stmt.with_for_update()
        broadcast = (await session.execute(stmt)).scalar_one_or_none()
        if broadcast is None or broadcast.status not in ("queued", "dispatched", "sending"):
            return 0
        users = await repo.subscribed_recipients(session, broadcast.trip_id, broadcast.segment)
        if users:
            await session.execute(
                insert_ignoring_conflicts(session, BroadcastDelivery, ["broadcast_id", "user_id"]),
                [
                    {"broadcast_id": broadcast_id, "user_id": u.id, "status": "pending"}
                    for u in users
                ],
            )
        broadcast.status = "sending"
        trip = await session.get(Trip, broadcast.trip_id)
        title = trip.title if trip else ""
        text = broadcast.text
    queued = 0
    while True:
        async with db.transaction() as session:
            pending = (
                select(BroadcastDelivery, User)
                .join(User, User.id == BroadcastDelivery.user_id)
                .where(
                    BroadcastDelivery.broadcast_id == broadcast_id,
                    BroadcastDelivery.status == "pending",
                )
                .limit(CHUNK)
            )
            if is_postgres(session):
                pending = pending.with_for_update(skip_locked=True, of=BroadcastDelivery)
            batch = (await session.execute(pending)).all()
            if not batch:
                break
            now = utcnow()
            for delivery, user in batch:
                if user.opted_out_at is not None:
                    delivery.status = "skipped"  # sent STOP after the estimate
                    continue
                if not (user.last_inbound_at and now - user.last_inbound_at < repo.WINDOW):
                    # outside the 24-hour window only an approved template may go;
                    # templates are not configured yet, so nothing is sent (and billed)
                    delivery.status = "skipped"
                    delivery.error_code = 131047
                    continue
                row = outbox.enqueue(
                    session,
                    user.id,
                    replies.text(f"📢 *{title}*\n{text}"),
                    broadcast_id=broadcast_id,
                    category="marketing",
                )
                await session.flush()
                delivery.outbox_id = row.id
                delivery.status = "queued"
                queued += 1
    await finish_if_done(db, broadcast_id)
    return queued


async def finish_if_done(db: Database, broadcast_id: int) -> bool:
    """When no delivery is waiting any more: mark the broadcast done, meter its cost and
    tell the jastiper the summary (once)."""
    async with db.transaction() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None or broadcast.status != "sending":
            return False
        tally = await repo.counts(session, broadcast_id)
        if tally.get("pending", 0) or tally.get("queued", 0):
            return False
        broadcast.status = "done"
        broadcast.finished_at = utcnow()
        trip = await session.get(Trip, broadcast.trip_id)
        jastiper = await session.get(Jastiper, trip.jastiper_id) if trip else None
        owner = await session.get(User, jastiper.user_id) if jastiper else None
        if owner is not None and trip is not None:
            t = Translator(owner.locale)
            sent = sum(tally.get(k, 0) for k in ("sent", "delivered", "read"))
            outbox.enqueue(
                session,
                owner.id,
                replies.text(
                    t(
                        _(
                            "Broadcast {code} selesai: {sent} terkirim, {failed} gagal, "
                            "{skipped} dilewati (berhenti langganan atau di luar 24 jam)."
                        ),
                        code=trip.code,
                        sent=sent,
                        failed=tally.get("failed", 0),
                        skipped=tally.get("skipped", 0),
                    )
                ),
            )
        return True

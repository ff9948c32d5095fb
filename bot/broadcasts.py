"""Broadcasts: fan a confirmed broadcast out to its recipients, once each, and report.

``fan_out`` is what the Dramatiq actor runs. It is safe to run twice or to resume after
a crash: every recipient gets a delivery row under a unique (broadcast, recipient) key
before anything is queued, and a delivery becomes an outbox row exactly once, in the
same transaction that marks it queued. The outbox dispatcher then sends at the
broadcast pace (``bot/pace.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import sends
from flows import replies
from locales import Translator, _
from storage.db import Database
from storage.models import Broadcast, BroadcastDelivery, Jastiper, Trip, User, utcnow
from storage.repo import broadcasts as repo
from storage.repo import outbox
from storage.repo._sql import insert_ignoring_conflicts, is_postgres

log = logging.getLogger(__name__)

CHUNK = 500


Render = Callable[
    [AsyncSession, Broadcast, Trip, User], Awaitable[tuple[dict[str, Any], list[str]] | None]
]
# how each kind of broadcast reads for one recipient: (session message, template params),
# or None when there is nothing to tell that recipient
RENDERERS: dict[str, Render] = {}
PURPOSE = {"manual": "broadcast", "products": "products", "summary": "summary"}


async def _render_manual(
    session: AsyncSession, broadcast: Broadcast, trip: Trip, user: User
) -> tuple[dict[str, Any], list[str]]:
    return replies.text(f"📢 *{trip.title}*\n{broadcast.text}"), [trip.title, broadcast.text]


RENDERERS["manual"] = _render_manual


async def fan_out(db: Database, broadcast_id: int) -> int:
    """Create the deliveries and queue the sends; returns how many were queued now."""
    async with db.transaction() as session:
        stmt = select(Broadcast).where(Broadcast.id == broadcast_id)
        if is_postgres(session):
            stmt = stmt.with_for_update()
        broadcast = (await session.execute(stmt)).scalar_one_or_none()
        if broadcast is None or broadcast.status not in ("queued", "dispatched", "sending"):
            return 0
        users = await repo.subscribed_recipients(
            session,
            broadcast.trip_id,
            broadcast.segment,
            marketing=broadcast.category == "marketing",
        )
        if broadcast.kind == "summary":
            from bot.notices import summary_due

            now = utcnow()
            users = [u for u in users if summary_due(broadcast, u, now)]
        if users:
            await session.execute(
                insert_ignoring_conflicts(session, BroadcastDelivery, ["broadcast_id", "user_id"]),
                [
                    {"broadcast_id": broadcast_id, "user_id": u.id, "status": "pending"}
                    for u in users
                ],
            )
        broadcast.status = "sending"
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
                .order_by(BroadcastDelivery.id)
                .limit(CHUNK)
            )
            if is_postgres(session):
                pending = pending.with_for_update(skip_locked=True, of=BroadcastDelivery)
            batch = (await session.execute(pending)).all()
            if not batch:
                break
            broadcast = await session.get(Broadcast, broadcast_id)
            trip = await session.get(Trip, broadcast.trip_id) if broadcast else None
            if broadcast is None or trip is None:
                break
            import bot.notices  # noqa: F401  (registers the automatic kinds' renderers)

            render = RENDERERS[broadcast.kind]
            templates = await sends.Templates.load(session, PURPOSE[broadcast.kind])
            now = utcnow()
            planned = []
            for delivery, user in batch:
                if user.opted_out_at is not None or (
                    user.marketing_opted_out_at is not None and broadcast.category == "marketing"
                ):
                    delivery.status = "skipped"  # opted out after the estimate
                    continue
                rendered = await render(session, broadcast, trip, user)
                if rendered is None:
                    delivery.status = "skipped"  # nothing for this recipient
                    continue
                message, params = rendered
                plan = sends.plan(
                    user,
                    message,
                    templates=templates,
                    params=params,
                    allow_paid=broadcast.allow_paid,
                    now=now,
                )
                if plan.payload is None:
                    # outside the 24-hour window and no template may (or can) go
                    delivery.status = "skipped"
                    delivery.error_code = sends.RE_ENGAGEMENT
                    continue
                row = outbox.enqueue(
                    session,
                    user.id,
                    plan.payload,
                    broadcast_id=broadcast_id,
                    category=str(plan.payload.get("category", "service")),
                )
                planned.append((delivery, row, plan.mode))
            await session.flush()  # one multi-row insert gives every outbox row its id
            for delivery, row, mode in planned:
                delivery.outbox_id = row.id
                delivery.mode = mode
                delivery.status = "queued"
            queued += len(planned)
    if queued and db.engine.dialect.name == "postgresql":
        # thousands of rows just arrived: without fresh statistics the planner picks a
        # plan for the outbox claim that took seconds instead of a millisecond
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE outbox"))
            await conn.commit()
    await finish_if_done(db, broadcast_id)
    return queued


async def finish_if_done(db: Database, broadcast_id: int) -> bool:
    """When no delivery is waiting any more: mark the broadcast done, meter its cost and
    tell the jastiper the summary (once)."""
    async with db.transaction() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None or broadcast.status != "sending":
            return False
        if await repo.has_open_deliveries(session, broadcast_id):
            return False
        from bot.notices import summary_pending

        if summary_pending(broadcast, utcnow()):
            return False  # more buyers come due until the evening hour
        tally = await repo.counts(session, broadcast_id)
        # two workers may get here at once: only the one whose update wins goes on
        claimed = await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status == "sending")
            .values(
                status="done",
                finished_at=utcnow(),
                metered_cost=await repo.metered_cost(session, broadcast_id),
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return False
        await session.refresh(broadcast)
        if broadcast.kind != "manual":
            return True  # automatic notices: nobody asked, nobody needs the summary
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
                            "{skipped} dilewati (berhenti langganan atau di luar 24 jam). "
                            "Biaya: {cost}."
                        ),
                        code=trip.code,
                        sent=sent,
                        failed=tally.get("failed", 0),
                        skipped=tally.get("skipped", 0),
                        cost=t.money(broadcast.metered_cost),
                    )
                ),
            )
        return True


async def finish_settled(db: Database) -> int:
    """Finish broadcasts whose last deliveries were settled elsewhere than in a sending
    worker — by a status webhook or lease recovery after a crash — so that nothing
    would otherwise look at them again. Returns how many finished."""
    async with db.read() as session:
        ids = await repo.sending_without_open_deliveries(session)
    return sum([await finish_if_done(db, broadcast_id) for broadcast_id in ids])

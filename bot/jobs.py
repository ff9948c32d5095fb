"""Scheduled jobs. Each is idempotent: running it twice (two schedulers) does no harm."""

from __future__ import annotations

import logging

from sqlalchemy import select

from flows import replies
from locales import Translator, _
from storage.db import Database
from storage.models import Order, User
from storage.repo import orders as orders_repo
from storage.repo import outbox

log = logging.getLogger(__name__)


async def expire_unpaid_orders(db: Database) -> int:
    """Expire orders unpaid past their deadline, return their stock, tell each buyer once."""
    async with db.transaction() as session:
        expired = await orders_repo.expire_due(session)
        for order in expired:
            await _tell_buyer(session, order)
    if expired:
        log.info("expired unpaid orders", extra={"count": len(expired)})
    return len(expired)


async def _tell_buyer(session, order: Order) -> None:  # type: ignore[no-untyped-def]
    if order.expired_notified:
        return
    buyer = (await session.execute(select(User).where(User.id == order.user_id))).scalar_one()
    t = Translator(buyer.locale)
    outbox.enqueue(
        session,
        buyer.id,
        replies.text(
            t(
                _(
                    "Pesanan {code} dibatalkan otomatis karena belum dibayar sampai batas "
                    "waktunya. Kalau masih mau, pesan lagi lewat KATALOG ya."
                ),
                code=order.code,
            )
        ),
    )
    order.expired_notified = True


GATHER_SECONDS = 60


async def notify_new_orders(db: Database, *, gather_seconds: int = GATHER_SECONDS) -> int:
    """Tell each jastiper about new orders, a burst gathered into one message.

    Orders wait until the oldest unannounced one of that jastiper is ``gather_seconds``
    old, then all of them go out together: twenty orders in a minute are one message,
    which keeps the jastiper's chat readable and within WhatsApp's per-user pace.
    Returns the number of notices sent.
    """
    import datetime as dt

    from sqlalchemy import and_

    from storage.models import Jastiper, Trip, utcnow

    now = utcnow()
    sent = 0
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(Order, Trip, Jastiper)
                .join(Trip, Trip.id == Order.trip_id)
                .join(Jastiper, Jastiper.id == Trip.jastiper_id)
                .where(and_(Order.jastiper_notified_at.is_(None)))
                .order_by(Order.id)
            )
        ).all()
        by_jastiper: dict[int, list[tuple[Order, Trip]]] = {}
        owner: dict[int, Jastiper] = {}
        for order, trip, jastiper in rows:
            by_jastiper.setdefault(jastiper.id, []).append((order, trip))
            owner[jastiper.id] = jastiper
        for jastiper_id, items in by_jastiper.items():
            if now - min(o.created_at for o, _t in items) < dt.timedelta(seconds=gather_seconds):
                continue  # still gathering
            user = (
                await session.execute(select(User).where(User.id == owner[jastiper_id].user_id))
            ).scalar_one()
            t = Translator(user.locale)
            lines = [f"• {o.code} ({trip.code}) — {t.money(o.total)}" for o, trip in items]
            outbox.enqueue(
                session,
                user.id,
                replies.text(
                    t(_("{n} pesanan baru:\n{lines}"), n=len(items), lines="\n".join(lines))
                    + "\n\n"
                    + t(_("Detail: /order KODE · semua: /orders KODE-TRIP"))
                ),
            )
            for o, _t in items:
                o.jastiper_notified_at = now
            sent += 1
    return sent


async def dispatch_queued_broadcasts(db: Database, actors: object) -> int:
    """Hand confirmed broadcasts to the Dramatiq actor (once each; the actor is
    idempotent, so a crash between the two steps costs nothing). A summary goes to the
    actor on every pass until its evening hour, as its buyers come due one by one."""
    from sqlalchemy import or_, update

    from storage.models import Broadcast

    async with db.transaction() as session:
        due = (
            (
                await session.execute(
                    select(Broadcast).where(
                        or_(
                            Broadcast.status == "queued",
                            (Broadcast.kind == "summary")
                            & Broadcast.status.in_(("dispatched", "sending")),
                        )
                    )
                )
            )
            .scalars()
            .all()
        )
        ids = [(b.id, b.status) for b in due]
    for broadcast_id, status in ids:
        actors.send_broadcast.send(broadcast_id)  # type: ignore[attr-defined]
        if status != "queued":
            continue
        async with db.transaction() as session:
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status == "queued")
                .values(status="dispatched")
            )
    return len(ids)


async def run_periodic(
    db: Database, actors: object | None, settings: object | None = None
) -> dict[str, int]:
    """One pass of every periodic job (the scheduler's loop body); what each did."""
    from bot import notices

    done = {
        "expired": await expire_unpaid_orders(db),
        "reminded": await notices.remind_unpaid(db),
        "order_notices": await notify_new_orders(db),
        "product_notices": await notices.announce_new_products(db),
        "summaries": await notices.schedule_summaries(db),
        "purged": await purge_unsubscribed(db),
    }
    if settings is not None and getattr(settings, "s3_backup_bucket", None):
        from storage.backup import replicate_proofs

        done["backed_up"] = await replicate_proofs(db, settings)
    if actors is not None:
        done["broadcasts"] = await dispatch_queued_broadcasts(db, actors)
    from bot.broadcasts import finish_settled

    done["finished"] = await finish_settled(db)
    return done


PURGE_AFTER_DAYS = 90


async def purge_unsubscribed(db: Database, *, days: int = PURGE_AFTER_DAYS) -> int:
    """Remove participants who unsubscribed more than ``days`` ago (PII retention).

    Their orders stay (bookkeeping); only the trip membership goes. Idempotent.
    """
    import datetime as dt

    from sqlalchemy import delete

    from storage.models import Participant, utcnow

    cutoff = utcnow() - dt.timedelta(days=days)
    async with db.transaction() as session:
        result = await session.execute(
            delete(Participant).where(
                Participant.unsubscribed_at.is_not(None), Participant.unsubscribed_at < cutoff
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)

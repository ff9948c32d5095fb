"""Broadcast audiences and their estimated cost."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Participant, User, utcnow

WINDOW = dt.timedelta(hours=24)


@dataclasses.dataclass(frozen=True, slots=True)
class Estimate:
    recipients: int
    free: int  # inside the 24-hour window their last message opened
    paid: int  # outside it: an approved template, billed
    cost: int  # Rupiah
    skipped: int = 0  # outside it with no template allowed or configured: not sent


SEGMENTS = ("all", "ordered", "noorder", "unpaid", "active")


async def subscribed_recipients(
    session: AsyncSession, trip_id: int, segment: str = "all", *, marketing: bool = True
) -> list[User]:
    """Participants who consented, did not unsubscribe from the trip, and did not send
    STOP (nor opt out of marketing at Meta), narrowed to a segment: ``ordered`` (has an
    order in the trip), ``noorder``, ``unpaid`` (an order awaiting payment) or ``active``
    (wrote in the last 7 days). ``marketing``: also leave out those who stopped
    marketing messages at Meta (131050)."""
    from sqlalchemy import exists

    from storage.models import Order, OrderStatus

    any_order = exists().where(Order.trip_id == trip_id, Order.user_id == User.id)
    unpaid = exists().where(
        Order.trip_id == trip_id,
        Order.user_id == User.id,
        Order.status.in_((OrderStatus.AWAITING_PAYMENT.value, OrderStatus.AWAITING_BALANCE.value)),
    )
    stmt = (
        select(User)
        .join(Participant, Participant.user_id == User.id)
        .where(
            Participant.trip_id == trip_id,
            Participant.consent_at.is_not(None),
            Participant.unsubscribed_at.is_(None),
            User.opted_out_at.is_(None),
        )
        .order_by(User.id)
    )
    if marketing:
        stmt = stmt.where(User.marketing_opted_out_at.is_(None))
    if segment == "ordered":
        stmt = stmt.where(any_order)
    elif segment == "noorder":
        stmt = stmt.where(~any_order)
    elif segment == "unpaid":
        stmt = stmt.where(unpaid)
    elif segment == "active":
        stmt = stmt.where(User.last_inbound_at >= utcnow() - dt.timedelta(days=7))
    return list((await session.execute(stmt)).scalars().all())


def estimate(
    users: list[User],
    *,
    rate: int,
    now: dt.datetime | None = None,
    paid_possible: bool = True,
) -> Estimate:
    """Reach and cost before sending. ``paid_possible``: a template is configured and
    the broadcast may use it; otherwise those outside the window are skipped."""
    now = now or utcnow()
    free = sum(1 for u in users if u.last_inbound_at and now - u.last_inbound_at < WINDOW)
    outside = len(users) - free
    paid = outside if paid_possible else 0
    return Estimate(len(users), free, paid, paid * rate, skipped=outside - paid)


TERMINAL = ("sent", "delivered", "read", "failed", "skipped")


async def record_delivery(session: AsyncSession, outbox_id: int) -> None:
    """Mirror the outbox row's outcome on its delivery (sent, or failed for good)."""
    from sqlalchemy import update

    from storage.models import BroadcastDelivery, OutboxMessage, OutboxStatus

    row = await session.get(OutboxMessage, outbox_id)
    if row is None:
        return
    if row.status == OutboxStatus.SENT.value:
        status, code = "sent", None
    elif row.status == OutboxStatus.FAILED.value:
        status, code = "failed", row.error_code
    else:
        return  # retried later
    await session.execute(
        update(BroadcastDelivery)
        .where(
            BroadcastDelivery.outbox_id == outbox_id,
            BroadcastDelivery.status.not_in(("delivered", "read")),
        )
        .values(status=status, error_code=code)
    )


async def mark_deliveries_sent(session: AsyncSession, outbox_ids: list[int]) -> None:
    """The deliveries of these just-sent rows are sent (unless a status webhook already
    moved them further)."""
    from sqlalchemy import update

    from storage.models import BroadcastDelivery

    await session.execute(
        update(BroadcastDelivery)
        .where(
            BroadcastDelivery.outbox_id.in_(outbox_ids),
            BroadcastDelivery.status.not_in(("delivered", "read", "failed")),
        )
        .values(status="sent", error_code=None)
    )


async def has_open_deliveries(session: AsyncSession, broadcast_id: int) -> bool:
    """Is any delivery still waiting to be queued or sent? (cheap: stops at the first)"""
    from storage.models import BroadcastDelivery

    stmt = (
        select(BroadcastDelivery.id)
        .where(
            BroadcastDelivery.broadcast_id == broadcast_id,
            BroadcastDelivery.status.in_(("pending", "queued")),
        )
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


async def stop_marketing(session: AsyncSession, user_id: int) -> None:
    """Meta says this user stopped marketing messages (131050): no more broadcasts."""
    from sqlalchemy import update

    await session.execute(
        update(User)
        .where(User.id == user_id, User.marketing_opted_out_at.is_(None))
        .values(marketing_opted_out_at=utcnow())
    )


async def sending_without_open_deliveries(session: AsyncSession) -> list[int]:
    """Broadcasts still ``sending`` with no delivery waiting: ready to be finished."""
    from sqlalchemy import exists

    from storage.models import Broadcast, BroadcastDelivery

    open_delivery = exists().where(
        BroadcastDelivery.broadcast_id == Broadcast.id,
        BroadcastDelivery.status.in_(("pending", "queued")),
    )
    stmt = select(Broadcast.id).where(Broadcast.status == "sending", ~open_delivery)
    return list((await session.execute(stmt)).scalars())


async def failure_reasons(
    session: AsyncSession, broadcast_id: int
) -> list[tuple[int | None, int]]:
    """(Meta's error code, how many) of the failed and skipped deliveries, most first."""
    from sqlalchemy import func

    from storage.models import BroadcastDelivery

    stmt = (
        select(BroadcastDelivery.error_code, func.count())
        .where(
            BroadcastDelivery.broadcast_id == broadcast_id,
            BroadcastDelivery.status.in_(("failed", "skipped")),
            BroadcastDelivery.error_code.is_not(None),
        )
        .group_by(BroadcastDelivery.error_code)
        .order_by(func.count().desc())
    )
    return [(code, int(n)) for code, n in (await session.execute(stmt)).all()]


async def counts(session: AsyncSession, broadcast_id: int) -> dict[str, int]:
    from sqlalchemy import func

    from storage.models import BroadcastDelivery

    rows = await session.execute(
        select(BroadcastDelivery.status, func.count())
        .where(BroadcastDelivery.broadcast_id == broadcast_id)
        .group_by(BroadcastDelivery.status)
    )
    return {status: n for status, n in rows.all()}


async def metered_cost(session: AsyncSession, broadcast_id: int) -> int:
    """Rupiah billed for a broadcast so far: our estimate per sent message until the
    status webhook's pricing replaced it with Meta's word."""
    from sqlalchemy import func

    from storage.models import OutboxMessage

    stmt = select(func.coalesce(func.sum(OutboxMessage.cost), 0)).where(
        OutboxMessage.broadcast_id == broadcast_id, OutboxMessage.billable.is_(True)
    )
    return int((await session.execute(stmt)).scalar_one())

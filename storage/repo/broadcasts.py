"""Broadcasts: audiences, deliveries, progress and cost. Every statement about them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Broadcast,
    BroadcastDelivery,
    BroadcastStatus,
    DeliveryStatus,
    Order,
    OrderGroup,
    OutboxMessage,
    OutboxStatus,
    Participant,
    Trip,
    User,
    utcnow,
)
from storage.repo._sql import insert_ignoring_conflicts, is_postgres

B, D = BroadcastStatus, DeliveryStatus
SEGMENTS = ("all", "ordered", "noorder", "unpaid", "active")


def _audience(trip_id: int, segment: str, marketing: bool, *columns: Any) -> Any:
    """Participants who consented, did not unsubscribe from the trip, and did not send
    STOP (nor opt out of marketing at Meta), narrowed to a segment: ``ordered`` (has an
    order in the trip), ``noorder``, ``unpaid`` (an order awaiting payment) or ``active``
    (wrote in the last 7 days). ``marketing``: also leave out those who stopped
    marketing messages at Meta (131050)."""
    any_order = exists().where(Order.trip_id == trip_id, Order.user_id == User.id)
    unpaid = exists().where(
        Order.trip_id == trip_id,
        Order.user_id == User.id,
        Order.status.in_(OrderGroup.OPEN_FOR_PAYMENT),
    )
    stmt = (
        select(*columns)
        .select_from(User)
        .join(Participant, Participant.user_id == User.id)
        .where(
            Participant.trip_id == trip_id,
            Participant.consent_at.is_not(None),
            Participant.unsubscribed_at.is_(None),
            User.opted_out_at.is_(None),
        )
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
    return stmt


async def audience_counts(
    session: AsyncSession,
    trip_id: int,
    segment: str,
    *,
    marketing: bool,
    window_opened_after: dt.datetime,
) -> tuple[int, int]:
    """(recipients, of them inside the 24-hour window) counted by the database: an
    estimate for 100,000 buyers loads none of them."""
    inside = func.coalesce(
        func.sum(case((User.last_inbound_at > window_opened_after, 1), else_=0)), 0
    )
    stmt = _audience(trip_id, segment, marketing, func.count(), inside)
    total, free = (await session.execute(stmt)).one()
    return int(total), int(free)


async def audience_rows(
    session: AsyncSession, trip_id: int, segment: str, *, marketing: bool
) -> list[Any]:
    """(id, last_inbound_at) of each recipient, as plain rows (a fan-out's deliveries)."""
    stmt = _audience(trip_id, segment, marketing, User.id, User.last_inbound_at).order_by(User.id)
    return list((await session.execute(stmt)).all())


async def record_delivery(session: AsyncSession, outbox_id: int) -> None:
    """Mirror the outbox row's outcome on its delivery (sent, or failed for good)."""
    row = await session.get(OutboxMessage, outbox_id)
    if row is None:
        return
    if row.status == OutboxStatus.SENT.value:
        status, code = D.SENT.value, None
    elif row.status == OutboxStatus.FAILED.value:
        status, code = D.FAILED.value, row.error_code
    else:
        return  # retried later
    await session.execute(
        update(BroadcastDelivery)
        .where(
            BroadcastDelivery.outbox_id == outbox_id,
            BroadcastDelivery.status.not_in((D.DELIVERED, D.READ)),
        )
        .values(status=status, error_code=code)
    )


async def mark_deliveries_sent(session: AsyncSession, outbox_ids: list[int]) -> None:
    """The deliveries of these just-sent rows are sent (unless a status webhook already
    moved them further)."""
    await session.execute(
        update(BroadcastDelivery)
        .where(
            BroadcastDelivery.outbox_id.in_(outbox_ids),
            BroadcastDelivery.status.not_in((D.DELIVERED, D.READ, D.FAILED)),
        )
        .values(status=D.SENT.value, error_code=None)
    )


async def has_open_deliveries(session: AsyncSession, broadcast_id: int) -> bool:
    """Is any delivery still waiting to be queued or sent? (cheap: stops at the first)"""
    stmt = (
        select(BroadcastDelivery.id)
        .where(
            BroadcastDelivery.broadcast_id == broadcast_id,
            BroadcastDelivery.status.in_((D.PENDING, D.QUEUED)),
        )
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


async def stop_marketing(session: AsyncSession, user_id: int) -> None:
    """Meta says this user stopped marketing messages (131050): no more broadcasts."""
    await session.execute(
        update(User)
        .where(User.id == user_id, User.marketing_opted_out_at.is_(None))
        .values(marketing_opted_out_at=utcnow())
    )


async def sending_without_open_deliveries(session: AsyncSession) -> list[int]:
    """Broadcasts still ``sending`` with no delivery waiting: ready to be finished."""
    open_delivery = exists().where(
        BroadcastDelivery.broadcast_id == Broadcast.id,
        BroadcastDelivery.status.in_((D.PENDING, D.QUEUED)),
    )
    stmt = select(Broadcast.id).where(Broadcast.status == B.SENDING.value, ~open_delivery)
    return list((await session.execute(stmt)).scalars())


async def failure_reasons(
    session: AsyncSession, broadcast_id: int
) -> list[tuple[int | None, int]]:
    """(Meta's error code, how many) of the failed and skipped deliveries, most first."""
    stmt = (
        select(BroadcastDelivery.error_code, func.count())
        .where(
            BroadcastDelivery.broadcast_id == broadcast_id,
            BroadcastDelivery.status.in_((D.FAILED, D.SKIPPED)),
            BroadcastDelivery.error_code.is_not(None),
        )
        .group_by(BroadcastDelivery.error_code)
        .order_by(func.count().desc())
    )
    return [(code, int(n)) for code, n in (await session.execute(stmt)).all()]


async def counts(session: AsyncSession, broadcast_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(BroadcastDelivery.status, func.count())
        .where(BroadcastDelivery.broadcast_id == broadcast_id)
        .group_by(BroadcastDelivery.status)
    )
    return {status: n for status, n in rows.all()}


async def metered_cost(session: AsyncSession, broadcast_id: int) -> int:
    """Rupiah billed for a broadcast so far: our estimate per sent message until the
    status webhook's pricing replaced it with Meta's word."""
    stmt = select(func.coalesce(func.sum(OutboxMessage.cost), 0)).where(
        OutboxMessage.broadcast_id == broadcast_id, OutboxMessage.billable.is_(True)
    )
    return int((await session.execute(stmt)).scalar_one())


async def get(session: AsyncSession, broadcast_id: int) -> Broadcast | None:
    return await session.get(Broadcast, broadcast_id)


async def lock(session: AsyncSession, broadcast_id: int) -> Broadcast | None:
    """The broadcast, locked for this transaction on Postgres (one fan-out at a time)."""
    stmt = select(Broadcast).where(Broadcast.id == broadcast_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def add(session: AsyncSession, **values: Any) -> Broadcast:
    row = Broadcast(**values)
    session.add(row)
    await session.flush()
    return row


async def add_once(session: AsyncSession, **values: Any) -> int:
    """A broadcast unless one with its ``dedupe_key`` exists; 1 when it was added."""
    result = await session.execute(
        insert_ignoring_conflicts(session, Broadcast, ["dedupe_key"]).values(**values)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def add_deliveries(
    session: AsyncSession, broadcast_id: int, user_ids: Iterable[int]
) -> None:
    """A pending delivery per recipient, under the unique (broadcast, recipient) key: a
    second run adds nobody twice."""
    rows = [
        {"broadcast_id": broadcast_id, "user_id": u, "status": D.PENDING.value} for u in user_ids
    ]
    if rows:
        await session.execute(
            insert_ignoring_conflicts(session, BroadcastDelivery, ["broadcast_id", "user_id"]),
            rows,
        )


async def pending_deliveries(
    session: AsyncSession, broadcast_id: int, limit: int
) -> list[tuple[BroadcastDelivery, User]]:
    """The next pending deliveries with their recipients (skipping rows another worker
    holds, on Postgres)."""
    stmt = (
        select(BroadcastDelivery, User)
        .join(User, User.id == BroadcastDelivery.user_id)
        .where(
            BroadcastDelivery.broadcast_id == broadcast_id,
            BroadcastDelivery.status == D.PENDING.value,
        )
        .order_by(BroadcastDelivery.id)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True, of=BroadcastDelivery)
    return [(d, u) for d, u in (await session.execute(stmt)).all()]


async def claim_pending(session: AsyncSession, delivery_ids: list[int]) -> set[int]:
    """Move these deliveries from ``pending`` to ``queued`` as one conditional update and
    return the ones this transaction moved: a delivery another fan-out of the same
    broadcast queued meanwhile (a second process reading the same pending rows on SQLite)
    is not claimed twice, so it never becomes a second outbox row."""
    if not delivery_ids:
        return set()
    result = await session.execute(
        update(BroadcastDelivery)
        .where(BroadcastDelivery.id.in_(delivery_ids), BroadcastDelivery.status == D.PENDING.value)
        .values(status=D.QUEUED.value)
        .returning(BroadcastDelivery.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.scalars())


async def move(
    session: AsyncSession, broadcast_id: int, sources: Iterable[str], to: str, **values: Any
) -> bool:
    """``status = to`` (with ``values``) only while the broadcast is in ``sources``: one
    conditional update, so of two workers making the same move only one wins."""
    result = await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status.in_(tuple(sources)))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def due_for_dispatch(session: AsyncSession) -> list[Broadcast]:
    """Confirmed broadcasts to hand to the actor, and summaries still coming due (the
    service picks those with buyers due now)."""
    stmt = select(Broadcast).where(
        or_(
            Broadcast.status == B.QUEUED.value,
            (Broadcast.kind == "summary") & Broadcast.status.in_((B.DISPATCHED, B.SENDING)),
        )
    )
    return list((await session.execute(stmt)).scalars())


async def stalled(
    session: AsyncSession, *, still_since: dt.datetime
) -> list[tuple[int, str | None]]:
    """(id, the request that confirmed it) of the broadcasts handed to the actor whose
    fan-out has not moved since ``still_since``: ``dispatched`` (the message never ran)
    or ``sending`` with recipients not yet queued (it stopped half-way). A summary not
    yet run is left out: the scheduler hands it over on every pass until its first
    fan-out."""
    pending = exists().where(
        BroadcastDelivery.broadcast_id == Broadcast.id,
        BroadcastDelivery.status == D.PENDING.value,
    )
    stmt = (
        select(Broadcast.id, Broadcast.request_id)
        .where(
            or_(Broadcast.progress_at.is_(None), Broadcast.progress_at < still_since),
            or_(
                (Broadcast.status == B.DISPATCHED.value) & (Broadcast.kind != "summary"),
                (Broadcast.status == B.SENDING.value) & pending,
            ),
        )
        .order_by(Broadcast.id)
    )
    return [(row.id, row.request_id) for row in await session.execute(stmt)]


async def mark_progress(session: AsyncSession, broadcast_id: int, *, at: dt.datetime) -> None:
    await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id)
        .values(progress_at=at)
        .execution_options(synchronize_session=False)
    )


async def latest_of_jastiper(
    session: AsyncSession, jastiper_id: int, *, limit: int = 3
) -> list[tuple[Broadcast, Trip]]:
    """The jastiper's latest broadcasts past the draft stage, with their trips."""
    rows = await session.execute(
        select(Broadcast, Trip)
        .join(Trip, Trip.id == Broadcast.trip_id)
        .where(Trip.jastiper_id == jastiper_id, Broadcast.status != B.DRAFT.value)
        .order_by(Broadcast.id.desc())
        .limit(limit)
    )
    return [(b, t) for b, t in rows.all()]

"""The admin panel's queue page: what is stuck, and giving it another chance.

Dead letters are outbox rows that failed for good and inbound units parked after their
attempts; retrying puts them back where the ordinary machinery (the outbox sender, the
inbox sweeper) picks them up, so a retried send goes exactly like a first one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Broadcast,
    BroadcastDelivery,
    InboundStatus,
    InboundUpdate,
    OutboxMessage,
    OutboxStatus,
    Trip,
    User,
    utcnow,
)


async def failed_outbox(
    session: AsyncSession, *, limit: int = 100
) -> list[tuple[OutboxMessage, User | None]]:
    """Outbox rows that failed for good, newest first, with their recipients."""
    stmt = (
        select(OutboxMessage, User)
        .outerjoin(User, User.id == OutboxMessage.user_id)
        .where(OutboxMessage.status == OutboxStatus.FAILED.value)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return [(row, user) for row, user in (await session.execute(stmt)).all()]


async def failed_units(session: AsyncSession, *, limit: int = 100) -> list[Any]:
    """Inbound units parked as failed, newest first: (id, kind, attempts, last_error,
    received_at) — never the body (a buyer's message)."""
    stmt = (
        select(
            InboundUpdate.id,
            InboundUpdate.kind,
            InboundUpdate.attempts,
            InboundUpdate.last_error,
            InboundUpdate.received_at,
        )
        .where(InboundUpdate.status == InboundStatus.FAILED.value)
        .order_by(InboundUpdate.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).all())


async def retry_outbox(session: AsyncSession, ids: Sequence[int] | None = None) -> int:
    """Failed outbox rows (``ids``, or all of them) back to pending with their attempts
    reset, due now; a broadcast delivery of such a row is queued again so that its
    broadcast counts it as it goes. Returns how many rows."""
    stmt = update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED.value)
    if ids is not None:
        if not ids:
            return 0
        stmt = stmt.where(OutboxMessage.id.in_(list(ids)))
    result = await session.execute(
        stmt.values(
            status=OutboxStatus.PENDING.value,
            attempts=0,
            next_attempt_at=utcnow(),
            lease_until=None,
        )
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    retried = list(result.scalars())
    if retried:
        await session.execute(
            update(BroadcastDelivery)
            .where(BroadcastDelivery.outbox_id.in_(retried), BroadcastDelivery.status == "failed")
            .values(status="queued", error_code=None)
            .execution_options(synchronize_session=False)
        )
    return len(retried)


async def requeue_units(session: AsyncSession, ids: Sequence[int] | None = None) -> int:
    """Failed inbound units (``ids``, or all) back to pending with their attempts reset:
    the inbox sweeper processes them again. Returns how many."""
    stmt = update(InboundUpdate).where(InboundUpdate.status == InboundStatus.FAILED.value)
    if ids is not None:
        if not ids:
            return 0
        stmt = stmt.where(InboundUpdate.id.in_(list(ids)))
    result = await session.execute(
        stmt.values(status=InboundStatus.PENDING.value, attempts=0)
        .returning(InboundUpdate.id)
        .execution_options(synchronize_session=False)
    )
    return len(list(result.scalars()))


async def broadcasts(
    session: AsyncSession, *, limit: int = 50, before_id: int | None = None
) -> list[tuple[Broadcast, Trip]]:
    """Broadcasts past the draft stage with their trips, newest first."""
    stmt = (
        select(Broadcast, Trip)
        .join(Trip, Trip.id == Broadcast.trip_id)
        .where(Broadcast.status != "draft")
        .order_by(Broadcast.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        stmt = stmt.where(Broadcast.id < before_id)
    return [(b, t) for b, t in (await session.execute(stmt)).all()]


async def open_trips(session: AsyncSession, status: str) -> list[Trip]:
    stmt = select(Trip).where(Trip.status == status).order_by(Trip.code)
    return list((await session.execute(stmt)).scalars())


async def health_since(session: AsyncSession, since: Any) -> dict[str, Any]:
    """What ``jastipin check postdeploy`` judges: inbound units and outbox rows created
    since ``since`` by status, and when the oldest row still waiting to be sent was
    queued."""
    from sqlalchemy import func

    inbound = {
        s: n
        for s, n in (
            await session.execute(
                select(InboundUpdate.status, func.count())
                .where(InboundUpdate.received_at >= since)
                .group_by(InboundUpdate.status)
            )
        ).all()
    }
    outbound = {
        s: n
        for s, n in (
            await session.execute(
                select(OutboxMessage.status, func.count())
                .where(OutboxMessage.created_at >= since)
                .group_by(OutboxMessage.status)
            )
        ).all()
    }
    waiting = (
        await session.execute(
            select(func.min(OutboxMessage.created_at)).where(
                OutboxMessage.status.in_((OutboxStatus.PENDING.value, OutboxStatus.SENDING.value))
            )
        )
    ).scalar_one()
    pending_inbound = (
        await session.execute(
            select(func.min(InboundUpdate.received_at)).where(
                InboundUpdate.status == InboundStatus.PENDING.value
            )
        )
    ).scalar_one()
    return {
        "inbound": inbound,
        "outbound": outbound,
        "oldest_waiting_send": waiting,
        "oldest_pending_unit": pending_inbound,
    }


BACKUP_DONE = "backup.done"  # the audit action `jastipin backup` records when it succeeded


async def gauge_readings(session: AsyncSession) -> dict[str, Any]:
    """What the alerting gauges read, in one round of small aggregates: replies (outbox
    rows of no broadcast) waiting and the oldest of them, inbound units waiting and the
    oldest of them, and when the last backup succeeded (None: never)."""
    from sqlalchemy import func

    from storage.models import AuditLog

    open_ = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
    replies, oldest_reply = (
        await session.execute(
            select(func.count(), func.min(OutboxMessage.created_at)).where(
                OutboxMessage.status.in_(open_), OutboxMessage.broadcast_id.is_(None)
            )
        )
    ).one()
    units, oldest_unit = (
        await session.execute(
            select(func.count(), func.min(InboundUpdate.received_at)).where(
                InboundUpdate.status == InboundStatus.PENDING.value
            )
        )
    ).one()
    backup = (
        await session.execute(
            select(func.max(AuditLog.created_at)).where(AuditLog.action == BACKUP_DONE)
        )
    ).scalar_one()
    return {
        "replies_pending": int(replies),
        "oldest_reply": oldest_reply,
        "inbox_pending": int(units),
        "oldest_unit": oldest_unit,
        "last_backup": backup,
    }

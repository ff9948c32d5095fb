"""The admin panel's reads for trips, jastipers and the audit log.

Names are sealed (no SQL can match them): rows come back with their ``User`` and the
caller reads the decrypted names in Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TypedDict, Unpack

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import (
    AdminUser,
    AuditLog,
    Jastiper,
    Order,
    Participant,
    Product,
    Trip,
    User,
)


async def trips_overview(
    session: AsyncSession, *, status: str | None = None, limit: int = 200
) -> list[tuple[Trip, int, int]]:
    """Trips (in ``status``, or all) with participant and order counts, newest first."""
    participants = (
        select(func.count())
        .where(Participant.trip_id == Trip.id)
        .correlate(Trip)
        .scalar_subquery()
    )
    orders = select(func.count()).where(Order.trip_id == Trip.id).correlate(Trip).scalar_subquery()
    stmt = (
        select(Trip, participants, orders)
        .order_by(Trip.id.desc())
        .limit(limit)
        .options(selectinload(Trip.jastiper))
    )
    if status is not None:
        stmt = stmt.where(Trip.status == status)
    return [(trip, int(p), int(o)) for trip, p, o in (await session.execute(stmt)).all()]


async def trip_with_jastiper(
    session: AsyncSession, code: str, *, lock: bool = False
) -> Trip | None:
    """The trip with its jastiper; ``lock``: for the caller's transaction (two admins
    closing at once: the second sees the first's change)."""
    stmt = select(Trip).where(Trip.code == code.upper()).options(selectinload(Trip.jastiper))
    if lock:
        stmt = stmt.with_for_update(of=Trip)
    return (await session.execute(stmt)).scalar_one_or_none()


async def participants_of(
    session: AsyncSession, trip_id: int, *, limit: int = 500
) -> list[tuple[Participant, User]]:
    """A trip's participants with their user, in the order they joined."""
    rows = await session.execute(
        select(Participant, User)
        .join(User, User.id == Participant.user_id)
        .where(Participant.trip_id == trip_id)
        .order_by(Participant.id)
        .limit(limit)
    )
    return [(p, u) for p, u in rows.all()]


async def jastipers_overview(session: AsyncSession) -> list[tuple[Jastiper, User, int]]:
    """Every jastiper account with its user and number of trips, oldest request first."""
    trips = (
        select(func.count())
        .where(Trip.jastiper_id == Jastiper.id)
        .correlate(Jastiper)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Jastiper, User, trips).join(User, User.id == Jastiper.user_id).order_by(Jastiper.id)
    )
    return [(j, u, int(n)) for j, u, n in rows.all()]


class AuditFilter(TypedDict, total=False):
    """What the audit log is narrowed by (each left out, or None: not narrowed)."""

    action: str | None  # exact, or a prefix when it ends with a dot (``trip.``)
    trip_id: int | None
    actor: str | None  # chat (a WhatsApp user), web (an admin), system (neither)
    since: dt.datetime | None  # created at or after
    until: dt.datetime | None  # created before


async def audit_rows(
    session: AsyncSession, *, offset: int = 0, limit: int = 50, **where: Unpack[AuditFilter]
) -> list[AuditLog]:
    """Audit rows, newest first, narrowed by ``where`` (:class:`AuditFilter`)."""
    action, trip_id, actor = where.get("action"), where.get("trip_id"), where.get("actor")
    since, until = where.get("since"), where.get("until")
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).offset(offset).limit(limit)
    if action:
        if action.endswith("."):
            escaped = action.replace("%", "").replace("_", r"\_")
            stmt = stmt.where(AuditLog.action.like(escaped + "%", escape="\\"))
        else:
            stmt = stmt.where(AuditLog.action == action)
    if trip_id is not None:
        stmt = stmt.where(AuditLog.trip_id == trip_id)
    if actor == "chat":
        stmt = stmt.where(AuditLog.actor_user_id.is_not(None))
    elif actor == "web":
        stmt = stmt.where(AuditLog.actor_admin_id.is_not(None))
    elif actor == "system":
        stmt = stmt.where(AuditLog.actor_user_id.is_(None), AuditLog.actor_admin_id.is_(None))
    if since is not None:
        stmt = stmt.where(AuditLog.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditLog.created_at < until)
    return list((await session.execute(stmt)).scalars().all())


async def audit_actions(session: AsyncSession) -> list[str]:
    """The distinct actions in the log (for the filter's choices)."""
    rows = await session.execute(select(AuditLog.action).distinct().order_by(AuditLog.action))
    return [str(a) for a in rows.scalars().all()]


async def users_by_ids(session: AsyncSession, ids: Iterable[int]) -> dict[int, User]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.execute(select(User).where(User.id.in_(wanted)))
    return {u.id: u for u in rows.scalars().all()}


async def admins_by_ids(session: AsyncSession, ids: Iterable[int]) -> dict[int, AdminUser]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.execute(select(AdminUser).where(AdminUser.id.in_(wanted)))
    return {a.id: a for a in rows.scalars().all()}


async def trips_by_ids(session: AsyncSession, ids: Iterable[int]) -> dict[int, Trip]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.execute(select(Trip).where(Trip.id.in_(wanted)))
    return {t.id: t for t in rows.scalars().all()}


async def jastiper_for_update(session: AsyncSession, jastiper_id: int) -> Jastiper | None:
    """A jastiper account, locked for the caller's transaction (two admins deciding at
    once: the second sees the first's verdict)."""
    stmt = select(Jastiper).where(Jastiper.id == jastiper_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def product_of_trip(session: AsyncSession, trip_id: int, product_id: int) -> Product | None:
    """A product of that trip, locked (None when the id belongs to another trip)."""
    stmt = (
        select(Product)
        .where(Product.id == product_id, Product.trip_id == trip_id)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()

"""A jastiper's web panel: the one-time links, the sessions they start, and every read the
panel makes — each scoped by the session's jastiper id in the SQL itself, so another
jastiper's order, proof or broadcast is simply not found.

The rules (how long a link or a session lives) live in ``services/jastiper_web.py``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import (
    Broadcast,
    Jastiper,
    JastiperWebLink,
    JastiperWebSession,
    Order,
    PaymentProof,
    Trip,
    User,
)

# --- links -------------------------------------------------------------------------------


async def add_link(
    session: AsyncSession,
    jastiper_id: int,
    token_hash: str,
    now: dt.datetime,
    expires: dt.datetime,
) -> None:
    """A new link, which revokes the jastiper's older links not used yet (they expire
    now: only the newest link opens the panel); links expired for a day are forgotten."""
    await session.execute(
        update(JastiperWebLink)
        .where(
            JastiperWebLink.jastiper_id == jastiper_id,
            JastiperWebLink.used_at.is_(None),
            JastiperWebLink.expires_at > now,
        )
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(JastiperWebLink).where(
            JastiperWebLink.jastiper_id == jastiper_id,
            JastiperWebLink.expires_at < now - dt.timedelta(days=1),
        )
    )
    session.add(
        JastiperWebLink(
            jastiper_id=jastiper_id, token_hash=token_hash, created_at=now, expires_at=expires
        )
    )
    await session.flush()


async def link(session: AsyncSession, token_hash: str) -> JastiperWebLink | None:
    stmt = select(JastiperWebLink).where(JastiperWebLink.token_hash == token_hash)
    return (await session.execute(stmt)).scalar_one_or_none()


async def use_link(session: AsyncSession, token_hash: str, now: dt.datetime) -> int | None:
    """Mark the link used if it is unused and unexpired — a conditional update, so two
    requests racing with the same link cannot both win; its jastiper id, or None."""
    result = await session.execute(
        update(JastiperWebLink)
        .where(
            JastiperWebLink.token_hash == token_hash,
            JastiperWebLink.used_at.is_(None),
            JastiperWebLink.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        return None
    found = await link(session, token_hash)
    return found.jastiper_id if found is not None else None


# --- sessions ------------------------------------------------------------------------------


async def add_session(
    session: AsyncSession, jastiper_id: int, token_hash: str, now: dt.datetime
) -> None:
    session.add(
        JastiperWebSession(
            jastiper_id=jastiper_id, token_hash=token_hash, created_at=now, last_seen_at=now
        )
    )
    await session.flush()


async def session_with_jastiper(
    session: AsyncSession, token_hash: str
) -> tuple[JastiperWebSession, Jastiper] | None:
    """The unrevoked session with this token hash and its jastiper."""
    row = (
        await session.execute(
            select(JastiperWebSession, Jastiper)
            .join(Jastiper, Jastiper.id == JastiperWebSession.jastiper_id)
            .where(
                JastiperWebSession.token_hash == token_hash,
                JastiperWebSession.revoked_at.is_(None),
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def touch_session(session: AsyncSession, token_hash: str, now: dt.datetime) -> None:
    await session.execute(
        update(JastiperWebSession)
        .where(JastiperWebSession.token_hash == token_hash)
        .values(last_seen_at=now)
    )


async def revoke_session(session: AsyncSession, token_hash: str, now: dt.datetime) -> None:
    await session.execute(
        update(JastiperWebSession)
        .where(
            JastiperWebSession.token_hash == token_hash, JastiperWebSession.revoked_at.is_(None)
        )
        .values(revoked_at=now)
    )


# --- the panel's reads, scoped by jastiper -------------------------------------------------


async def trips(session: AsyncSession, jastiper_id: int) -> list[Trip]:
    stmt = select(Trip).where(Trip.jastiper_id == jastiper_id).order_by(Trip.id.desc())
    return list((await session.execute(stmt)).scalars().all())


async def trip(session: AsyncSession, jastiper_id: int, code: str) -> Trip | None:
    stmt = select(Trip).where(Trip.jastiper_id == jastiper_id, Trip.code == code.upper())
    return (await session.execute(stmt)).scalar_one_or_none()


async def orders(
    session: AsyncSession,
    jastiper_id: int,
    *,
    trip_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[tuple[Order, Trip, User]]:
    """The jastiper's orders (all their trips, or one), newest first, with the buyer."""
    stmt = (
        select(Order, Trip, User)
        .join(Trip, Trip.id == Order.trip_id)
        .join(User, User.id == Order.user_id)
        .where(Trip.jastiper_id == jastiper_id)
        .order_by(Order.id.desc())
        .limit(limit)
    )
    if trip_id is not None:
        stmt = stmt.where(Order.trip_id == trip_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    return [(o, t, u) for o, t, u in (await session.execute(stmt)).all()]


async def order(
    session: AsyncSession, jastiper_id: int, code: str
) -> tuple[Order, Trip, User] | None:
    """One order of the jastiper's trips by code, items loaded; None for anyone else's."""
    stmt = (
        select(Order, Trip, User)
        .join(Trip, Trip.id == Order.trip_id)
        .join(User, User.id == Order.user_id)
        .where(Trip.jastiper_id == jastiper_id, Order.code == code.upper())
        .options(selectinload(Order.items))
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1], row[2])


async def proofs(
    session: AsyncSession,
    jastiper_id: int,
    *,
    status: str | None = None,
    order_id: int | None = None,
) -> list[tuple[PaymentProof, Order, Trip, User]]:
    """Proofs of the jastiper's orders, oldest first, with order, trip and buyer."""
    stmt = (
        select(PaymentProof, Order, Trip, User)
        .join(Order, Order.id == PaymentProof.order_id)
        .join(Trip, Trip.id == Order.trip_id)
        .join(User, User.id == Order.user_id)
        .where(Trip.jastiper_id == jastiper_id)
        .order_by(PaymentProof.id)
        .limit(100)
    )
    if status is not None:
        stmt = stmt.where(PaymentProof.status == status)
    if order_id is not None:
        stmt = stmt.where(PaymentProof.order_id == order_id)
    return [(p, o, t, u) for p, o, t, u in (await session.execute(stmt)).all()]


async def proof(session: AsyncSession, jastiper_id: int, proof_id: int) -> PaymentProof | None:
    stmt = (
        select(PaymentProof)
        .join(Order, Order.id == PaymentProof.order_id)
        .join(Trip, Trip.id == Order.trip_id)
        .where(PaymentProof.id == proof_id, Trip.jastiper_id == jastiper_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def broadcast(
    session: AsyncSession, jastiper_id: int, broadcast_id: int
) -> Broadcast | None:
    stmt = (
        select(Broadcast)
        .join(Trip, Trip.id == Broadcast.trip_id)
        .where(Broadcast.id == broadcast_id, Trip.jastiper_id == jastiper_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()

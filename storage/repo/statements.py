"""Bank statement reconciliation (``/mutasi``): the payments a statement may confirm and
the statement lines already applied. The matching rules live in
``services/reconcile.py``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Order, StatementCredit, Trip, User


async def jastiper_orders(
    session: AsyncSession,
    jastiper_id: int,
    statuses: Iterable[str],
    *,
    amounts: Iterable[int] | None = None,
    limit: int = 2000,
) -> list[tuple[Order, Trip, User]]:
    """The jastiper's orders in ``statuses`` (optionally only those due one of
    ``amounts``), with their trip and buyer, oldest first."""
    stmt = (
        select(Order, Trip, User)
        .join(Trip, Trip.id == Order.trip_id)
        .join(User, User.id == Order.user_id)
        .where(Trip.jastiper_id == jastiper_id, Order.status.in_(tuple(statuses)))
        .order_by(Order.id)
        .limit(limit)
    )
    if amounts is not None:
        stmt = stmt.where(Order.amount_due.in_(tuple(set(amounts))))
    return [(o, t, u) for o, t, u in (await session.execute(stmt)).all()]


async def jastiper_order(
    session: AsyncSession, jastiper_id: int, order_id: int
) -> tuple[Order, Trip, User] | None:
    """One of the jastiper's orders by id, with its trip and buyer (None if not theirs)."""
    stmt = (
        select(Order, Trip, User)
        .join(Trip, Trip.id == Order.trip_id)
        .join(User, User.id == Order.user_id)
        .where(Trip.jastiper_id == jastiper_id, Order.id == order_id)
        .options(selectinload(Order.items))
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1], row[2])


async def applied_keys(session: AsyncSession, jastiper_id: int, keys: Iterable[str]) -> set[str]:
    """Which of these statement lines confirmed a payment already."""
    wanted = tuple(set(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        stmt = select(StatementCredit.line_key).where(
            StatementCredit.jastiper_id == jastiper_id,
            StatementCredit.line_key.in_(wanted[start : start + 500]),
        )
        found.update((await session.execute(stmt)).scalars().all())
    return found


async def record(
    session: AsyncSession,
    *,
    jastiper_id: int,
    line_key: str,
    order_id: int,
    amount: int,
    credited_on: dt.date,
) -> None:
    session.add(
        StatementCredit(
            jastiper_id=jastiper_id,
            line_key=line_key,
            order_id=order_id,
            amount=amount,
            credited_on=credited_on,
        )
    )
    await session.flush()

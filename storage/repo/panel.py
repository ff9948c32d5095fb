"""The admin panel's reads: the dashboard's figures, order search and history.

Names are sealed (no SQL can match them), so a search by buyer name reads a bounded set
of candidate orders here and the caller compares names in Python.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any, TypedDict, Unpack

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import (
    AuditLog,
    Order,
    OutboxMessage,
    Participant,
    PaymentProof,
    Trip,
    User,
)


async def open_trips(session: AsyncSession, status: str) -> list[tuple[Trip, int, int]]:
    """Trips in ``status`` with their participant and order counts, newest first."""
    participants = (
        select(func.count())
        .where(Participant.trip_id == Trip.id)
        .correlate(Trip)
        .scalar_subquery()
    )
    orders = select(func.count()).where(Order.trip_id == Trip.id).correlate(Trip).scalar_subquery()
    rows = await session.execute(
        select(Trip, participants, orders)
        .where(Trip.status == status)
        .order_by(Trip.id.desc())
        .options(selectinload(Trip.jastiper))
    )
    return [(trip, int(p), int(o)) for trip, p, o in rows.all()]


@dataclasses.dataclass(frozen=True, slots=True)
class OrderMoney:
    """An order's money columns, all ``services/amounts.py`` needs to add it up."""

    status: str
    total: int
    unique_cents: int
    amount_due: int
    paid: int
    refund_due: int
    refunded: int


MONEY_COLUMNS = (
    Order.status,
    Order.total,
    Order.unique_cents,
    Order.amount_due,
    Order.paid,
    Order.refund_due,
    Order.refunded,
)


async def orders_money(session: AsyncSession, trip_id: int | None = None) -> list[OrderMoney]:
    """The money columns of every order, or of one trip's (a few integers each: the
    dashboard and the trip pages add them up with ``services.amounts.figures``, the same
    rules every order row is shown by)."""
    query = select(*MONEY_COLUMNS)
    if trip_id is not None:
        query = query.where(Order.trip_id == trip_id)
    rows = await session.execute(query)
    return [OrderMoney(*row) for row in rows.all()]


def _wib_day(session: AsyncSession, column: Any) -> Any:
    """The Jakarta (WIB, UTC+7 all year) day of a UTC timestamp, in SQL."""
    if session.get_bind().dialect.name == "sqlite":
        return func.date(column, "+7 hours")
    return func.date(column + literal_column("interval '7 hours'"))


async def orders_per_day(session: AsyncSession, since: dt.datetime) -> list[tuple[str, int]]:
    """(WIB day as YYYY-MM-DD, orders placed) since ``since``."""
    day = _wib_day(session, Order.created_at)
    rows = await session.execute(
        select(day, func.count()).where(Order.created_at >= since).group_by(day).order_by(day)
    )
    return [(str(d), int(n)) for d, n in rows.all()]


async def paid_messages_per_day(
    session: AsyncSession, since: dt.datetime
) -> list[tuple[str, int, int]]:
    """(WIB day, billable messages sent, their cost in Rupiah) since ``since``."""
    day = _wib_day(session, OutboxMessage.sent_at)
    rows = await session.execute(
        select(day, func.count(), func.coalesce(func.sum(OutboxMessage.cost), 0))
        .where(OutboxMessage.sent_at >= since, OutboxMessage.billable.is_(True))
        .group_by(day)
        .order_by(day)
    )
    return [(str(d), int(n), int(c)) for d, n, c in rows.all()]


class OrderFilter(TypedDict, total=False):
    """What an order search is narrowed by (each left out, or None: not narrowed)."""

    trip_id: int | None
    statuses: Iterable[str] | None  # any of these statuses
    since: dt.datetime | None  # created at or after
    until: dt.datetime | None  # created before
    code: str | None  # the order code starts with this


async def find_orders(
    session: AsyncSession, *, limit: int = 50, **where: Unpack[OrderFilter]
) -> list[tuple[Order, Trip, User]]:
    """Orders with their trip and buyer, newest first, filtered."""
    stmt = (
        select(Order, Trip, User)
        .join(Trip, Trip.id == Order.trip_id)
        .join(User, User.id == Order.user_id)
        .order_by(Order.id.desc())
        .limit(limit)
    )
    trip_id, statuses = where.get("trip_id"), where.get("statuses")
    since, until, code = where.get("since"), where.get("until"), where.get("code")
    if trip_id is not None:
        stmt = stmt.where(Order.trip_id == trip_id)
    if statuses is not None:
        stmt = stmt.where(Order.status.in_(tuple(statuses)))
    if since is not None:
        stmt = stmt.where(Order.created_at >= since)
    if until is not None:
        stmt = stmt.where(Order.created_at < until)
    if code:
        stmt = stmt.where(Order.code.like(code.upper().replace("%", "").replace("_", "") + "%"))
    return [(o, t, u) for o, t, u in (await session.execute(stmt)).all()]


async def proofs_awaiting(
    session: AsyncSession, status: str, *, limit: int = 50
) -> list[tuple[PaymentProof, Order, Trip, User]]:
    """Proofs in ``status`` (awaiting review), oldest first, with order, trip, buyer."""
    rows = await session.execute(
        select(PaymentProof, Order, Trip, User)
        .join(Order, Order.id == PaymentProof.order_id)
        .join(Trip, Trip.id == Order.trip_id)
        .join(User, User.id == Order.user_id)
        .where(PaymentProof.status == status)
        .order_by(PaymentProof.id)
        .limit(limit)
    )
    return [(p, o, t, u) for p, o, t, u in rows.all()]


async def order_history(
    session: AsyncSession, trip_id: int, order_code: str, *, limit: int = 100
) -> list[AuditLog]:
    """Audit rows about one order (of its trip), oldest first."""
    stmt = (
        select(AuditLog)
        .where(AuditLog.trip_id == trip_id, AuditLog.detail["order"].as_string() == order_code)
        .order_by(AuditLog.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def reused_proofs(
    session: AsyncSession, proofs: Iterable[PaymentProof]
) -> dict[int, list[str]]:
    """The proofs among ``proofs`` whose picture (its SHA-256) was also sent as the proof
    of another order, each with those orders' codes: the warning the jastiper gets in
    chat (``services.payments``), shown wherever a proof is."""
    proofs = list(proofs)
    digests = {p.content_sha256 for p in proofs}
    if not digests:
        return {}
    rows = (
        await session.execute(
            select(PaymentProof.content_sha256, PaymentProof.order_id, Order.code)
            .join(Order, Order.id == PaymentProof.order_id)
            .where(PaymentProof.content_sha256.in_(digests))
        )
    ).all()
    out: dict[int, list[str]] = {}
    for proof in proofs:
        codes = sorted(
            {c for sha, oid, c in rows if sha == proof.content_sha256 and oid != proof.order_id}
        )
        if codes:
            out[proof.id] = codes
    return out

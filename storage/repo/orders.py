"""Orders, their items and payment proofs: every SQL statement about them.

The rules (totals, which status may follow which, who is told) live in
``services/orders.py`` and ``services/payments.py``; this module only reads and writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from storage.models import (
    Jastiper,
    Order,
    OrderItem,
    PaymentProof,
    Trip,
    User,
)
from storage.repo._sql import is_postgres, move_status


class OrderNotFound(Exception):
    """No order with that code (for this buyer)."""


def _with_items() -> tuple:  # type: ignore[type-arg]
    return (selectinload(Order.items),)


async def code_taken(session: AsyncSession, code: str) -> bool:
    return (await session.execute(select(Order.id).where(Order.code == code))).first() is not None


async def insert_order(
    session: AsyncSession, *, items: Sequence[dict[str, Any]], **values: Any
) -> Order:
    """A new order row with its items (``items``: OrderItem column values)."""
    order = Order(**values)
    session.add(order)
    await session.flush()
    for item in items:
        session.add(OrderItem(order_id=order.id, **item))
    await session.flush()
    return order


async def user_orders(
    session: AsyncSession, user_id: int, *, limit: int = 10, offset: int = 0
) -> list[Order]:
    stmt = (
        select(Order)
        .where(Order.user_id == user_id)
        .order_by(Order.id.desc())
        .offset(offset)
        .limit(limit)
        .options(*_with_items())
    )
    return list((await session.execute(stmt)).scalars().all())


async def user_orders_in(
    session: AsyncSession, user_id: int, statuses: Iterable[str], *, trip_id: int | None = None
) -> list[Order]:
    """The buyer's orders in these statuses (oldest first), optionally of one trip."""
    stmt = (
        select(Order)
        .where(Order.user_id == user_id, Order.status.in_(tuple(statuses)))
        .order_by(Order.id)
        .options(*_with_items())
    )
    if trip_id is not None:
        stmt = stmt.where(Order.trip_id == trip_id)
    return list((await session.execute(stmt)).scalars().all())


async def get_order(session: AsyncSession, code: str, *, user_id: int | None = None) -> Order:
    stmt = select(Order).where(Order.code == code.upper()).options(*_with_items())
    if user_id is not None:
        stmt = stmt.where(Order.user_id == user_id)
    order = (await session.execute(stmt)).scalar_one_or_none()
    if order is None:
        raise OrderNotFound(code)
    return order


async def get_order_by_id(session: AsyncSession, order_id: int) -> Order:
    stmt = select(Order).where(Order.id == order_id).options(*_with_items())
    order = (await session.execute(stmt)).scalar_one_or_none()
    if order is None:
        raise OrderNotFound(str(order_id))
    return order


async def move(
    session: AsyncSession, order: Order, sources: Iterable[str], to: str, **values: Any
) -> bool:
    """``status = to`` only while the order is in ``sources`` (one conditional update)."""
    return await move_status(session, order, sources, to, **values)


async def reprice(
    session: AsyncSession, order: Order, to: str, *, refund_add: int = 0, **values: Any
) -> bool:
    """Change an order's money (and move it to ``to``) only while it still has the
    status and total it was read with: one conditional update, so two changes of the
    same order cannot both apply to the same starting point. ``refund_add`` is added to
    what the buyer is owed back."""
    result = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == order.status, Order.total == order.total)
        .values(status=to, refund_due=Order.refund_due + refund_add, **values)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return False
    changed = {"status": to, "refund_due": order.refund_due + refund_add, **values}
    for name, value in changed.items():
        set_committed_value(order, name, value)
    return True


async def refund_items(session: AsyncSession, item: OrderItem, quantity: int) -> bool:
    """Mark ``quantity`` more of an item not bought, never past what was ordered."""
    result = await session.execute(
        update(OrderItem)
        .where(
            OrderItem.id == item.id,
            OrderItem.refunded_quantity + quantity <= OrderItem.quantity,
        )
        .values(refunded_quantity=OrderItem.refunded_quantity + quantity)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return False
    set_committed_value(item, "refunded_quantity", item.refunded_quantity + quantity)
    return True


async def confirm_refund(session: AsyncSession, order: Order, amount: int) -> bool:
    """The refund owed (``amount``, as read) was returned: it moves to ``refunded``
    once; a second confirmation finds nothing owed and changes nothing."""
    result = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.refund_due == amount, Order.refund_due > 0)
        .values(refund_due=0, refunded=Order.refunded + amount)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return False
    set_committed_value(order, "refund_due", 0)
    set_committed_value(order, "refunded", order.refunded + amount)
    return True


async def set_refund_account(session: AsyncSession, order: Order, account: dict[str, str]) -> bool:
    """Where the buyer wants the refund owed sent (sealed); only while one is owed."""
    result = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.refund_due > 0)
        .values(refund_account=account)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return False
    set_committed_value(order, "refund_account", account)
    return True


async def refunds_owed(
    session: AsyncSession, jastiper_id: int, *, limit: int = 50
) -> list[tuple[Order, Trip, User]]:
    """The jastiper's orders with a refund still owed, the longest owed first, with
    their trip and buyer."""
    rows = await session.execute(
        select(Order, Trip, User)
        .join(Trip, Trip.id == Order.trip_id)
        .join(User, User.id == Order.user_id)
        .where(Trip.jastiper_id == jastiper_id, Order.refund_due > 0)
        .order_by(func.coalesce(Order.refund_owed_at, Order.created_at), Order.id)
        .limit(limit)
    )
    return [(o, t, u) for o, t, u in rows.all()]


async def due_for_expiry(session: AsyncSession, status: str, now: dt.datetime) -> list[Order]:
    """Orders in ``status`` past their payment deadline (locked, skipping busy ones)."""
    stmt = (
        select(Order)
        .where(Order.status == status, Order.payment_deadline < now)
        .options(*_with_items())
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars().all())


async def trip_orders(
    session: AsyncSession,
    trip_id: int,
    statuses: Iterable[str] | None = None,
    *,
    limit: int | None = 30,
    offset: int = 0,
) -> list[Order]:
    """A trip's orders, newest first, optionally only in some statuses."""
    stmt = select(Order).where(Order.trip_id == trip_id).order_by(Order.id.desc())
    if statuses is not None:
        stmt = stmt.where(Order.status.in_(tuple(statuses)))
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await session.execute(stmt.options(*_with_items()))).scalars().all())


async def jastiper_overview(
    session: AsyncSession, jastiper_id: int, since: dt.datetime, proof_status: str
) -> tuple[int, int]:
    """(orders with a proof waiting for review, orders placed since ``since``) across
    the jastiper's trips."""
    mine = select(Trip.id).where(Trip.jastiper_id == jastiper_id)
    proofs = await session.scalar(
        select(func.count(Order.id)).where(Order.trip_id.in_(mine), Order.status == proof_status)
    )
    today = await session.scalar(
        select(func.count(Order.id)).where(Order.trip_id.in_(mine), Order.created_at >= since)
    )
    return int(proofs or 0), int(today or 0)


async def jastiper_orders(
    session: AsyncSession,
    jastiper_id: int,
    *,
    status: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 10,
) -> list[Order]:
    """Orders across the jastiper's trips, newest first: in one status or since a time."""
    stmt = (
        select(Order)
        .where(Order.trip_id.in_(select(Trip.id).where(Trip.jastiper_id == jastiper_id)))
        .order_by(Order.id.desc())
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if since is not None:
        stmt = stmt.where(Order.created_at >= since)
    return list((await session.execute(stmt.options(*_with_items()))).scalars().all())


async def totals_by_status(session: AsyncSession, trip_id: int) -> list[tuple[str, int, int]]:
    """(status, orders, sum of totals) of a trip."""
    rows = await session.execute(
        select(Order.status, func.count(), func.coalesce(func.sum(Order.total), 0))
        .where(Order.trip_id == trip_id)
        .group_by(Order.status)
    )
    return [(status, int(n), int(total)) for status, n, total in rows.all()]


async def recap_lines(
    session: AsyncSession, trip_id: int, excluded: Iterable[str]
) -> list[tuple[Order, OrderItem, User]]:
    """Every item of the trip's orders not in ``excluded`` statuses, with the buyer."""
    result = await session.execute(
        select(Order, OrderItem, User)
        .join(OrderItem, OrderItem.order_id == Order.id)
        .join(User, User.id == Order.user_id)
        .where(Order.trip_id == trip_id, Order.status.not_in(tuple(excluded)))
        .order_by(Order.id, OrderItem.id)
    )
    return [(o, i, u) for o, i, u in result.all()]


async def unannounced_to_jastipers(
    session: AsyncSession,
) -> list[tuple[Order, Trip, Jastiper]]:
    """Orders the trip's jastiper has not been told about yet, oldest first."""
    rows = await session.execute(
        select(Order, Trip, Jastiper)
        .join(Trip, Trip.id == Order.trip_id)
        .join(Jastiper, Jastiper.id == Trip.jastiper_id)
        .where(Order.jastiper_notified_at.is_(None))
        .order_by(Order.id)
    )
    return [(o, t, j) for o, t, j in rows.all()]


async def reminders_due(
    session: AsyncSession, statuses: Iterable[str], *, now: dt.datetime, until: dt.datetime
) -> list[tuple[Order, User]]:
    """Unreminded orders in ``statuses`` whose deadline falls in (now, until], with their
    buyer (who has not sent STOP)."""
    rows = await session.execute(
        select(Order, User)
        .join(User, User.id == Order.user_id)
        .where(
            Order.status.in_(tuple(statuses)),
            Order.reminded_at.is_(None),
            Order.payment_deadline.is_not(None),
            Order.payment_deadline > now,
            Order.payment_deadline <= until,
            User.opted_out_at.is_(None),
        )
    )
    return [(o, u) for o, u in rows.all()]


# --- payment proofs ------------------------------------------------------------------------


async def insert_proof(session: AsyncSession, **values: Any) -> PaymentProof:
    proof = PaymentProof(**values)
    session.add(proof)
    await session.flush()
    return proof


async def proof_seen_elsewhere(session: AsyncSession, sha256: str, order_id: int) -> bool:
    """Was the same picture sent as the proof of another order?"""
    stmt = select(PaymentProof.id).where(
        PaymentProof.content_sha256 == sha256, PaymentProof.order_id != order_id
    )
    return (await session.execute(stmt.limit(1))).first() is not None


async def get_proof(session: AsyncSession, proof_id: int) -> PaymentProof | None:
    return await session.get(PaymentProof, proof_id)


async def settle_proof(
    session: AsyncSession, proof: PaymentProof, sources: Iterable[str], to: str, **values: Any
) -> bool:
    """Move a proof out of review with one conditional update (approve and reject from
    two taps cannot both win)."""
    return await move_status(session, proof, sources, to, **values)


async def trip_of(session: AsyncSession, order: Order) -> Trip:
    return (
        await session.execute(
            select(Trip).where(Trip.id == order.trip_id).options(selectinload(Trip.jastiper))
        )
    ).scalar_one()


async def proofs_of(session: AsyncSession, order_id: int) -> list[PaymentProof]:
    stmt = select(PaymentProof).where(PaymentProof.order_id == order_id).order_by(PaymentProof.id)
    return list((await session.execute(stmt)).scalars().all())

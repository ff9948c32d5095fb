"""Orders: creation with stock reservation, listing, cancellation, expiry, proofs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import (
    Order,
    OrderItem,
    OrderStatus,
    PaymentProof,
    PaymentType,
    Product,
    ProofStatus,
    Trip,
    utcnow,
)

OPEN_FOR_PAYMENT = (OrderStatus.AWAITING_PAYMENT.value, OrderStatus.AWAITING_BALANCE.value)
CANCELLABLE = (OrderStatus.AWAITING_PAYMENT.value,)
MAX_QTY = 20
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


class OutOfStock(Exception):
    """Not enough stock left for one of the lines (nothing was reserved)."""

    def __init__(self, product_name: str, left: int) -> None:
        super().__init__(product_name)
        self.product_name = product_name
        self.left = left


class OrderNotFound(Exception):
    """No order with that code for this buyer."""


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    product: Product
    quantity: int
    note: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Totals:
    subtotal: int
    fee: int
    shipping: int
    total: int
    due_now: int  # the whole total, or the down payment on a DP trip
    balance_later: int


def compute_totals(trip: Trip, lines: list[Line], shipping: int = 0) -> Totals:
    """Subtotal, the jastiper's fee (per item and/or percent), shipping and what is due."""
    subtotal = sum(line.product.price * line.quantity for line in lines)
    items = sum(line.quantity for line in lines)
    fee = trip.fee_per_item * items + math.ceil(subtotal * trip.fee_percent / 100)
    total = subtotal + fee + shipping
    if trip.payment_type == PaymentType.DP.value and trip.dp_percent:
        due_now = math.ceil(total * trip.dp_percent / 100)
    else:
        due_now = total
    return Totals(subtotal, fee, shipping, total, due_now, total - due_now)


async def reserve_stock(session: AsyncSession, product_id: int, quantity: int) -> bool:
    """One conditional update: take ``quantity`` only if that much is left."""
    result = await session.execute(
        update(Product)
        .where(
            Product.id == product_id,
            Product.hidden.is_(False),
            (Product.stock.is_(None)) | (Product.stock >= quantity),
        )
        .values(stock=Product.stock - quantity)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def release_stock(session: AsyncSession, order: Order) -> None:
    """Give an order's reserved units back (cancellation, expiry)."""
    for item in order.items:
        await session.execute(
            update(Product)
            .where(Product.id == item.product_id, Product.stock.is_not(None))
            .values(stock=Product.stock + item.quantity)
        )


async def _new_code(session: AsyncSession) -> str:
    for _ in range(20):
        code = "JP-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(5))
        taken = (await session.execute(select(Order.id).where(Order.code == code))).first()
        if taken is None:
            return code
    raise RuntimeError("could not find a free order code")


async def create_order(
    session: AsyncSession,
    *,
    trip: Trip,
    user_id: int,
    lines: list[Line],
    address_enc: bytes | None,
    now: dt.datetime | None = None,
) -> Order:
    """Create the order and reserve its stock in the caller's transaction.

    Raises:
        OutOfStock: a line asks for more than is left; the caller's transaction must be
            rolled back (earlier lines may already be reserved in it).
    """
    now = now or utcnow()
    for line in lines:
        if not await reserve_stock(session, line.product.id, line.quantity):
            left = (
                await session.execute(select(Product.stock).where(Product.id == line.product.id))
            ).scalar_one_or_none()
            raise OutOfStock(line.product.name, int(left or 0))
    totals = compute_totals(trip, lines)
    unique = secrets.randbelow(499) + 1  # a few rupiah that make the transfer matchable
    order = Order(
        code=await _new_code(session),
        trip_id=trip.id,
        user_id=user_id,
        status=OrderStatus.AWAITING_PAYMENT.value,
        subtotal=totals.subtotal,
        fee=totals.fee,
        shipping=totals.shipping,
        total=totals.total,
        amount_due=totals.due_now + unique,
        unique_cents=unique,
        payment_deadline=now + dt.timedelta(hours=trip.payment_window_hours),
        address_enc=address_enc,
        created_at=now,
    )
    session.add(order)
    await session.flush()
    for line in lines:
        session.add(
            OrderItem(
                order_id=order.id,
                product_id=line.product.id,
                name=line.product.name,
                unit_price=line.product.price,
                quantity=line.quantity,
                note=line.note,
            )
        )
    await session.flush()
    return order


def _with_items() -> tuple:  # type: ignore[type-arg]
    return (selectinload(Order.items),)


async def user_orders(session: AsyncSession, user_id: int, *, limit: int = 10) -> list[Order]:
    stmt = (
        select(Order)
        .where(Order.user_id == user_id)
        .order_by(Order.id.desc())
        .limit(limit)
        .options(*_with_items())
    )
    return list((await session.execute(stmt)).scalars().all())


async def awaiting_payment(session: AsyncSession, user_id: int) -> list[Order]:
    stmt = (
        select(Order)
        .where(Order.user_id == user_id, Order.status.in_(OPEN_FOR_PAYMENT))
        .order_by(Order.id)
        .options(*_with_items())
    )
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


async def cancel(session: AsyncSession, order: Order) -> bool:
    """Cancel an unpaid order and return its stock; False if it can no longer be."""
    if order.status not in CANCELLABLE:
        return False
    order.status = OrderStatus.CANCELLED.value
    await release_stock(session, order)
    return True


async def expire_due(session: AsyncSession, now: dt.datetime | None = None) -> list[Order]:
    """Expire unpaid orders past their deadline and return their stock (idempotent)."""
    now = now or utcnow()
    stmt = (
        select(Order)
        .where(
            Order.status == OrderStatus.AWAITING_PAYMENT.value,
            Order.payment_deadline < now,
        )
        .options(*_with_items())
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    expired = list((await session.execute(stmt)).scalars().all())
    for order in expired:
        order.status = OrderStatus.EXPIRED.value
        await release_stock(session, order)
    return expired


async def add_proof(
    session: AsyncSession,
    order: Order,
    *,
    media_key: str,
    sha256: str,
    mime_type: str,
) -> tuple[PaymentProof, bool]:
    """Attach a proof; returns (proof, seen_on_another_order)."""
    kind = "balance" if order.status == OrderStatus.AWAITING_BALANCE.value else "full"
    proof = PaymentProof(
        order_id=order.id,
        kind=kind,
        media_key=media_key,
        content_sha256=sha256,
        mime_type=mime_type,
        status=ProofStatus.SUBMITTED.value,
    )
    session.add(proof)
    duplicate = (
        await session.execute(
            select(PaymentProof.id).where(
                PaymentProof.content_sha256 == sha256, PaymentProof.order_id != order.id
            )
        )
    ).first() is not None
    order.status = OrderStatus.PROOF_SUBMITTED.value
    await session.flush()
    return proof, duplicate


async def get_proof(session: AsyncSession, proof_id: int) -> PaymentProof | None:
    return await session.get(PaymentProof, proof_id)


async def trip_of(session: AsyncSession, order: Order) -> Trip:
    trip = (
        await session.execute(
            select(Trip).where(Trip.id == order.trip_id).options(selectinload(Trip.jastiper))
        )
    ).scalar_one()
    return trip


async def proofs_of(session: AsyncSession, order_id: int) -> list[PaymentProof]:
    stmt = select(PaymentProof).where(PaymentProof.order_id == order_id).order_by(PaymentProof.id)
    return list((await session.execute(stmt)).scalars().all())

"""Two doors racing for the same order never both win, and stock is never counted twice:
every status move is one conditional update from the states it may leave, and stock moves
only with the move that won (on SQLite and on Postgres, where the transactions really run
side by side). The invariant: units reserved by live orders + units on the shelf = the
units there were."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import select

from services import orders, payments
from services.errors import DomainError
from storage.models import Order, OrderStatus, Product, User, utcnow
from storage.repo import orders as orders_repo
from storage.repo import trips as trips_repo
from storage.repo.users import upsert_user
from tests.conftest import Harness, phone

QTY = 2


async def _order(h: Harness, *, overdue: bool) -> tuple[str, int, int]:
    """An unpaid order of QTY units (its deadline passed when ``overdue``); returns its
    code, the product id and the product's stock before the order."""
    await h.seed_demo()
    async with h.db.transaction() as session:
        trip = await trips_repo.get_trip_by_code(session, "DEMO")
        product = (
            await session.execute(select(Product).where(Product.name.like("Hada%")))
        ).scalar_one()
        initial = int(product.stock or 0)
        buyer = await upsert_user(session, h.cipher, bsuid=None, wa_id=phone())
        placed_at = utcnow() - (dt.timedelta(days=2) if overdue else dt.timedelta(0))
        order = await orders.place_order(
            session,
            trip=trip,
            buyer=buyer,
            lines=[orders.Line(product, QTY)],
            address_enc=None,
            now=placed_at,
        )
        return order.code, product.id, initial


async def _state(h: Harness, code: str, product_id: int) -> tuple[str, int]:
    async with h.db.read() as session:
        status = (
            await session.execute(select(Order.status).where(Order.code == code))
        ).scalar_one()
        stock = (
            await session.execute(select(Product.stock).where(Product.id == product_id))
        ).scalar_one()
    assert stock is not None
    return status, stock


def _reserved(status: str) -> int:
    return 0 if status in (OrderStatus.CANCELLED.value, OrderStatus.EXPIRED.value) else QTY


async def _attempt(h: Harness, code: str, action: Any) -> bool:
    """Run ``action(session, order)`` in a transaction of its own; False when refused."""
    try:
        async with h.db.transaction() as session:
            order = await orders_repo.get_order(session, code)
            await action(session, order)
        return True
    except DomainError:
        return False


async def _expire(h: Harness) -> bool:
    async with h.db.transaction() as session:
        return bool(await orders.expire_due(session, utcnow()))


async def test_paid_racing_expiry_leaves_one_winner_and_the_stock_right(harness: Harness) -> None:
    """Given an overdue unpaid order, when the jastiper marks it paid while the expiry job
    runs, then exactly one wins and a paid order keeps its units reserved."""
    h = harness
    code, product_id, initial = await _order(h, overdue=True)
    paid, expired = await asyncio.gather(
        _attempt(h, code, lambda s, o: orders.advance(s, o, OrderStatus.PAID.value)), _expire(h)
    )
    status, stock = await _state(h, code, product_id)
    assert paid != expired, "exactly one door wins"
    assert status == (OrderStatus.PAID.value if paid else OrderStatus.EXPIRED.value)
    assert stock + _reserved(status) == initial


async def test_a_proof_racing_expiry_never_attaches_to_an_expired_order(harness: Harness) -> None:
    """Given an overdue unpaid order, when the buyer's proof arrives while the expiry job
    runs, then either the proof is attached (units kept) or the order expired (units back)."""
    h = harness
    code, product_id, initial = await _order(h, overdue=True)

    async def attach(session: Any, order: Order) -> None:
        buyer = await session.get(User, order.user_id)
        upload = payments.Upload("uploads/x.jpg", "f" * 64, "image/jpeg")
        await payments.attach_proof(session, order, upload, buyer)

    attached, expired = await asyncio.gather(_attempt(h, code, attach), _expire(h))
    status, stock = await _state(h, code, product_id)
    assert attached != expired
    assert status == (OrderStatus.PROOF_SUBMITTED.value if attached else OrderStatus.EXPIRED.value)
    assert stock + _reserved(status) == initial


async def test_approve_racing_reject_settles_the_proof_once(harness: Harness) -> None:
    """Given a proof awaiting review, when approve and reject arrive together (chat and the
    admin panel), then exactly one settles it and the order agrees with the proof."""
    h = harness
    code, product_id, initial = await _order(h, overdue=False)
    async with h.db.transaction() as session:
        order = await orders_repo.get_order(session, code)
        buyer = await session.get(User, order.user_id)
        assert buyer is not None
        upload = payments.Upload("uploads/y.jpg", "e" * 64, "image/jpeg")
        await payments.attach_proof(session, order, upload, buyer)
        proof_id = (await orders_repo.proofs_of(session, order.id))[0].id

    async def settle(approve: bool) -> bool:
        try:
            async with h.db.transaction() as session:
                review = await payments.reviewable(session, proof_id, None)
                if approve:
                    await payments.approve(session, review, utcnow())
                else:
                    await payments.reject(session, review, "Bukti tidak jelas", utcnow())
            return True
        except DomainError:
            return False

    approved, rejected = await asyncio.gather(settle(True), settle(False))
    status, stock = await _state(h, code, product_id)
    assert approved != rejected, "the proof is settled once"
    assert status == (OrderStatus.PAID.value if approved else OrderStatus.AWAITING_PAYMENT.value)
    assert stock + _reserved(status) == initial

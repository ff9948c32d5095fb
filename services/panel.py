"""What the admin panel reads: the dashboard's figures, the order search and one order
with what surrounds it, the proofs awaiting review, the trips, jastipers and broadcasts
overviews, the audit log.

Reads only (but the rows a form locks before a service changes them): every change the
panel makes goes through the operation's own service (``services.orders.advance``,
``services.trips.set_status``, ``services.accounts.decide``, …). The statements are
``storage/repo/panel.py`` and ``panel_trips.py``'s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Unpack

from sqlalchemy.ext.asyncio import AsyncSession

from services import amounts, payments
from storage.models import (
    AdminUser,
    AuditLog,
    Broadcast,
    Jastiper,
    Order,
    Participant,
    PaymentProof,
    Product,
    ProofStatus,
    Trip,
    TripStatus,
    User,
)
from storage.repo import orders as orders_repo
from storage.repo import panel as repo
from storage.repo import panel_trips
from storage.repo import queues as queues_repo
from storage.repo import users as users_repo
from storage.repo.panel import OrderFilter
from storage.repo.panel_trips import AuditFilter

OrderRow = tuple[Order, Trip, User]
ProofRow = tuple[PaymentProof, Order, Trip, User]


@dataclasses.dataclass(frozen=True, slots=True)
class Dashboard:
    trips: list[tuple[Trip, int, int]]  # open trips: (trip, participants, orders)
    money: amounts.Figures
    orders_per_day: list[tuple[str, int]]  # (WIB day, orders placed)
    paid_messages: list[tuple[str, int, int]]  # (WIB day, billable messages, their cost)
    latest: list[OrderRow]
    proofs: list[ProofRow]  # awaiting review, oldest first


async def dashboard(session: AsyncSession, since: dt.datetime, *, shown: int = 10) -> Dashboard:
    """The business on one screen: open trips, the money of every order, orders and
    paid messages per WIB day since ``since``, the latest orders and proofs."""
    return Dashboard(
        trips=await repo.open_trips(session, TripStatus.OPEN.value),
        money=amounts.figures(await repo.orders_money(session)),
        orders_per_day=await repo.orders_per_day(session, since),
        paid_messages=await repo.paid_messages_per_day(session, since),
        latest=await repo.find_orders(session, limit=shown),
        proofs=await repo.proofs_awaiting(session, ProofStatus.SUBMITTED.value, limit=shown),
    )


async def find_orders(
    session: AsyncSession, *, limit: int = 50, **where: Unpack[OrderFilter]
) -> list[OrderRow]:
    """Orders with their trip and buyer, newest first, filtered."""
    return await repo.find_orders(session, limit=limit, **where)


async def order(session: AsyncSession, code: str) -> Order | None:
    """The order with that code, its items loaded; None when there is none."""
    try:
        return await orders_repo.get_order(session, code)
    except orders_repo.OrderNotFound:
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class OrderDetail:
    trip: Trip
    buyer: User | None
    proofs: list[PaymentProof]
    reused: dict[int, list[str]]  # proof id -> the other orders its picture was sent for
    history: list[AuditLog]


async def order_detail(session: AsyncSession, order: Order) -> OrderDetail:
    """What the order's page shows around it: trip, buyer, proofs, history."""
    trip = await orders_repo.trip_of(session, order)
    buyer = await users_repo.get_user(session, order.user_id)
    proofs = await orders_repo.proofs_of(session, order.id)
    return OrderDetail(
        trip=trip,
        buyer=buyer,
        proofs=proofs,
        reused=await payments.reused(session, proofs),
        history=await repo.order_history(session, trip.id, order.code),
    )


async def proofs_awaiting(
    session: AsyncSession, *, limit: int = 100
) -> tuple[list[ProofRow], dict[int, list[str]]]:
    """Proofs awaiting review (oldest first, with order, trip, buyer), and those whose
    picture was also sent for another order."""
    rows = await repo.proofs_awaiting(session, ProofStatus.SUBMITTED.value, limit=limit)
    return rows, await payments.reused(session, [r[0] for r in rows])


async def trips_overview(
    session: AsyncSession, *, status: str | None
) -> list[tuple[Trip, int, int]]:
    """Trips (in ``status``, or all) with participant and order counts, newest first."""
    return await panel_trips.trips_overview(session, status=status)


async def trip(session: AsyncSession, code: str, *, lock: bool = False) -> Trip | None:
    """The trip with its jastiper; ``lock``: for the caller's transaction."""
    return await panel_trips.trip_with_jastiper(session, code, lock=lock)


async def participants(session: AsyncSession, trip: Trip) -> list[tuple[Participant, User]]:
    """The trip's participants with their user, in the order they joined."""
    return await panel_trips.participants_of(session, trip.id)


async def product_of_trip(session: AsyncSession, trip: Trip, product_id: int) -> Product | None:
    """A product of that trip, locked (None when the id belongs to another trip)."""
    return await panel_trips.product_of_trip(session, trip.id, product_id)


async def jastipers_overview(session: AsyncSession) -> list[tuple[Jastiper, User, int]]:
    """Every jastiper account with its user and number of trips, oldest request first."""
    return await panel_trips.jastipers_overview(session)


async def jastiper_to_decide(session: AsyncSession, jastiper_id: int) -> Jastiper | None:
    """A jastiper account, locked for the caller's transaction (two admins deciding at
    once: the second sees the first's verdict)."""
    return await panel_trips.jastiper_for_update(session, jastiper_id)


async def broadcasts(
    session: AsyncSession, *, limit: int = 50, before_id: int | None = None
) -> list[tuple[Broadcast, Trip]]:
    """Broadcasts past the draft stage with their trips, newest first."""
    return await queues_repo.broadcasts(session, limit=limit, before_id=before_id)


async def open_trips(session: AsyncSession) -> list[Trip]:
    """The open trips by code (those a broadcast can be composed for)."""
    return await queues_repo.open_trips(session, TripStatus.OPEN.value)


async def audit_actions(session: AsyncSession) -> list[str]:
    """The distinct actions in the audit log (the filter's choices)."""
    return await panel_trips.audit_actions(session)


@dataclasses.dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[AuditLog]
    users: dict[int, User]  # the chat users who acted
    admins: dict[int, AdminUser]  # the admins who acted
    trips: dict[int, Trip]  # the trips the rows are about


async def audit_page(
    session: AsyncSession, *, offset: int = 0, limit: int = 50, **where: Unpack[AuditFilter]
) -> AuditPage:
    """Audit rows, newest first, filtered, with who acted and on which trip."""
    rows = await panel_trips.audit_rows(session, offset=offset, limit=limit, **where)
    return AuditPage(
        rows=rows,
        users=await panel_trips.users_by_ids(
            session, [r.actor_user_id for r in rows if r.actor_user_id]
        ),
        admins=await panel_trips.admins_by_ids(
            session, [r.actor_admin_id for r in rows if r.actor_admin_id]
        ),
        trips=await panel_trips.trips_by_ids(session, [r.trip_id for r in rows if r.trip_id]),
    )

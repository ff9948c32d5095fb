"""One amount everywhere: what an order costs its buyer in the rupiah they transfer.

A buyer transfers the total *plus a few unique rupiah* (``orders.unique_amount``) so
that a transfer can be matched to its order. Every screen that tells a buyer or a
jastiper what an order is to be paid — the buyer's PESANAN list and order detail,
``/orders``, ``/order``, the new-order digest, the admin and ``/web`` order pages and
the recap — shows :func:`amount`, so that the Rp 45.194 the buyer is asked to
transfer is the Rp 45.194 the jastiper sees, never a rounder Rp 45.000.

- Before the first payment it is the total with the unique digits: exactly the
  transfer asked (a DP trip asks a part of it now, :func:`due_now`).
- Once money came in it is what was received (net of refunds) plus what is still to
  transfer: the bill open now (with its own unique digits), or the balance not billed
  yet on a DP order.

The admin dashboard adds orders up with :func:`figures`, from these same functions, so
its sums are the sums of the amounts its order rows show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Protocol

from storage.models import OrderGroup, OrderStatus

S = OrderStatus
FIRST = (S.AWAITING_PAYMENT.value, S.PROOF_SUBMITTED.value, S.CANCELLED.value, S.EXPIRED.value)


class Money(Protocol):
    """The money of an order: a ``storage.models.Order``, or only its money columns
    (``storage.repo.panel.OrderMoney``)."""

    @property
    def status(self) -> str: ...
    @property
    def total(self) -> int: ...
    @property
    def unique_cents(self) -> int: ...
    @property
    def amount_due(self) -> int: ...
    @property
    def paid(self) -> int: ...
    @property
    def refund_due(self) -> int: ...
    @property
    def refunded(self) -> int: ...


def received(order: Money) -> int:
    """What the buyer transferred for the order and keeps there (refunds taken off)."""
    return max(0, order.paid - order.refund_due - order.refunded)


def due_now(order: Money) -> int:
    """The exact transfer the buyer is asked for now (0: nothing is asked)."""
    return order.amount_due if order.status in OrderGroup.AWAITING_MONEY else 0


def amount(order: Money) -> int:
    """What the order costs its buyer, unique digits included (see the module text)."""
    if order.paid == 0 and order.status in FIRST:
        return order.total + order.unique_cents if order.total > 0 else 0
    net = received(order)
    if order.status in OrderGroup.AWAITING_MONEY:
        return net + order.amount_due
    # paid (a part or all): anything the total still holds beyond what came in is the
    # balance of a DP order not billed yet
    return net + max(0, order.total + order.unique_cents - net)


def outstanding(order: Money) -> int:
    """What is still to come in for the order (0 when paid off or closed)."""
    if order.status in OrderGroup.CLOSED:
        return 0
    return max(0, amount(order) - received(order))


@dataclasses.dataclass(slots=True)
class Figures:
    """Orders added up, each counted as :func:`amount` and its parts."""

    by_status: dict[str, tuple[int, int]]  # status: (orders, sum of their amounts)
    received: int = 0  # what came in and stays (refunds taken off)
    outstanding: int = 0  # what is still to come in
    refund_due: int = 0  # owed back to buyers, not returned yet
    refunded: int = 0  # returned to buyers


def figures(orders: Iterable[Money]) -> Figures:
    """What ``orders`` add up to: per status, the orders and the sum of their amounts
    (what each was to transfer, unique digits in, as each order's row shows it); what
    came in (net of refunds), what is still due, and the refunds owed and returned."""
    out = Figures(by_status={})
    for order in orders:
        n, sum_ = out.by_status.get(order.status, (0, 0))
        out.by_status[order.status] = (n + 1, sum_ + amount(order))
        out.received += received(order)
        out.outstanding += outstanding(order)
        out.refund_due += order.refund_due
        out.refunded += order.refunded
    return out

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
"""

from __future__ import annotations

from storage.models import Order, OrderGroup, OrderStatus

S = OrderStatus
FIRST = (S.AWAITING_PAYMENT.value, S.PROOF_SUBMITTED.value, S.CANCELLED.value, S.EXPIRED.value)


def received(order: Order) -> int:
    """What the buyer transferred for the order and keeps there (refunds taken off)."""
    return max(0, order.paid - order.refund_due - order.refunded)


def due_now(order: Order) -> int:
    """The exact transfer the buyer is asked for now (0: nothing is asked)."""
    return order.amount_due if order.status in OrderGroup.AWAITING_MONEY else 0


def amount(order: Order) -> int:
    """What the order costs its buyer, unique digits included (see the module text)."""
    if order.paid == 0 and order.status in FIRST:
        return order.total + order.unique_cents if order.total > 0 else 0
    net = received(order)
    if order.status in OrderGroup.AWAITING_MONEY:
        return net + order.amount_due
    # paid (a part or all): anything the total still holds beyond what came in is the
    # balance of a DP order not billed yet
    return net + max(0, order.total + order.unique_cents - net)


def outstanding(order: Order) -> int:
    """What is still to come in for the order (0 when paid off or closed)."""
    if order.status in OrderGroup.CLOSED:
        return 0
    return max(0, amount(order) - received(order))

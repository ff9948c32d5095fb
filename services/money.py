"""Money after an order is placed: the domestic shipping the jastiper enters
(``/ongkir``) and items they could not buy (``/refund``); the refund that leaves owed is
paid back through the chat (``services/refunds.py``).

Shipping and a refund both change an order's total. What that means for the buyer
depends on what they have paid so far (:func:`_plan`):

- nothing yet: a new amount to transfer (on a DP trip the down payment covers the
  goods and the fee only, so shipping joins the balance bill);
- the down payment of a DP trip, balance not billed yet: the change joins the balance
  bill (``/balance``), unless the new total is below what was paid: then the
  difference is owed back;
- the balance is billed: the bill changes, or is paid off with the rest owed back;
- everything: more to pay means the order awaits a payment again, with a fresh unique
  amount and the same proof → approve cycle; less means the difference is owed back.

Every change is one conditional update on the status and total the order was read
with; the buyer is told in their language in the same transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _, format_rupiah
from services import amounts, notify, orders, payqris, refunds, replies
from services.errors import InvalidInput, InvalidMove, NotAllowed, NotFound
from services.products import parse_price
from storage.models import Order, OrderGroup, OrderItem, OrderStatus, PaymentType, Trip, User
from storage.repo import audit, outbox, users
from storage.repo import orders as repo

S = OrderStatus
MAX_SHIPPING = 10_000_000  # more than any domestic parcel: a typo (an extra zero or two)
# the statuses whose money may still change: a proof under review is settled first;
# shipped, done, cancelled and expired orders are closed
CHANGEABLE = (S.AWAITING_PAYMENT, S.DP_PAID, S.AWAITING_BALANCE, S.PAID, S.BOUGHT)
ZERO_RE = re.compile(r"(?:rp\.?\s*)?0+(?:[.,]0+)*\s*(?:rb|ribu|k|jt|juta)?")

PAY = _(
    "Transfer *tepat {amount}* ke {bank} {account} a.n. {holder} sebelum {deadline}, "
    "lalu kirim foto buktinya di sini."
)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What a change of total meant for the buyer."""

    order: Order
    refund: int = 0  # newly owed back to the buyer
    less: int = 0  # how much less the buyer has to transfer (or will be billed)
    billed: bool = False  # a new amount to transfer now
    later: bool = False  # joins the balance bill of a DP trip
    cancelled: bool = False  # nothing left to buy or pay: the unpaid order is cancelled


@dataclasses.dataclass(frozen=True, slots=True)
class Refund:
    """An item marked not bought, and what it did."""

    outcome: Outcome
    name: str
    quantity: int
    drop: int  # how much the order's total fell


def check_amount(text: str) -> int:
    """A shipping amount as people type it (``25000``, ``25.000``, ``25rb``).

    Raises:
        InvalidInput: negative or zero, unreadable, or over :data:`MAX_SHIPPING`.
    """
    raw = text.strip()
    if raw.startswith("-") or ZERO_RE.fullmatch(raw.lower()):
        raise InvalidInput(_("Ongkir harus lebih dari Rp 0."))
    amount = parse_price(raw)
    if amount is None:
        raise InvalidInput(
            _("Ongkir \u201c{amount}\u201d tidak bisa dibaca. Contoh: 25000, 25.000, 25rb"),
            amount=raw[:30],
        )
    if amount > MAX_SHIPPING:
        raise InvalidInput(
            _("Ongkir {amount} terlalu besar: paling banyak {max}. Cek lagi angkanya."),
            amount=format_rupiah(amount),
            max=format_rupiah(MAX_SHIPPING),
        )
    return amount


def check_changeable(order: Order) -> None:
    """The order's money may still change.

    Raises:
        NotAllowed: a proof of it awaits review.
        InvalidMove: it is shipped, done, cancelled or expired.
    """
    if order.status == S.PROOF_SUBMITTED.value:
        raise NotAllowed(
            _("Ada bukti transfer {code} yang belum dicek. Setujui atau tolak dulu, lalu ulangi."),
            code=order.code,
        )
    if order.status not in CHANGEABLE:
        raise InvalidMove(
            _("Pesanan {code} sudah \u201c{status}\u201d, jadi totalnya tidak bisa diubah lagi."),
            code=order.code,
            status=orders.status_label(order.status),
        )


def _is_dp(trip: Trip) -> bool:
    return trip.payment_type == PaymentType.DP.value and bool(trip.dp_percent)


def _later(deadline: dt.datetime | None, now: dt.datetime, trip: Trip) -> dt.datetime:
    """A full payment window from now, never earlier than the deadline already given."""
    fresh = now + dt.timedelta(hours=trip.payment_window_hours)
    return max(deadline, fresh) if deadline is not None else fresh


def _plan(
    order: Order, trip: Trip, total: int, shipping: int, now: dt.datetime
) -> tuple[str, dict[str, object], Outcome]:
    """Where the order goes, what changes, and what it means for the buyer, when its
    total becomes ``total`` (of which ``shipping`` is shipping)."""
    unique = order.unique_cents
    status = order.status
    values: dict[str, object] = {}
    if status == S.AWAITING_PAYMENT.value:
        if total <= 0:
            return S.CANCELLED.value, values, Outcome(order, cancelled=True)
        due = (
            math.ceil((total - shipping) * (trip.dp_percent or 0) / 100) if _is_dp(trip) else total
        )
        amount = due + unique
        values.update(
            amount_due=amount, payment_deadline=_later(order.payment_deadline, now, trip)
        )
        less = max(0, order.amount_due - amount)
        billed = amount != order.amount_due
        return status, values, Outcome(order, less=less, billed=billed, later=_is_dp(trip))
    # a DP order bought before its balance was billed is still a DP order
    unbilled = _is_dp(trip) and amounts.received(order) - unique < order.total
    if status == S.DP_PAID.value or (status == S.BOUGHT.value and unbilled):
        paid = order.amount_due - unique
        if total >= paid:
            return status, values, Outcome(order, less=max(0, order.total - total), later=True)
        values.update(amount_due=total + unique)  # nothing left to bill (payments.bill_balance)
        return status, values, Outcome(order, refund=paid - total)
    if status == S.AWAITING_BALANCE.value:
        paid = order.total - (order.amount_due - unique)
        owed = total - paid
        if owed > 0:
            values.update(
                amount_due=owed + unique,
                payment_deadline=_later(order.payment_deadline, now, trip),
            )
            less = max(0, order.amount_due - unique - owed)
            return status, values, Outcome(order, less=less, billed=True)
        return S.PAID.value, values, Outcome(order, refund=-owed)
    # paid in full (PAID, BOUGHT): more is a new bill, less is owed back
    owed = total - order.total
    if owed > 0:
        fresh = orders.unique_amount()
        values.update(
            amount_due=owed + fresh,
            unique_cents=fresh,
            payment_deadline=now + dt.timedelta(hours=trip.payment_window_hours),
        )
        return S.AWAITING_BALANCE.value, values, Outcome(order, billed=True)
    return status, values, Outcome(order, refund=-owed)


async def _apply(
    session: AsyncSession,
    order: Order,
    trip: Trip,
    now: dt.datetime,
    *,
    subtotal: int,
    fee: int,
    shipping: int,
    item: tuple[OrderItem, int] | None = None,
) -> Outcome:
    total = subtotal + fee + shipping
    to, values, outcome = _plan(order, trip, total, shipping, now)
    if outcome.refund and not order.refund_due:
        values["refund_owed_at"] = now  # /refunds lists the longest waiting first
    async with outbox.savepoint(session):  # the order and its item change together, or neither
        changed = await repo.reprice(
            session,
            order,
            to,
            refund_add=outcome.refund,
            subtotal=subtotal,
            fee=fee,
            shipping=shipping,
            total=total,
            **values,
        )
        if changed and item is not None:
            changed = await repo.refund_items(session, *item)
        if not changed:
            raise InvalidMove(
                _("Pesanan {code} baru saja berubah. Cek /order {code} lalu ulangi."),
                code=order.code,
            )
    return outcome


async def _tell(
    session: AsyncSession, media: Any, buyer: User, trip: Trip, head: str, outcome: Outcome
) -> None:
    """The buyer hears what changed (``head``, translated already) and what it means; a
    new amount to transfer comes with the jastiper's QRIS for it, if they set one."""
    order = outcome.order
    t = notify.translator(buyer)
    parts = [head]
    if outcome.cancelled:
        parts.append(
            t(
                _("Tidak ada lagi yang perlu dibayar, jadi pesanan {code} dibatalkan."),
                code=order.code,
            )
        )
    if outcome.less:
        parts.append(
            t(_("Yang perlu kamu bayar berkurang {amount}."), amount=t.money(outcome.less))
        )
    if outcome.refund:
        parts.append(refunds.owed_line(t, order))
    if outcome.billed and order.amount_due > order.unique_cents:
        parts.append(
            t(
                PAY,
                amount=t.money(amounts.due_now(order)),
                bank=trip.bank_name or "-",
                account=trip.bank_account_number or "-",
                holder=trip.bank_account_name or "-",
                deadline=t.datetime(order.payment_deadline),
            )
        )
    if outcome.later:
        parts.append(t(_("Sisanya (termasuk ongkir) ditagih bersama pelunasan nanti.")))
    notify.tell(session, buyer, replies.text("\n\n".join(parts)))
    if outcome.billed:  # the picture after the text that says how much
        await payqris.offer(session, media, buyer, trip, order)
    if outcome.refund:
        refunds.ask_account(session, buyer, order)


# --- shipping ----------------------------------------------------------------------------


async def set_shipping(
    session: AsyncSession,
    order: Order,
    amount: int,
    now: dt.datetime,
    *,
    actor_user_id: int | None = None,
    media: Any = None,
) -> Outcome | None:
    """Set the order's domestic shipping (``amount``, checked by :func:`check_amount`)
    and tell the buyer what is due now (with the QRIS for it when the jastiper set one
    and ``media`` stores its picture); None when it already was that amount.

    Raises:
        NotAllowed / InvalidMove: see :func:`check_changeable`.
    """
    check_changeable(order)
    if order.shipping == amount:
        return None
    trip = await repo.trip_of(session, order)
    outcome = await _apply(
        session, order, trip, now, subtotal=order.subtotal, fee=order.fee, shipping=amount
    )
    audit.record(
        session,
        "order.shipping",
        actor_user_id=actor_user_id,
        trip_id=trip.id,
        order=order.code,
        shipping=amount,
    )
    buyer = await users.get_user(session, order.user_id)
    if buyer is not None:
        t = notify.translator(buyer)
        head = t(
            _(
                "Ongkir pesanan {code} sudah dihitung jastiper: {shipping}.\n"
                "Total sekarang {total}."
            ),
            code=order.code,
            shipping=t.money(amount),
            total=t.money(amounts.amount(order)),
        )
        await _tell(session, media, buyer, trip, head, outcome)
    return outcome


async def set_trip_shipping(
    session: AsyncSession,
    trip: Trip,
    amount: int,
    now: dt.datetime,
    *,
    actor_user_id: int | None = None,
    media: Any = None,
) -> tuple[int, int]:
    """A flat shipping for every live order of the trip that has none yet; returns
    (orders set, orders left alone: shipping set already, a proof under review, or
    shipped/done)."""
    done = skipped = 0
    for order in await repo.trip_orders(session, trip.id, None, limit=None):
        if order.status in OrderGroup.CLOSED:
            continue
        if order.shipping or order.status not in CHANGEABLE:
            skipped += 1
            continue
        await set_shipping(session, order, amount, now, actor_user_id=actor_user_id, media=media)
        done += 1
    return done, skipped


# --- items not found ---------------------------------------------------------------------


def _fee_for(trip: Trip, subtotal: int, items: int) -> int:
    return trip.fee_per_item * items + math.ceil(subtotal * trip.fee_percent / 100)


async def refund_item(
    session: AsyncSession,
    order: Order,
    number: int,
    quantity: int | None,
    reason: str,
    now: dt.datetime,
    *,
    actor_user_id: int | None = None,
    media: Any = None,
) -> Refund:
    """Mark ``quantity`` (None: all that are left) of the order's item ``number`` (1 =
    the first, as ``/order`` lists them) as not bought: its price and its share of the
    fee leave the total (the shipping too, when nothing is left to ship); the buyer is
    told what was not found and what it means for them.

    Raises:
        NotAllowed / InvalidMove: see :func:`check_changeable`.
        NotFound: no item with that number.
        InvalidInput: more than is left of that item, or fewer than one.
    """
    check_changeable(order)
    items = sorted(order.items, key=lambda i: i.id)
    if not 1 <= number <= len(items):
        raise NotFound(
            _("Pesanan {code} tidak punya barang nomor {n}. Lihat nomornya di /order {code}."),
            code=order.code,
            n=number,
        )
    item = items[number - 1]
    left = item.quantity - item.refunded_quantity
    if left <= 0:
        raise NotAllowed(
            _("Semua {name} di pesanan {code} sudah ditandai tidak didapat."),
            name=item.name,
            code=order.code,
        )
    qty = left if quantity is None else quantity
    if not 1 <= qty <= left:
        raise InvalidInput(
            _("Jumlah {name} yang bisa ditandai tidak didapat: 1 sampai {left}."),
            name=item.name,
            left=left,
        )
    trip = await repo.trip_of(session, order)
    counted = sum(i.quantity - i.refunded_quantity for i in items)
    subtotal = order.subtotal - item.unit_price * qty
    fee_drop = _fee_for(trip, order.subtotal, counted) - _fee_for(trip, subtotal, counted - qty)
    fee = max(0, order.fee - fee_drop) if counted > qty else 0
    shipping = order.shipping if counted > qty else 0
    before = order.total
    outcome = await _apply(
        session,
        order,
        trip,
        now,
        subtotal=subtotal,
        fee=fee,
        shipping=shipping,
        item=(item, qty),
    )
    drop = before - order.total
    audit.record(
        session,
        "order.refund",
        actor_user_id=actor_user_id,
        trip_id=trip.id,
        order=order.code,
        item=item.name,
        quantity=qty,
        amount=drop,
    )
    buyer = await users.get_user(session, order.user_id)
    if buyer is not None:
        t = notify.translator(buyer)
        head = t(
            _(
                "Maaf, {qty}× {name} di pesanan {code} tidak didapat jastiper{reason}.\n"
                "Total turun {drop} menjadi {total}."
            ),
            qty=qty,
            name=item.name,
            code=order.code,
            reason=f" ({reason})" if reason else "",
            drop=t.money(drop),
            total=t.money(amounts.amount(order)),
        )
        await _tell(session, media, buyer, trip, head, outcome)
    return Refund(outcome, item.name, qty, drop)

"""Orders: totals, placing an order with its stock reserved, and every status move.

The allowed moves are one table (:data:`MOVES`); a move is one conditional update from
the states that may lead to the target, so two doors racing (the buyer cancelling
while the expiry job runs, ``/paid`` against expiry) cannot both win, and stock moves
only when the status update changed the row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import secrets
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services import amounts, notify, replies, waitlist
from services.errors import InvalidInput, InvalidMove, Msg, NotAllowed, NotFound, OutOfStock
from storage.models import (
    Order,
    OrderGroup,
    OrderStatus,
    PaymentType,
    Product,
    Trip,
    TripStatus,
    User,
    utcnow,
)
from storage.repo import audit, outbox, products, users
from storage.repo import orders as repo

S = OrderStatus
MOVES: dict[str, frozenset[str]] = {
    S.AWAITING_PAYMENT: frozenset({S.PROOF_SUBMITTED, S.PAID, S.CANCELLED, S.EXPIRED}),
    S.PROOF_SUBMITTED: frozenset({S.PAID, S.DP_PAID, S.AWAITING_PAYMENT, S.AWAITING_BALANCE}),
    S.DP_PAID: frozenset({S.AWAITING_BALANCE, S.BOUGHT}),
    S.AWAITING_BALANCE: frozenset({S.PROOF_SUBMITTED, S.PAID}),
    # a paid order billed again (shipping set after payment, services/money.py)
    S.PAID: frozenset({S.BOUGHT, S.SHIPPED, S.AWAITING_BALANCE}),
    S.BOUGHT: frozenset({S.SHIPPED, S.AWAITING_BALANCE}),
    S.SHIPPED: frozenset({S.DONE}),
    S.DONE: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}
# The one way back from EXPIRED / CANCELLED (a late payment on a bank statement, confirmed
# by the jastiper): :func:`revive`, which reserves the stock again in the same savepoint.
# Not in MOVES, so that no other door (a proof rejected late, say) can move an order back
# without its stock.
REVIVABLE = OrderGroup.CLOSED
CANCELLABLE = (S.AWAITING_PAYMENT.value,)
# the moves an admin makes from the order page: to each status of a paid order's road
# (proofs are settled on their own forms; cancelling is the buyer's)
ADMIN_MOVES = OrderGroup.PAID_IN_FULL
# cart caps: one product at most MAX_QTY in a cart (over all its lines), a cart at most
# MAX_LINES lines, so that one buyer cannot grow a cart (and an order) without bound
MAX_QTY = 20
MAX_LINES = 20
TRACKING_MAX = 100
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I

STATUS_TEXT = {
    S.AWAITING_PAYMENT.value: _("Menunggu pembayaran"),
    S.PROOF_SUBMITTED.value: _("Bukti transfer sedang dicek"),
    S.PAID.value: _("Lunas"),
    S.DP_PAID.value: _("DP lunas"),
    S.AWAITING_BALANCE.value: _("Menunggu pelunasan"),
    S.BOUGHT.value: _("Sudah dibelikan"),
    S.SHIPPED.value: _("Dikirim"),
    S.DONE.value: _("Selesai"),
    S.CANCELLED.value: _("Dibatalkan"),
    S.EXPIRED.value: _("Kedaluwarsa"),
}
# what the buyer is told when the jastiper moves their order here
BUYER_TEXT = {
    S.PAID.value: _(
        "Pembayaran untuk pesanan {code} sudah dikonfirmasi jastiper. Terima kasih! 🙏"
    ),
    S.BOUGHT.value: _("Kabar baik! Barang untuk pesanan {code} sudah dibelikan jastiper. 🛍️"),
    S.SHIPPED.value: _("Pesanan {code} sudah dikirim! Nomor resi: {tracking} 📦"),
    S.DONE.value: _("Pesanan {code} selesai. Terima kasih sudah belanja! 💚"),
}
BUYER_TEXT[S.DP_PAID.value] = BUYER_TEXT[S.PAID.value]


def sources_of(to: str) -> tuple[str, ...]:
    """The states an order may move to ``to`` from, read off :data:`MOVES`."""
    return tuple(sorted(str(src) for src, dests in MOVES.items() if to in dests))


def status_label(status: str) -> Msg:
    """The catalogue msgid naming a status (translate it for the reader)."""
    return Msg(STATUS_TEXT.get(status, status))


async def move(session: AsyncSession, order: Order, to: str, **values: object) -> bool:
    """Move the order to ``to`` if the table allows it from where it is now (checked in
    the database, not in memory). False when another door moved it first."""
    return await repo.move(session, order, sources_of(to), to, **values)


# --- totals and placing an order ----------------------------------------------------------


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


def compute_totals(trip: Trip, lines: Sequence[Line], shipping: int = 0) -> Totals:
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


def check_room(lines_in_cart: int) -> None:
    """A cart may take one more line.

    Raises:
        NotAllowed: it holds :data:`MAX_LINES` lines already.
    """
    if lines_in_cart >= MAX_LINES:
        raise NotAllowed(
            _(
                "Keranjangmu sudah berisi {max} produk, batas satu keranjang. Checkout dulu "
                "atau kosongkan keranjang, lalu tambah lagi."
            ),
            max=MAX_LINES,
        )


def check_quantity(quantity: int, in_cart: int = 0) -> None:
    """``quantity`` more of a product of which the cart holds ``in_cart`` already.

    Raises:
        InvalidInput: not between 1 and :data:`MAX_QTY`, or past it with the cart's.
    """
    if quantity < 1 or quantity > MAX_QTY:
        raise InvalidInput(_("Jumlahnya antara 1 dan {max} ya."), max=MAX_QTY)
    if quantity + in_cart > MAX_QTY:
        raise InvalidInput(
            _(
                "Paling banyak {max} per produk, dan {n} sudah ada di keranjangmu. Ketik "
                "jumlah yang lebih kecil."
            ),
            max=MAX_QTY,
            n=in_cart,
        )


def check_cart(lines: Sequence[Line]) -> None:
    """The cart caps, for every door that places an order.

    Raises:
        NotAllowed / InvalidInput: too many lines, or too many of one product.
    """
    if len(lines) > MAX_LINES:
        check_room(len(lines))
    per_product: dict[int, int] = {}
    for line in lines:
        check_quantity(line.quantity, per_product.get(line.product.id, 0))
        per_product[line.product.id] = per_product.get(line.product.id, 0) + line.quantity


def unique_amount() -> int:
    """A few rupiah added to a transfer so that it can be matched to one order."""
    return secrets.randbelow(499) + 1


async def _new_code(session: AsyncSession) -> str:
    for _attempt in range(20):
        code = "JP-" + "".join(secrets.choice(_CODE_ALPHABET) for _c in range(5))
        if not await repo.code_taken(session, code):
            return code
    raise RuntimeError("could not find a free order code")


async def place_order(
    session: AsyncSession,
    *,
    trip: Trip,
    buyer: User,
    lines: Sequence[Line],
    address_enc: bytes | None,
    now: dt.datetime,
) -> Order:
    """Create the order and reserve its stock, all or nothing (a savepoint).

    Raises:
        NotAllowed: the trip no longer takes orders, or the cart is over its caps.
        InvalidInput: a quantity is over its cap (see :func:`check_cart`).
        OutOfStock: a line asks for more than is left; nothing was reserved.
    """
    check_cart(lines)
    if trip.status != TripStatus.OPEN.value:
        raise NotAllowed(
            _("Trip *{title}* sudah ditutup dan tidak menerima pesanan baru."), title=trip.title
        )
    async with outbox.savepoint(session):  # an exception rolls back what was reserved
        # a unit held for this buyer off the waitlist is theirs to reserve
        await waitlist.use_holds(session, buyer, {line.product.id for line in lines}, now)
        for line in lines:
            if not await products.reserve(session, line.product.id, line.quantity):
                left = await products.stock_of(session, line.product.id)
                raise OutOfStock(
                    _("Maaf, stok *{name}* tinggal {n}. Ubah keranjangmu ya."),
                    name=line.product.name,
                    left=int(left or 0),
                )
        totals = compute_totals(trip, lines)
        unique = unique_amount()
        return await repo.insert_order(
            session,
            code=await _new_code(session),
            trip_id=trip.id,
            user_id=buyer.id,
            status=S.AWAITING_PAYMENT.value,
            subtotal=totals.subtotal,
            fee=totals.fee,
            shipping=totals.shipping,
            total=totals.total,
            amount_due=totals.due_now + unique,
            unique_cents=unique,
            payment_deadline=now + dt.timedelta(hours=trip.payment_window_hours),
            address_enc=address_enc,
            created_at=now,
            items=[
                {
                    "product_id": line.product.id,
                    "name": line.product.name,
                    "unit_price": line.product.price,
                    "quantity": line.quantity,
                    "note": line.note,
                }
                for line in lines
            ],
        )


async def _release(session: AsyncSession, order: Order, now: dt.datetime) -> None:
    """The order's units go back to the stock, each offered first to the buyers waiting
    for it."""
    for item in order.items:
        await products.release(session, item.product_id, item.quantity)
    for product_id in sorted({item.product_id for item in order.items}):
        await waitlist.offer_freed(session, product_id, now)


async def revive(session: AsyncSession, order: Order) -> None:
    """An expired or cancelled order is paid after all (a late transfer): it takes its
    stock again — one conditional update per item, all or nothing — and awaits payment.

    Raises:
        OutOfStock: an item has not that much left; nothing was reserved.
        InvalidMove: the order is no longer expired or cancelled.
    """
    async with outbox.savepoint(session):
        for item in order.items:
            if not await products.reserve(session, item.product_id, item.quantity):
                left = await products.stock_of(session, item.product_id)
                raise OutOfStock(
                    _(
                        "Stok *{name}* tinggal {n}, tidak cukup lagi untuk pesanan ini; "
                        "tidak ada yang berubah."
                    ),
                    name=item.name,
                    left=int(left or 0),
                )
        if order.status not in REVIVABLE or not await repo.move(
            session, order, REVIVABLE, S.AWAITING_PAYMENT
        ):
            raise InvalidMove(
                _("Pesanan {code} sudah tidak kedaluwarsa atau dibatalkan."), code=order.code
            )


# --- the buyer's and the jastiper's moves ----------------------------------------------------


async def buyer_order(session: AsyncSession, buyer: User, code: str) -> Order:
    """One of the buyer's own orders by code (NotFound otherwise)."""
    try:
        return await repo.get_order(session, code, user_id=buyer.id)
    except repo.OrderNotFound:
        raise NotFound(_("Pesanan {code} tidak ditemukan."), code=code.upper()[:20]) from None


async def buyer_orders(
    session: AsyncSession, buyer: User, *, limit: int, offset: int
) -> list[Order]:
    """A page of the buyer's orders, newest first."""
    return await repo.user_orders(session, buyer.id, limit=limit, offset=offset)


async def awaiting_payment(session: AsyncSession, user: User) -> list[Order]:
    """The person's own orders open for payment, oldest first."""
    return await repo.user_orders_in(session, user.id, OrderGroup.OPEN_FOR_PAYMENT)


async def jastiper_order(session: AsyncSession, jastiper_id: int, code: str) -> Order | None:
    """An order of one of the jastiper's trips by code (None: no such order there)."""
    try:
        order = await repo.get_order(session, code)
    except repo.OrderNotFound:
        return None
    trip = await repo.trip_of(session, order)
    return order if trip.jastiper_id == jastiper_id else None


async def cancel(session: AsyncSession, order: Order, now: dt.datetime | None = None) -> None:
    """The buyer cancels an unpaid order: its stock returns.

    Raises:
        InvalidMove: it is paid (or being checked, or gone) already.
    """
    if order.status not in CANCELLABLE or not await move(session, order, S.CANCELLED):
        raise InvalidMove(
            _("Pesanan {code} tidak bisa dibatalkan lagi ({status}). Tanyakan ke jastiper-mu."),
            code=order.code,
            status=status_label(order.status),
        )
    await _release(session, order, now or utcnow())


async def advance(
    session: AsyncSession,
    order: Order,
    to: str,
    *,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
    tracking: str | None = None,
) -> None:
    """The jastiper (or an admin) moves an order on — paid, bought, shipped, done — and
    the buyer is told in their language. Shipped needs a tracking number (spaces tidied,
    cut to :data:`TRACKING_MAX`); it is ignored for any other move.

    Raises:
        InvalidInput: shipped without a tracking number.
        InvalidMove: the table does not allow it from the order's current status.
    """
    values: dict[str, object] = {}
    if to == S.SHIPPED.value:
        tracking = " ".join((tracking or "").split())[:TRACKING_MAX]
        if not tracking:
            raise InvalidInput(_("Isi nomor resi untuk status Dikirim."))
        values["tracking_number"] = tracking
    if to == S.PAID.value and order.status in OrderGroup.AWAITING_MONEY:  # received another way
        values["paid"] = order.paid + order.amount_due
    if order.status not in sources_of(to) or not await move(session, order, to, **values):
        raise InvalidMove(
            _("Pesanan {code} sedang \u201c{status}\u201d, jadi belum bisa diubah ke sini."),
            code=order.code,
            status=status_label(order.status),
        )
    audit.record(
        session,
        f"order.{to}",
        actor_user_id=actor_user_id,
        actor_admin_id=actor_admin_id,
        trip_id=order.trip_id,
        order=order.code,
    )
    buyer = await users.get_user(session, order.user_id)
    if buyer is not None and to in BUYER_TEXT:
        notify.say(
            session, buyer, BUYER_TEXT[to], code=order.code, tracking=order.tracking_number or ""
        )


async def expire_due(session: AsyncSession, now: dt.datetime) -> list[Order]:
    """Expire unpaid orders past their deadline, return their stock and tell each buyer
    once. An order paid or cancelled meanwhile is left alone (its move fails)."""
    expired = []
    for order in await repo.due_for_expiry(session, S.AWAITING_PAYMENT.value, now):
        if not await move(session, order, S.EXPIRED):
            continue
        await _release(session, order, now)
        expired.append(order)
        buyer = await users.get_user(session, order.user_id)
        if buyer is not None and not order.expired_notified:
            notify.say(
                session,
                buyer,
                _(
                    "Pesanan {code} dibatalkan otomatis karena belum dibayar sampai batas "
                    "waktunya. Kalau masih mau, pesan lagi lewat KATALOG ya."
                ),
                code=order.code,
            )
            order.expired_notified = True
    return expired


# an order in one of these is no longer news to its jastiper, whenever the digest runs
NOT_NEW = frozenset(
    {S.CANCELLED.value, S.EXPIRED.value, S.BOUGHT.value, S.SHIPPED.value, S.DONE.value}
)


async def notify_jastipers(
    session: AsyncSession, now: dt.datetime, *, gather: dt.timedelta
) -> int:
    """Tell each jastiper about new orders, a burst gathered into one message.

    Orders wait until the oldest unannounced one of that jastiper is ``gather`` old,
    then all of them go out together: twenty orders in a minute are one message, which
    keeps the jastiper's chat readable. Returns the number of notices."""
    by_jastiper: dict[int, list[tuple[Order, Trip]]] = {}
    owners: dict[int, int] = {}
    for order, trip, jastiper in await repo.unannounced_to_jastipers(session):
        if order.status in NOT_NEW:  # cancelled, expired or moved on already: no news
            order.jastiper_notified_at = now
            continue
        by_jastiper.setdefault(jastiper.id, []).append((order, trip))
        owners[jastiper.id] = jastiper.user_id
    sent = 0
    for jastiper_id, items in by_jastiper.items():
        if now - min(o.created_at for o, _t in items) < gather:
            continue  # still gathering
        owner = await users.get_user(session, owners[jastiper_id])
        if owner is None:
            continue
        t = notify.translator(owner)
        lines = [f"• {o.code} ({trip.code}) — {t.money(amounts.amount(o))}" for o, trip in items]
        notify.tell(
            session,
            owner,
            replies.text(
                t(_("{n} pesanan baru:\n{lines}"), n=len(items), lines="\n".join(lines))
                + "\n\n"
                + t(_("Detail: /order KODE · semua: /orders KODE-TRIP"))
            ),
        )
        for o, _t in items:
            o.jastiper_notified_at = now
        sent += 1
    return sent

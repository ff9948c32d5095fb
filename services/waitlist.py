"""The waitlist of a sold-out product ("Kabari kalau ada").

A buyer joins the line of a product that is sold out. Whenever units of it free up — an
order cancelled or expired (a rejected payment whose window ran out expires), the
jastiper raising the stock, a hold running out — :func:`offer_freed` takes each free
unit off the stock for the first buyer in line and offers it to them, with an Order
button, for :data:`HOLD`. Everyone else still sees the product sold out; the holder's
order takes the held unit (:func:`use_holds`). A hold that runs out
(:func:`expire_holds`, a periodic job) goes back to the stock and on to the next in
line. An offered buyer leaves the line (to join again, they tap once more), so nobody
is told twice about one unit; a buyer who ordered the product leaves it too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services import notify, replies
from services.errors import NotAllowed
from services.payloads import ShopTap
from storage.models import Product, Trip, User, WaitlistEntry, WaitlistStatus
from storage.repo import products as products_repo
from storage.repo import trips as trips_repo
from storage.repo import users
from storage.repo import waitlist as repo

W = WaitlistStatus
HOLD = dt.timedelta(minutes=30)
HOLD_MINUTES = int(HOLD.total_seconds() // 60)


@dataclasses.dataclass(frozen=True, slots=True)
class Place:
    """Where a buyer stands: ``place`` in line (1 = next), or the hold they have."""

    place: int | None
    hold_until: dt.datetime | None = None
    joined_now: bool = False


def _holding(row: WaitlistEntry | None, now: dt.datetime) -> bool:
    return (
        row is not None
        and row.status == W.OFFERED.value
        and row.hold_until is not None
        and row.hold_until > now
    )


async def join(session: AsyncSession, product: Product, buyer: User, now: dt.datetime) -> Place:
    """Put the buyer in line for a sold-out product (tapping twice keeps one place).

    Raises:
        NotAllowed: the product is not sold out (order it instead).
    """
    row = await repo.entry(session, product.id, buyer.id)
    if _holding(row, now):
        assert row is not None
        return Place(None, row.hold_until)
    if product.stock != 0 and (row is None or row.status != W.WAITING.value):
        raise NotAllowed(
            _("*{name}* masih tersedia. Ketuk Pesan untuk memesan."), name=product.name
        )
    row, joined = await repo.join(session, product.id, buyer.id, now)
    return Place(await repo.place(session, row), joined_now=joined)


async def place_of(
    session: AsyncSession, product: Product, buyer: User, now: dt.datetime
) -> Place | None:
    """The buyer's place in the product's line or their hold; None when not on it."""
    row = await repo.entry(session, product.id, buyer.id)
    if row is None:
        return None
    if _holding(row, now):
        return Place(None, row.hold_until)
    if row.status != W.WAITING.value:
        return None
    return Place(await repo.place(session, row))


async def available_to(
    session: AsyncSession, product: Product, buyer: User, now: dt.datetime
) -> int | None:
    """How many the buyer may order: the free stock plus the unit held for them
    (None: unlimited)."""
    if product.stock is None:
        return None
    row = await repo.entry(session, product.id, buyer.id)
    return product.stock + (row.held if row is not None and _holding(row, now) else 0)


async def waiting_counts(session: AsyncSession, product_ids: Iterable[int]) -> dict[int, int]:
    """Product id → how many buyers wait for it (those offered it included)."""
    return await repo.counts(session, product_ids)


async def trip_of(session: AsyncSession, product: Product) -> Trip | None:
    return await trips_repo.get(session, product.trip_id)


async def use_holds(
    session: AsyncSession, buyer: User, product_ids: Iterable[int], now: dt.datetime
) -> None:
    """The buyer orders these products: each unit held for them goes back to the stock
    their order then reserves (call it inside the order's savepoint), and they leave
    those lines. A hold that ran out is left to :func:`expire_holds`."""
    for row in await repo.active_of(session, buyer.id, product_ids):
        held = row.held
        if row.status == W.OFFERED.value and not _holding(row, now):
            continue
        if not await repo.move(session, row, repo.ACTIVE, W.ORDERED.value, held=0):
            continue
        if held:
            await products_repo.release(session, row.product_id, held)


async def offer_freed(session: AsyncSession, product_id: int, now: dt.datetime) -> int:
    """Offer each free unit of the product to the next buyer in line, held for
    :data:`HOLD`; returns how many were offered. Nothing is offered for a hidden
    product or a trip that no longer takes orders."""
    product = await repo.offerable(session, product_id)
    if product is None:
        return 0
    offered = 0
    while (row := await repo.first_waiting(session, product_id)) is not None:
        if not await products_repo.reserve(session, product_id, 1):
            break  # nothing (more) free
        until = now + HOLD
        if not await repo.move(
            session,
            row,
            (W.WAITING.value,),
            W.OFFERED.value,
            held=1,
            offered_at=now,
            hold_until=until,
        ):
            await products_repo.release(session, product_id, 1)  # taken meanwhile
            continue
        offered += 1
        buyer = await users.get_user(session, row.user_id)
        if buyer is not None:
            _tell_offer(session, buyer, product, until)
    return offered


def _tell_offer(session: AsyncSession, buyer: User, product: Product, until: dt.datetime) -> None:
    t = notify.translator(buyer)
    body = t(
        _(
            "Kabar baik! *{name}* tersedia lagi dan 1 kami simpan untukmu sampai {until} "
            "({minutes} menit). Ketuk Pesan untuk memesan; setelah itu kesempatannya pindah "
            "ke antrean berikutnya."
        ),
        name=product.name,
        until=t.datetime(until),
        minutes=HOLD_MINUTES,
    )
    notify.tell(
        session, buyer, replies.buttons(body, [(t(_("Pesan")), ShopTap("held", product.id))])
    )


async def expire_holds(session: AsyncSession, now: dt.datetime) -> int:
    """Holds that ran out go back to the stock and on to the next in line; the buyer
    who let it lapse leaves the line. Returns how many lapsed."""
    lapsed = 0
    for row in await repo.holds_due(session, now):
        held = row.held
        if not await repo.move(session, row, (W.OFFERED.value,), W.LAPSED.value, held=0):
            continue  # ordered meanwhile
        lapsed += 1
        if held:
            await products_repo.release(session, row.product_id, held)
        await offer_freed(session, row.product_id, now)
    return lapsed

"""Products: the fields a jastiper types (checked by one function, whichever way they
arrive), adding one to a trip, and changing its stock, price or visibility."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services import waitlist
from services.errors import InvalidInput, NotFound
from storage.models import Product, Trip, utcnow
from storage.repo import audit
from storage.repo import products as repo

NAME_MIN, NAME_MAX = 2, 200
STOCK_RE = re.compile(r"\d{1,6}")
PRICE_RE = re.compile(
    r"^(?:rp\.?\s*)?(\d{1,3}(?:[.,]\d{3})+|\d+(?:[.,]\d+)?)\s*(rb|ribu|k|jt|juta)?$"
)
PRICE_UNREADABLE = _("Harga \u201c{price}\u201d tidak bisa dibaca. Contoh: 85000, 85.000, 85rb")
STOCK_INVALID = _("Stok harus angka 0 atau lebih (kosongkan untuk tanpa batas).")


def parse_price(text: str) -> int | None:
    """Rupiah as people type it: ``85000``, ``85.000``, ``85rb``, ``Rp 85.000``, ``1,5jt``."""
    m = PRICE_RE.match(text.strip().lower())
    if not m:
        return None
    number, unit = m.group(1), m.group(2)
    if unit:
        value = float(number.replace(",", "."))
        amount = round(value * (1_000 if unit in ("rb", "ribu", "k") else 1_000_000))
    else:
        amount = int(re.sub(r"[.,]", "", number))
    return amount if 0 < amount <= 1_000_000_000 else None


def check_name(text: str) -> str:
    name = " ".join(text.split())
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidInput(_("Nama produknya 2 sampai 200 huruf ya."))
    return name


def check_price(text: str) -> int:
    price = parse_price(text)
    if price is None:
        raise InvalidInput(PRICE_UNREADABLE, price=text.strip()[:30])
    return price


def check_stock(text: str) -> int | None:
    """A stock count; empty means unlimited (None)."""
    text = text.strip()
    if not text:
        return None
    if not STOCK_RE.fullmatch(text):
        raise InvalidInput(STOCK_INVALID)
    return int(text)


@dataclasses.dataclass(frozen=True, slots=True)
class Draft:
    """A product's fields, checked, before it belongs to a trip."""

    name: str
    price: int
    stock: int | None
    image_key: str | None = None


def check_fields(name: str, price: str, stock: str = "", image_key: str | None = None) -> Draft:
    """The one check of a product's fields, used by the captioned ``/add``, the product
    wizard and the admin panel alike.

    Raises:
        InvalidInput: the first field that does not read right, and why.
    """
    return Draft(check_name(name), check_price(price), check_stock(stock), image_key)


async def add(
    session: AsyncSession, trip: Trip, draft: Draft, *, actor_user_id: int | None = None
) -> Product:
    """Add the product at the end of the trip's catalogue."""
    product = await repo.add(
        session,
        trip.id,
        name=draft.name,
        price=draft.price,
        stock=draft.stock,
        image_key=draft.image_key,
    )
    audit.record(
        session,
        "product.add",
        actor_user_id=actor_user_id,
        trip_id=trip.id,
        product=product.id,
        price=product.price,
        stock=product.stock,
    )
    return product


async def numbered(session: AsyncSession, trip: Trip, ref: str | None) -> Product:
    """The product numbered ``ref`` in ``/products`` (``3`` or ``#3``).

    Raises:
        InvalidInput: no number given.
        NotFound: no product with that number.
    """
    if not ref or not ref.lstrip("#").isdigit():
        raise InvalidInput(_("Sebutkan nomor produknya dari /products, contoh: /stock 3 10"))
    product = await repo.by_position(session, trip.id, int(ref.lstrip("#")))
    if product is None:
        raise NotFound(_("Produk #{n} tidak ada di {code}."), n=ref.lstrip("#"), code=trip.code)
    return product


async def set_stock(
    session: AsyncSession,
    product: Product,
    stock: int | None,
    *,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """A new stock count (None: unlimited, from the panel only). Units now free go first
    to the buyers waiting for the product; returns how many were offered to them."""
    product.stock = stock
    audit.record(
        session,
        "product.stock",
        actor_user_id=actor_user_id,
        actor_admin_id=actor_admin_id,
        trip_id=product.trip_id,
        product=product.id,
        stock=stock,
    )
    offered = await waitlist.offer_freed(session, product.id, now or utcnow())
    if offered:
        product.stock = await repo.stock_of(session, product.id)
    return offered


async def set_price(
    session: AsyncSession,
    product: Product,
    price: int,
    *,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
) -> None:
    product.price = price
    audit.record(
        session,
        "product.price",
        actor_user_id=actor_user_id,
        actor_admin_id=actor_admin_id,
        trip_id=product.trip_id,
        product=product.id,
        price=price,
    )


async def hide(
    session: AsyncSession,
    product: Product,
    *,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
) -> None:
    await set_hidden(
        session, product, True, actor_user_id=actor_user_id, actor_admin_id=actor_admin_id
    )


async def set_hidden(
    session: AsyncSession,
    product: Product,
    hidden: bool,
    *,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
) -> None:
    """Hide a product from the catalogue, or show it again (the panel can do both)."""
    product.hidden = hidden
    audit.record(
        session,
        "product.hide" if hidden else "product.show",
        actor_user_id=actor_user_id,
        actor_admin_id=actor_admin_id,
        trip_id=product.trip_id,
        product=product.id,
    )


async def of_trip(
    session: AsyncSession, trip: Trip, *, visible_only: bool = False
) -> list[Product]:
    return await repo.of_trip(session, trip.id, visible_only=visible_only)


async def get(session: AsyncSession, product_id: int) -> Product | None:
    return await repo.get(session, product_id)


async def at_position(session: AsyncSession, trip: Trip, position: int) -> Product | None:
    """The product at ``position`` in the trip's catalogue (hidden ones too)."""
    return await repo.by_position(session, trip.id, position)


async def covers(session: AsyncSession, trips: list[Trip]) -> dict[int, Product]:
    """Trip id → its first visible product with a photo (the trip's cover)."""
    return await repo.first_photos(session, [t.id for t in trips])

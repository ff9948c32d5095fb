"""The recap a jastiper downloads: one row per ordered item, as XLSX or CSV.

Each row names its order (code, date, status, buyer, tracking number), the item (how
many, the price, how many were not found, the buyer's note) and where it goes; the
order's money — fee, shipping, the unique digits, the amount to transfer in all (the
same amount every screen shows, ``services/amounts.py``), what was paid and the refunds
— is on the order's first row only, so that a column sums to the trip's. The files are
built by ``services/exports.py`` (formula-safe cells, ``;`` CSV with a BOM, Rupiah
number cells); writing them somewhere is the caller's one step.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from locales import JAKARTA, Translator, _
from services import amounts, exports, refunds
from services.orders import status_label
from storage.crypto import PiiCipher
from storage.models import OrderGroup, Trip
from storage.repo import audit
from storage.repo import orders as orders_repo

# (column title, is it Rupiah)
COLUMNS = (
    (_("Pesanan"), False),
    (_("Tanggal pesan"), False),
    (_("Status"), False),
    (_("Pembeli"), False),
    (_("Produk"), False),
    (_("Jumlah"), False),
    (_("Harga"), True),
    (_("Tidak didapat"), False),
    (_("Catatan"), False),
    (_("Penerima"), False),
    (_("HP penerima"), False),
    (_("Alamat"), False),
    (_("Fee jastip"), True),
    (_("Ongkir"), True),
    (_("Kode unik"), True),
    (_("Total transfer"), True),
    (_("Dibayar"), True),
    (_("Refund belum dikembalikan"), True),
    (_("Refund sudah dikembalikan"), True),
    (_("Rekening refund"), False),
    (_("No. resi"), False),
)
HEADER = tuple(title for title, _money in COLUMNS)
MONEY_COLUMNS = tuple(n for n, (_title, money) in enumerate(COLUMNS) if money)
XLSX = exports.XLSX
_TZ = ZoneInfo(JAKARTA)


def _local(moment: dt.datetime) -> dt.datetime:
    """The order's time on a Jakarta clock, without a zone (spreadsheets have none)."""
    return moment.astimezone(_TZ).replace(tzinfo=None, microsecond=0)


async def rows(
    session: AsyncSession, trip: Trip, cipher: PiiCipher, t: Translator
) -> list[list[Any]]:
    """Every item of the trip's live orders, with the order's money on its first row."""
    out = []
    seen: set[int] = set()
    for order, item, buyer in await orders_repo.recap_lines(session, trip.id, OrderGroup.CLOSED):
        address = cipher.decrypt_json(order.address_enc) if order.address_enc else {}
        street = (address.get(k) for k in ("street", "city", "postal"))
        money: list[Any] = [""] * 7
        account = ""
        if order.id not in seen:
            seen.add(order.id)
            money = [
                order.fee,
                order.shipping,
                order.unique_cents,
                amounts.amount(order),
                order.paid,
                order.refund_due,
                order.refunded,
            ]
            account = refunds.describe(t, order.refund_account) if order.refund_account else ""
        out.append(
            [
                order.code,
                _local(order.created_at),
                t(status_label(order.status)),
                buyer.display_name or buyer.profile_name or "",
                item.name,
                item.quantity,
                item.unit_price,
                item.refunded_quantity,
                item.note or "",
                address.get("recipient", ""),
                address.get("phone", ""),
                ", ".join(x for x in street if x),
                *money,
                account,
                order.tracking_number or "",
            ]
        )
    return out


def xlsx(header: list[str], data: list[list[Any]], title: str) -> tuple[bytes, str, str]:
    """(bytes, mime type, extension) of the recap as a workbook with Rupiah cells."""
    return exports.xlsx_bytes(header, data, title, money_columns=MONEY_COLUMNS), XLSX, "xlsx"


def as_csv(header: list[str], data: list[list[Any]]) -> tuple[bytes, str, str]:
    """(bytes, mime type, extension) of the recap as a ``;`` CSV with a BOM."""
    # Meta takes text/plain documents (not text/csv); the .csv name tells spreadsheets
    return exports.csv_bytes(header, data), "text/plain", "csv"


def record_sent(session: AsyncSession, trip: Trip, *, actor_user_id: int, ext: str) -> None:
    """Audit a recap handed out (in the caller's transaction)."""
    audit.record(session, "trip.recap", actor_user_id=actor_user_id, trip_id=trip.id, format=ext)

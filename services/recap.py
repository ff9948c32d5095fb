"""The recap a jastiper downloads: one row per ordered item, as XLSX or CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from locales import Translator, _
from services.orders import LIVE_EXCLUDED, status_label
from storage.crypto import PiiCipher
from storage.models import Trip
from storage.repo import orders as orders_repo

HEADER = (
    _("Pesanan"),
    _("Status"),
    _("Pembeli"),
    _("Produk"),
    _("Jumlah"),
    _("Harga"),
    _("Catatan"),
    _("Penerima"),
    _("HP penerima"),
    _("Alamat"),
    _("Tidak didapat"),
    _("Ongkir"),
    _("Total pesanan"),
    _("Refund belum dikembalikan"),
    _("Refund sudah dikembalikan"),
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def rows(
    session: AsyncSession, trip: Trip, cipher: PiiCipher, t: Translator
) -> list[list[Any]]:
    """Every item of the trip's live orders with buyer and shipping address, how many of
    it were not found, and the order's shipping, total and refunds."""
    out = []
    seen: set[int] = set()
    for order, item, buyer in await orders_repo.recap_lines(session, trip.id, LIVE_EXCLUDED):
        address = cipher.decrypt_json(order.address_enc) if order.address_enc else {}
        street = (address.get(k) for k in ("street", "city", "postal"))
        # the order's money on its first row only, so that a column sums to the trip's
        money: list[Any] = ["", "", "", ""]
        if order.id not in seen:
            seen.add(order.id)
            money = [order.shipping, order.total, order.refund_due, order.refunded]
        out.append(
            [
                order.code,
                t(status_label(order.status)),
                buyer.display_name or buyer.profile_name or "",
                item.name,
                item.quantity,
                item.unit_price,
                item.note or "",
                address.get("recipient", ""),
                address.get("phone", ""),
                ", ".join(x for x in street if x),
                item.refunded_quantity,
                *money,
            ]
        )
    return out


def xlsx(header: list[str], data: list[list[Any]], title: str) -> tuple[bytes, str, str]:
    """(bytes, mime type, extension) of a spreadsheet with a bold header row."""
    from openpyxl import Workbook  # heavy: loaded on the first recap, not at start-up
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in data:
        sheet.append(row)
    for column in sheet.columns:
        width = max(len(str(c.value or "")) for c in column)
        sheet.column_dimensions[column[0].column_letter].width = min(50, max(10, width + 2))
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue(), XLSX, "xlsx"


def as_csv(header: list[str], data: list[list[Any]]) -> tuple[bytes, str, str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(data)
    # Meta takes text/plain documents (not text/csv); the .csv name tells spreadsheets
    return buf.getvalue().encode("utf-8-sig"), "text/plain", "csv"

"""Every file the product exports (the recap as CSV or XLSX, a statement line kept as a
proof, any admin export) goes through here, so that a cell typed by a stranger can never
run as a formula in the jastiper's spreadsheet.

OWASP's CSV injection rule: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return is prefixed with a single quote, which spreadsheets show as text.
Numbers stay numbers (a negative amount is an ``int``, not text).

CSV is written the way an Indonesian-locale Excel opens it in columns: UTF-8 with a
BOM, ``;`` between cells. XLSX money cells are numbers with a Rupiah number format, and
dates are dates.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CSV_DELIMITER = ";"
RUPIAH_FORMAT = '"Rp" #,##0'
DATE_FORMAT = "yyyy-mm-dd hh:mm"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def neutralise(value: Any) -> Any:
    """A text that a spreadsheet would read as a formula, made plain text; anything else
    as it is."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    """Every cell of a row through :func:`neutralise`."""
    return [neutralise(cell) for cell in row]


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return neutralise(value)


def csv_bytes(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, delimiter: str = CSV_DELIMITER
) -> bytes:
    """A CSV file as Excel opens it in Indonesia: UTF-8 with BOM, ``;`` separated."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerow([_csv_cell(h) for h in header])
    writer.writerows([_csv_cell(cell) for cell in row] for row in rows)
    return buf.getvalue().encode("utf-8-sig")


def xlsx_bytes(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    title: str,
    *,
    money_columns: Iterable[int] = (),
) -> bytes:
    """A one-sheet workbook with a bold header row; the ``money_columns`` (0-based) are
    Rupiah numbers, datetimes are date cells, every text is neutralised."""
    from openpyxl import Workbook  # heavy: loaded on the first export, not at start-up
    from openpyxl.styles import Font

    money = set(money_columns)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(safe_row(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    widths = [len(str(h)) for h in header]
    for row in rows:
        sheet.append(safe_row(row))
        for n, cell in enumerate(sheet[sheet.max_row]):
            cell.data_type = "s" if isinstance(cell.value, str) else cell.data_type
            if n in money and isinstance(cell.value, int):
                cell.number_format = RUPIAH_FORMAT
            elif isinstance(cell.value, dt.datetime):
                cell.number_format = DATE_FORMAT
            if n < len(widths):
                widths[n] = max(widths[n], len(str(cell.value or "")))
    for n, width in enumerate(widths, start=1):
        letter = sheet.cell(row=1, column=n).column_letter
        sheet.column_dimensions[letter].width = min(50, max(10, width + 2))
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()

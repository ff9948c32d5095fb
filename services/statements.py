"""Reading a bank statement export (*mutasi rekening*): bytes in, the credits out.

Pure functions, no database: :func:`parse` takes the file a jastiper exported from
their internet banking (CSV or XLSX) and returns every credit line as a
:class:`Credit` (date, amount in whole rupiah, description, running balance if the
export has one). Matching credits to payments lives in ``services/reconcile.py``.

What the exports of BCA, Mandiri, BRI and BNI have in common, and what is handled:

- lines before the table (account number, holder, period) and after it (opening and
  closing balance, totals): the table starts at the first row whose cells name a date
  column and an amount column; rows whose date cell is not a date are skipped;
- either separate debit / credit columns, or one amount column with a ``CR`` / ``DB``
  (``K`` / ``D``) marker in the amount cell, in the next cell or in a column of its own;
- amounts written ``190,034.00``, ``190.034,00``, ``190034``, ``Rp 190.034`` or as
  spreadsheet numbers; dates ``02/12/2026``, ``02/12/26``, ``02/12`` (the year taken
  from the period line), ``2026-12-02``, ``02 Des 2026`` or spreadsheet dates;
- BCA's habit of prefixing cells with ``'`` to keep them text in Excel.

Parsing is CPU work on untrusted input: :func:`read` runs :func:`parse` on a worker
thread, and both the file size (:data:`MAX_BYTES`), the rows read (:data:`MAX_ROWS`) and
an XLSX's uncompressed size (:data:`MAX_XLSX_UNPACKED`) are bounded.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import re
import zipfile
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

MAX_BYTES: Final = 2 * 1024 * 1024
"""Largest statement file accepted (a month of a busy account is well under 1 MB)."""
MAX_ROWS: Final = 5000
"""Rows read from a statement; the rest is ignored (and the summary says so)."""
MAX_COLUMNS: Final = 40
MAX_XLSX_UNPACKED: Final = 40 * 1024 * 1024
"""Largest total uncompressed size of an XLSX (a zip bomb is refused before opening)."""
HEADER_SEARCH_ROWS: Final = 60
COMMANDS: Final = ("/mutasi", "/statement")

Reason = Literal["too_large", "not_statement", "old_excel"]


class StatementRejected(Exception):
    """A file that cannot be read as a statement; ``reason`` picks the friendly text."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class Credit:
    """One incoming transfer on the statement.

    ``key`` identifies the line for idempotency: a digest of the date, amount,
    description, running balance and, for identical lines, which occurrence it is."""

    date: dt.date
    amount: int
    description: str
    balance: int | None
    key: str


@dataclasses.dataclass(frozen=True, slots=True)
class Statement:
    credits: tuple[Credit, ...]
    lines: int  # transaction lines read (credits and debits)
    truncated: bool  # more than MAX_ROWS rows: the rest was not read


def is_statement_caption(caption: str | None) -> bool:
    """A document captioned ``/mutasi`` (or ``/statement``) is a bank statement."""
    words = (caption or "").split()
    return bool(words) and words[0].lower() in COMMANDS


async def read(data: bytes, today: dt.date) -> Statement:
    """:func:`parse` on a worker thread, so the event loop stays free."""
    return await asyncio.to_thread(parse, data, today)


def parse(data: bytes, today: dt.date) -> Statement:
    """Every credit of a statement export.

    Args:
        data: The file as sent (CSV in any usual encoding and delimiter, or XLSX).
        today: Dates without a year and no period line get this year (or the previous
            one, for a date that would lie in the future).

    Raises:
        StatementRejected: ``too_large``; ``old_excel`` for a legacy ``.xls``;
            ``not_statement`` when no transaction table is found.
    """
    if len(data) > MAX_BYTES:
        raise StatementRejected("too_large", f"{len(data)} bytes")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise StatementRejected("old_excel")
    rows = _xlsx_rows(data) if data.startswith(b"PK\x03\x04") else _csv_rows(data)
    return _table(rows, today)


# --- reading rows --------------------------------------------------------------------------

Cell = str | int | float | Decimal | dt.date | None


def _csv_rows(data: bytes) -> list[list[Cell]]:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise StatementRejected("not_statement", "binary data")
    text = None
    for encoding in ("utf-8-sig", "utf-16", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None or "\x00" in text:
        raise StatementRejected("not_statement", "not text")
    lines = text.splitlines()[: MAX_ROWS + HEADER_SEARCH_ROWS]
    sample = "\n".join(lines[:HEADER_SEARCH_ROWS])
    delimiter = max(",;\t|", key=sample.count)
    rows: list[list[Cell]] = []
    for row in csv.reader(lines, delimiter=delimiter):
        rows.append([cell.strip().lstrip("'").strip() for cell in row[:MAX_COLUMNS]])
    return rows


def _xlsx_rows(data: bytes) -> list[list[Cell]]:
    from openpyxl import load_workbook  # loaded on first use

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_XLSX_UNPACKED:
            raise StatementRejected("too_large", f"{unpacked} bytes unpacked")
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except StatementRejected:
        raise
    except Exception as exc:  # not a workbook, damaged, encrypted, …
        raise StatementRejected("not_statement", f"{type(exc).__name__}: {exc}") from exc
    try:
        sheet = book.worksheets[0]
        rows: list[list[Cell]] = []
        for row in sheet.iter_rows(
            max_row=MAX_ROWS + HEADER_SEARCH_ROWS, max_col=MAX_COLUMNS, values_only=True
        ):
            rows.append([v.strip() if isinstance(v, str) else v for v in row])  # type: ignore[misc]
        return rows
    finally:
        book.close()


# --- the table -----------------------------------------------------------------------------

_CREDIT = re.compile(r"\b(kredit|credit|cr|mutasi[ _]?kredit)\b|kredit")
_DEBIT = re.compile(r"\b(debit|debet|db|dr)\b|debe?t")
_MARKER = re.compile(r"^(tipe|type|d/k|k/d|db/cr|cr/db|dk|d ?/ ?c|c ?/ ?d|jenis)$")


@dataclasses.dataclass
class _Columns:
    date: int | None = None
    description: list[int] = dataclasses.field(default_factory=list)
    credit: int | None = None
    debit: int | None = None
    amount: int | None = None
    marker: int | None = None
    balance: int | None = None

    @property
    def usable(self) -> bool:
        return self.date is not None and (self.credit is not None or self.amount is not None)


def _classify(header: Sequence[Cell]) -> _Columns:
    cols = _Columns()
    for i, cell in enumerate(header):
        name = re.sub(r"[_\s]+", " ", str(cell or "")).strip().lower()
        if not name:
            continue
        credit, debit = bool(_CREDIT.search(name)), bool(_DEBIT.search(name))
        if _MARKER.match(name) or (credit and debit):
            cols.marker = i if cols.marker is None else cols.marker
        elif "saldo" in name or "balance" in name:
            cols.balance = i if cols.balance is None else cols.balance
        elif credit:
            cols.credit = i if cols.credit is None else cols.credit
        elif debit:
            cols.debit = i if cols.debit is None else cols.debit
        elif re.search(r"tanggal|\btgl\b|tgl|date", name):
            cols.date = i if cols.date is None else cols.date
        elif re.search(r"keterangan|uraian|desc|desk|remark|berita|detail|narasi", name):
            cols.description.append(i)
        elif re.search(r"jumlah|nominal|amount|mutasi|nilai", name):
            cols.amount = i if cols.amount is None else cols.amount
    return cols


def _table(rows: list[list[Cell]], today: dt.date) -> Statement:
    period_year = _period_year(rows[:HEADER_SEARCH_ROWS])
    start = next(
        (i for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]) if _classify(row).usable), None
    )
    if start is None:
        raise StatementRejected("not_statement", "no transaction table")
    cols = _classify(rows[start])
    credits: list[Credit] = []
    seen: dict[str, int] = {}
    lines = 0
    body = rows[start + 1 :]
    for row in body[:MAX_ROWS]:
        date = _date(_at(row, cols.date), period_year, today)
        if date is None:
            continue
        amount = _credit_amount(row, cols)
        if amount is None:
            continue
        lines += 1
        if amount <= 0:
            continue
        description = " ".join(
            " ".join(str(_at(row, i) or "").split()) for i in cols.description
        ).strip()
        balance_value = _amount(_at(row, cols.balance))
        balance = int(balance_value[0]) if balance_value else None
        base = f"{date.isoformat()}|{amount}|{description}|{balance}"
        seen[base] = seen.get(base, 0) + 1
        key = hashlib.sha256(f"{base}|{seen[base]}".encode()).hexdigest()
        credits.append(Credit(date, amount, description[:200], balance, key))
    if lines == 0:
        raise StatementRejected("not_statement", "no transaction lines")
    return Statement(tuple(credits), lines, len(body) > MAX_ROWS)


def _at(row: Sequence[Cell], i: int | None) -> Cell:
    return row[i] if i is not None and i < len(row) else None


def _credit_amount(row: Sequence[Cell], cols: _Columns) -> int | None:
    """The line's credit in rupiah, 0 for a debit, None for a row that is no transaction."""
    if cols.credit is not None:
        credit = _amount(_at(row, cols.credit))
        debit = _amount(_at(row, cols.debit))
        if credit is not None and credit[0] > 0:
            return _rupiah(credit[0])
        if credit is not None or debit is not None:
            return 0
        return None
    parsed = _amount(_at(row, cols.amount))
    if parsed is None:
        return None
    value, marker = parsed
    if marker is None and cols.marker is not None:
        marker = _marker(_at(row, cols.marker))
    if marker is None and cols.amount is not None:
        marker = _marker(_at(row, cols.amount + 1))  # BCA: "150,000.00","CR"
    if value < 0 or marker == "DB":
        return 0
    return _rupiah(value) if marker == "CR" else 0  # no marker: not known as a credit


def _rupiah(value: Decimal) -> int:
    return int(value.quantize(Decimal(1)))


def _marker(cell: Cell) -> Literal["CR", "DB"] | None:
    word = str(cell or "").strip().upper().rstrip(".")
    if word in ("CR", "K", "C", "KR", "KREDIT", "CREDIT", "CREDIT (CR)"):
        return "CR"
    if word in ("DB", "D", "DR", "DEBIT", "DEBET", "DEBIT (DB)"):
        return "DB"
    return None


_AMOUNT_TAIL = re.compile(r"\s*\b(CR|DB|DR|K|D)\.?$", re.IGNORECASE)


def _amount(cell: Cell) -> tuple[Decimal, Literal["CR", "DB"] | None] | None:
    """A cell's amount (negative for ``-1.000`` or ``(1.000)``) and any CR/DB marker in it."""
    if cell is None or isinstance(cell, bool | dt.date):
        return None
    if isinstance(cell, int | float | Decimal):
        return Decimal(str(cell)), None
    text = cell.strip()
    marker = None
    tail = _AMOUNT_TAIL.search(text)
    if tail:
        marker = _marker(tail.group(1))
        text = text[: tail.start()]
    text = re.sub(r"(?i)^(rp\.?|idr)\s*", "", text.strip()).replace(" ", "")
    negative = text.startswith("-") or text.endswith("-") or text.startswith("(")
    text = text.strip("-+()")
    if not re.fullmatch(r"\d[\d.,]*|[.,]\d+", text):
        return None
    number = _number(text)
    if number is None:
        return None
    return (-number if negative else number), marker


def _number(text: str) -> Decimal | None:
    """``190,034.00`` / ``190.034,00`` / ``190034`` / ``190.034`` → Decimal."""
    last_dot, last_comma = text.rfind("."), text.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        decimal_sep = "." if last_dot > last_comma else ","
    elif last_dot >= 0 or last_comma >= 0:
        sep = "." if last_dot >= 0 else ","
        tail = len(text) - max(last_dot, last_comma) - 1
        # one separator followed by 1 or 2 digits is a decimal point; by 3, thousands
        decimal_sep = sep if text.count(sep) == 1 and tail in (1, 2) else ""
    else:
        decimal_sep = ""
    thousands = {".": ",", ",": ".", "": ".,"}[decimal_sep]
    for ch in thousands:
        text = text.replace(ch, "")
    if decimal_sep:
        text = text.replace(decimal_sep, ".")
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "januari", "january"),
            ("feb", "peb", "februari", "february"),
            ("mar", "maret", "march"),
            ("apr", "april"),
            ("mei", "may"),
            ("jun", "juni", "june"),
            ("jul", "juli", "july"),
            ("agu", "agt", "agus", "aug", "agustus", "august"),
            ("sep", "sept", "september"),
            ("okt", "oct", "oktober", "october"),
            ("nov", "nop", "november", "nopember"),
            ("des", "dec", "desember", "december"),
        ],
        start=1,
    )
    for name in names
}
_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?(?:\s.*)?$")
_YMD = re.compile(r"^(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})(?:[\sT].*)?$")
_DMONY = re.compile(r"^(\d{1,2})[\s\-/]([a-z]{3,9})[\s\-/](\d{2}|\d{4})(?:\s.*)?$")
_PERIOD = re.compile(r"(?:periode|period|tanggal)[^0-9]*\d{1,2}[/.\-]\d{1,2}[/.\-](\d{4})", re.I)


def _period_year(rows: Sequence[Sequence[Cell]]) -> int | None:
    for row in rows:
        match = _PERIOD.search(" ".join(str(c) for c in row if c is not None))
        if match:
            return int(match.group(1))
    return None


def _date(cell: Cell, period_year: int | None, today: dt.date) -> dt.date | None:
    if isinstance(cell, dt.datetime):
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    if not isinstance(cell, str):
        return None
    text = cell.strip().lower()
    day = month = year = None
    if m := _YMD.match(text):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := _DMY.match(text):
        day, month = int(m[1]), int(m[2])
        year = int(m[3]) if m[3] else None
    elif (m := _DMONY.match(text)) and m[2] in _MONTHS:
        day, month, year = int(m[1]), _MONTHS[m[2]], int(m[3])
    else:
        return None
    if year is not None and year < 100:
        year += 2000
    try:
        if year is not None:
            return dt.date(year, month, day)
        guess = dt.date(period_year or today.year, month, day)
        if period_year is None and guess > today:
            guess = guess.replace(year=guess.year - 1)
        return guess
    except ValueError:
        return None

"""Reading a bank statement export (*mutasi rekening*): bytes in, the credits out.

Pure functions, no database: :func:`parse` takes the file a jastiper exported from
their internet banking (CSV, XLSX, or the HTML table downloaded as ``.xls``; rows read by
``services/statement_read.py``) and returns every credit line as a :class:`Credit`
(date, amount in whole rupiah, description, running balance if the export has one) and
the account the statement states. Matching credits to payments lives in
``services/reconcile.py``.

What the exports of BCA, Mandiri, BRI, BNI and the others have in common, and what is
handled:

- lines before the table (account number, holder, period) and after it (opening and
  closing balance, totals): the table starts at the first row whose cells name a date
  column and an amount column; rows whose date cell is not a date are skipped;
- either separate debit / credit columns, or one amount column with a ``CR`` / ``DB``
  (``K`` / ``D``) marker in the amount cell, in the next cell or in a column of its own,
  or one signed amount column (``+45.194,00`` / ``-15.000,00``, Livin' and the digital
  banks); an amount whose direction cannot be read is counted, never taken for a credit;
- amounts written ``190,034.00``, ``190.034,00``, ``190034``, ``Rp 190.034`` or as
  spreadsheet numbers; dates ``02/12/2026``, ``02/12/26``, ``02/12`` (the year taken
  from the period line, which may span a year end), ``2026-12-02``, ``02 Des 2026``,
  ``03 August 2026 11:27:10`` or spreadsheet dates; KlikBCA's ``PEND`` for today;
- BCA's habit of prefixing cells with ``'`` to keep them text in Excel.

Parsing is CPU work on untrusted input: :func:`read` runs :func:`parse` on a worker
thread, and the file size, the rows read and an XLSX's uncompressed size are bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

from services.dates import MONTHS
from services.statement_read import (
    HEADER_SEARCH_ROWS,
    MAX_BYTES,
    MAX_ROWS,
    MAX_XLSX_UNPACKED,
    Cell,
    Reason,
    StatementRejected,
    account_column,
    account_number_of,
    bank_of,
    column_number,
    holder_of,
    period_of,
    rows_of,
)

__all__ = [
    "MAX_BYTES",
    "MAX_ROWS",
    "MAX_XLSX_UNPACKED",
    "Account",
    "Credit",
    "Reason",
    "Statement",
    "StatementRejected",
    "is_statement_caption",
    "looks_like_statement",
    "parse",
    "read",
]

COMMANDS: Final = ("/mutasi", "/statement")
PENDING: Final = "PEND"


@dataclasses.dataclass(frozen=True, slots=True)
class Credit:
    """One incoming transfer on the statement.

    ``key`` identifies the line for idempotency: a digest of the date, amount,
    description, running balance and, for identical lines, which occurrence it is.
    ``pending``: KlikBCA's ``PEND`` instead of a date (today's transfer, the day not
    closed yet); its date is the day the statement was read."""

    date: dt.date
    amount: int
    description: str
    balance: int | None
    key: str
    pending: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    """The account a statement states it is of: the bank (as :func:`statement_read.
    bank_named` spells it) and the number (digits), either unknown when not stated;
    the holder's name when a header line gives it (shown, never compared or stored)."""

    bank: str | None = None
    number: str | None = None
    holder: str | None = dataclasses.field(default=None, compare=False)

    @property
    def stated(self) -> bool:
        return self.bank is not None or self.number is not None


@dataclasses.dataclass(frozen=True, slots=True)
class Statement:
    credits: tuple[Credit, ...]
    lines: int  # transaction lines read (credits and debits)
    truncated: bool  # more than MAX_ROWS rows: the rest was not read
    account: Account = Account()
    # transaction lines whose direction could not be read, and the column they are in
    # (no CR/DB marker, no sign, no credit column): said when no credit was read
    unread: int = 0
    unread_column: str = ""


def is_statement_caption(caption: str | None) -> bool:
    """A document captioned ``/mutasi`` (or ``/statement``) is a bank statement."""
    words = (caption or "").split()
    return bool(words) and words[0].lower() in COMMANDS


STATEMENT_EXTENSIONS: Final = (".csv", ".xls", ".xlsx")
STATEMENT_MIMES: Final = (
    "text/csv",
    "text/comma-separated-values",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)


def looks_like_statement(filename: str | None, mime_type: str | None) -> bool:
    """A document that can only be a statement export (a spreadsheet or CSV: never a
    payment proof, which is a picture or a PDF), whatever its caption."""
    name = (filename or "").lower()
    mime = (mime_type or "").split(";")[0].strip().lower()
    return name.endswith(STATEMENT_EXTENSIONS) or mime in STATEMENT_MIMES


async def read(data: bytes, today: dt.date) -> Statement:
    """:func:`parse` on a worker thread, so the event loop stays free."""
    return await asyncio.to_thread(parse, data, today)


def parse(data: bytes, today: dt.date) -> Statement:
    """Every credit of a statement export.

    Args:
        data: The file as sent (CSV in any usual encoding and delimiter, XLSX, or the
            HTML table some banks download as ``.xls``).
        today: The date of ``PEND`` lines; dates without a year and no period line get
            this year (or the previous one, for a date that would lie in the future).

    Raises:
        StatementRejected: ``too_large``; ``old_excel`` for a legacy ``.xls``; ``pdf``;
            ``not_statement`` when no transaction table is found.
    """
    return _table(rows_of(data), today)


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
    when: int | None = None
    for i, cell in enumerate(header):
        name = re.sub(r"[_\s]+", " ", str(cell or "")).strip().lower()
        if not name:
            continue
        credit, debit = bool(_CREDIT.search(name)), bool(_DEBIT.search(name))
        if _MARKER.match(name) or (credit and debit):
            cols.marker = i if cols.marker is None else cols.marker
        elif "saldo" in name or "balance" in name or name == "total":  # Permata: Total
            # the running balance after the line; BRImo's SALDO_AWAL_MUTASI (the balance
            # before it) and opening-balance columns are not it
            if not re.search(r"awal|opening|begin|sebelum|before", name):
                cols.balance = i if cols.balance is None else cols.balance
        elif credit:
            cols.credit = i if cols.credit is None else cols.credit
        elif debit:
            cols.debit = i if cols.debit is None else cols.debit
        elif re.search(r"tanggal|\btgl\b|tgl|date", name):
            cols.date = i if cols.date is None else cols.date
        elif re.search(r"waktu", name):  # SeaBank's "Waktu Transaksi", if no date column
            when = i if when is None else when
        elif re.search(
            r"keterangan|uraian|desc|desk|remark|berita|detail|narasi|rincian|catatan|"
            r"sumber|tujuan|source|destination",
            name,
        ):
            cols.description.append(i)
        elif re.search(r"jumlah|nominal|amount|mutasi|nilai", name):
            cols.amount = i if cols.amount is None else cols.amount
    if cols.date is None:
        cols.date = when
    return cols


def _table(rows: list[list[Cell]], today: dt.date) -> Statement:
    start = next(
        (i for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]) if _classify(row).usable), None
    )
    if start is None:
        raise StatementRejected("not_statement", "no transaction table")
    cols = _classify(rows[start])
    period = period_of(rows[: start + 1])
    body = rows[start + 1 :]
    signed = _signed(body[:MAX_ROWS], cols)
    month_first = _month_first([_at(row, cols.date) for row in body[:MAX_ROWS]], period)
    credits: list[Credit] = []
    seen: dict[str, int] = {}
    lines = unread = 0
    for row in body[:MAX_ROWS]:
        pending = str(_at(row, cols.date) or "").strip().upper() == PENDING
        date = today if pending else _date(_at(row, cols.date), period, today, month_first)
        if date is None:
            continue
        amount = _credit_amount(row, cols, signed)
        if amount is None:
            continue
        lines += 1
        if amount < 0:
            unread += 1
        if amount <= 0:
            continue
        description = " ".join(
            " ".join(str(_at(row, i) or "").split()) for i in cols.description
        ).strip()
        balance_value = _amount(_at(row, cols.balance))
        balance = int(balance_value[0]) if balance_value else None
        base = f"{PENDING if pending else date.isoformat()}|{amount}|{description}|{balance}"
        seen[base] = seen.get(base, 0) + 1
        key = hashlib.sha256(f"{base}|{seen[base]}".encode()).hexdigest()
        credits.append(Credit(date, amount, description[:200], balance, key, pending))
    if lines == 0:
        raise StatementRejected("not_statement", "no transaction lines")
    return Statement(
        tuple(credits),
        lines,
        len(body) > MAX_ROWS,
        _account(rows[:start], rows[start], body, cols),
        unread,
        _column_name(rows[start], cols),
    )


def _account(
    header: Sequence[Sequence[Cell]],
    table_header: Sequence[Cell],
    body: Sequence[Sequence[Cell]],
    cols: _Columns,
) -> Account:
    """The account the statement states: a header line, else an account column."""
    number = account_number_of(header)
    column = account_column(table_header)
    if number is None and column is not None:
        number = next(
            (found for row in body[:20] if (found := column_number(_at(row, column)))), None
        )
    return Account(bank_of(header, table_header), number, holder_of(header))


def _column_name(table_header: Sequence[Cell], cols: _Columns) -> str:
    index = cols.amount if cols.credit is None else cols.credit
    return " ".join(str(_at(table_header, index) or "").split())[:40]


def _at(row: Sequence[Cell], i: int | None) -> Cell:
    return row[i] if i is not None and i < len(row) else None


def _direction(row: Sequence[Cell], cols: _Columns) -> Literal["CR", "DB"] | None:
    """A CR/DB marker: in the amount cell, in a column of its own, or in the next cell."""
    parsed = _amount(_at(row, cols.amount))
    marker = parsed[1] if parsed else None
    if marker is None and cols.marker is not None:
        marker = _marker(_at(row, cols.marker))
    if marker is None and cols.amount is not None:
        marker = _marker(_at(row, cols.amount + 1))  # BCA: "150,000.00","CR"
    return marker


def _signed(body: Sequence[Sequence[Cell]], cols: _Columns) -> bool:
    """Is the one amount column signed (``+45.194,00`` / ``-15.000,00``)? Yes when no
    line carries a CR/DB marker and some amount has a sign."""
    if cols.credit is not None or cols.amount is None:
        return False
    sign = False
    for row in body:
        parsed = _amount(_at(row, cols.amount))
        if parsed is None:
            continue
        if _direction(row, cols) is not None and not _explicit_plus(_at(row, cols.amount)):
            return False
        sign = sign or parsed[0] < 0 or _explicit_plus(_at(row, cols.amount))
    return sign


def _explicit_plus(cell: Cell) -> bool:
    return isinstance(cell, str) and cell.strip().startswith("+")


def _credit_amount(row: Sequence[Cell], cols: _Columns, signed: bool) -> int | None:
    """The line's credit in rupiah, 0 for a debit, -1 for an amount of unknown
    direction, None for a row that is no transaction."""
    if cols.credit is not None:
        credit = _amount(_at(row, cols.credit))
        debit = _amount(_at(row, cols.debit))
        if credit is not None and credit[0] > 0:
            return _rupiah(credit[0])
        if credit is not None or debit is not None:
            return 0
        return -1 if str(_at(row, cols.credit) or "").strip() else None
    parsed = _amount(_at(row, cols.amount))
    if parsed is None:
        return -1 if str(_at(row, cols.amount) or "").strip() else None
    value = parsed[0]
    marker = "CR" if _explicit_plus(_at(row, cols.amount)) else _direction(row, cols)
    if marker is None and signed:
        marker = "CR" if value > 0 else "DB"
    if value < 0 or marker == "DB":
        return 0
    return _rupiah(value) if marker == "CR" else -1


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


_MONTHS = MONTHS  # one table of month names (services/dates.py)
_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?(?:\s.*)?$")
_YMD = re.compile(r"^(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})(?:[\sT].*)?$")
_DMONY = re.compile(r"^(\d{1,2})[\s\-/]([a-z]{3,9})[\s\-/](\d{2}|\d{4})(?:\s.*)?$")


def _month_first(cells: Sequence[Cell], period: tuple[dt.date, dt.date] | None) -> bool:
    """Is the date column written month first (``02/13/24 09:30``, CIMB Niaga's posting
    dates)? Only when the column itself says so: some date has a "month" over 12 while
    none has a day over 12, or, every date being ambiguous, the period line holds every
    date read month first and not every date read day first."""
    pairs = []
    for cell in cells:
        if isinstance(cell, str) and (m := _DMY.match(cell.strip())) and m[3]:
            year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
            pairs.append((int(m[1]), int(m[2]), year))
    if not pairs or any(first > 12 for first, _second, _y in pairs):
        return False
    if any(second > 12 for _first, second, _y in pairs):
        return True
    if period is None:
        return False
    start, end = period

    def inside(dates: list[tuple[int, int, int]]) -> bool:
        try:
            return all(start <= dt.date(y, m, d) <= end for d, m, y in dates)
        except ValueError:
            return False

    return not inside(pairs) and inside([(second, first, y) for first, second, y in pairs])


def _date(
    cell: Cell,
    period: tuple[dt.date, dt.date] | None,
    today: dt.date,
    month_first: bool = False,
) -> dt.date | None:
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
        if month_first:
            day, month = month, day
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
        if period is not None:
            return _in_period(month, day, period)
        guess = dt.date(today.year, month, day)
        return guess.replace(year=guess.year - 1) if guess > today else guess
    except ValueError:
        return None


def _in_period(month: int, day: int, period: tuple[dt.date, dt.date]) -> dt.date:
    """A ``dd/mm`` date inside the statement's period (which may span a year end)."""
    start, end = period
    for year in range(start.year, end.year + 1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            continue
        if start <= candidate <= end:
            return candidate
    return dt.date(end.year, month, day)

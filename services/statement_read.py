"""The rows of a bank statement file, and what its header lines state.

Bytes in, a list of rows of cells out (:func:`rows_of`): CSV in any usual encoding and
delimiter, XLSX, and the ``.xls`` that KlikBCA and other internet banks download, which
is an HTML table under an Excel name. A legacy binary ``.xls`` and a PDF e-statement
are refused with their own reason (the jastiper is asked for the CSV/XLSX export).

The header lines above the table state the period (``Periode : 28/12/2026 -
03/01/2027``) and the account (``No. rekening : 1234567890``, ``Account No.,=,'0111…``);
:func:`period_of`, :func:`account_number_of` and :func:`bank_of` read them. Every size
is bounded: the file (:data:`MAX_BYTES`), the rows (:data:`MAX_ROWS`), the columns and
an XLSX's uncompressed size.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Sequence
from decimal import Decimal
from html.parser import HTMLParser
from typing import Final, Literal

MAX_BYTES: Final = 2 * 1024 * 1024
"""Largest statement file accepted (a month of a busy account is well under 1 MB)."""
MAX_ROWS: Final = 5000
"""Rows read from a statement; the rest is ignored (and the summary says so)."""
MAX_COLUMNS: Final = 40
MAX_XLSX_UNPACKED: Final = 40 * 1024 * 1024
"""Largest total uncompressed size of an XLSX (a zip bomb is refused before opening)."""
HEADER_SEARCH_ROWS: Final = 60

Reason = Literal["too_large", "not_statement", "old_excel", "pdf"]
Cell = str | int | float | Decimal | dt.date | None


class StatementRejected(Exception):
    """A file that cannot be read as a statement; ``reason`` picks the friendly text."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Reason = reason


def rows_of(data: bytes) -> list[list[Cell]]:
    """The file's rows, whatever its format (see the module text).

    Raises:
        StatementRejected: ``too_large``, ``old_excel``, ``pdf`` or ``not_statement``.
    """
    if len(data) > MAX_BYTES:
        raise StatementRejected("too_large", f"{len(data)} bytes")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise StatementRejected("old_excel")
    if data.lstrip()[:5] == b"%PDF-":
        raise StatementRejected("pdf")
    if data.startswith(b"PK\x03\x04"):
        return _xlsx_rows(data)
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") and (b"<table" in data[:65536].lower() or b"<html" in head):
        return _html_rows(data)
    return _csv_rows(data)


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise StatementRejected("not_statement", "binary data")
    for encoding in ("utf-8-sig", "utf-16", "cp1252"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise StatementRejected("not_statement", "not text")


def _csv_rows(data: bytes) -> list[list[Cell]]:
    lines = _decode(data).splitlines()[: MAX_ROWS + HEADER_SEARCH_ROWS]
    sample = "\n".join(lines[:HEADER_SEARCH_ROWS])
    delimiter = max(",;\t|", key=sample.count)
    rows: list[list[Cell]] = []
    for row in csv.reader(lines, delimiter=delimiter):
        rows.append([cell.strip().lstrip("'").strip() for cell in row[:MAX_COLUMNS]])
    return rows


class _Tables(HTMLParser):
    """Every ``<tr>`` of every table, in document order, as the text of its cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[Cell]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._span = 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._end_row()
            self._row = []
        elif tag in ("td", "th"):
            self._end_cell()
            if self._row is None:
                self._row = []
            self._cell = []
            # KlikBCA's "Mutasi" header spans the amount and its CR/DB cell: a spanned
            # header keeps the columns after it over their cells
            span = dict(attrs).get("colspan") or "1"
            self._span = min(int(span), 8) if span.strip().isdigit() else 1
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._end_cell()
        elif tag in ("tr", "table"):
            self._end_row()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def _end_cell(self) -> None:
        if self._cell is not None and self._row is not None and len(self._row) < MAX_COLUMNS:
            self._row.append(" ".join("".join(self._cell).split()).lstrip("'").strip())
            self._row.extend([""] * min(self._span - 1, MAX_COLUMNS - len(self._row)))
        self._cell = None
        self._span = 1

    def _end_row(self) -> None:
        self._end_cell()
        if self._row and len(self.rows) < MAX_ROWS + HEADER_SEARCH_ROWS:
            self.rows.append(list(self._row))
        self._row = None


def _html_rows(data: bytes) -> list[list[Cell]]:
    parser = _Tables()
    parser.feed(_decode(data))
    parser.close()
    parser._end_row()
    return parser.rows


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


# --- what the header lines state ------------------------------------------------------------

_D = r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})"
_PERIOD = re.compile(
    rf"(?:periode|period|tanggal|date)[^0-9]*{_D}\s*(?:-|–|s\.?/?d\.?|sampai|to|hingga)\s*{_D}",
    re.I,
)


def _text(row: Sequence[Cell]) -> str:
    return " ".join(str(c) for c in row if c is not None and str(c).strip())


def period_of(rows: Sequence[Sequence[Cell]]) -> tuple[dt.date, dt.date] | None:
    """The statement's period from a ``Periode : 28/12/2026 - 03/01/2027`` line."""
    for row in rows:
        match = _PERIOD.search(_text(row))
        if not match:
            continue
        d1, m1, y1, d2, m2, y2 = (int(g) for g in match.groups())
        try:
            start = dt.date(y1 + 2000 if y1 < 100 else y1, m1, d1)
            end = dt.date(y2 + 2000 if y2 < 100 else y2, m2, d2)
        except ValueError:
            continue
        if start <= end:
            return start, end
    return None


_ACCOUNT_LABEL = re.compile(
    r"(?:no\.?\s*rek(?:ening)?|nomor\s+rekening|account\s*(?:no\.?|number)|accountno|"
    r"\bnorek\b|^rekening\b)",
    re.I,
)
_ACCOUNT_NUMBER = re.compile(r"[:=,;\s]*'?(\d[\d .\-]{4,30}\d)")
_ACCOUNT_COLUMN = re.compile(r"^(no\.?\s*rek(ening)?|norek|account\s*no\.?|accountno)$", re.I)


def account_number_of(header: Sequence[Sequence[Cell]]) -> str | None:
    """The account number a header line states, digits only (leading zeros kept)."""
    for row in header:
        text = _text(row)
        # every label of the line: a bilingual one (``Nomor Rekening / Account No :``)
        # has the number after its second
        for label in _ACCOUNT_LABEL.finditer(text):
            number = _ACCOUNT_NUMBER.match(text, label.end())
            if number:
                digits = re.sub(r"\D", "", number.group(1))
                if len(digits) >= 6:
                    return digits
    return None


_HOLDER_WORD = r"(?:nama(?:\s+(?:nasabah|pemilik|rekening))?|(?:account\s+)?name)"
_HOLDER_LABEL = re.compile(
    rf"^\s*{_HOLDER_WORD}(?:\s*/\s*{_HOLDER_WORD})?\s*[:=,;][\s:=,;]*(.+)$", re.I
)


def holder_of(header: Sequence[Sequence[Cell]]) -> str | None:
    """The account holder a header line names (``Nama : TINA JASTIP``, ``Name,=,…``,
    ``Account Name,…``), if any; only kept in memory, never stored."""
    for row in header:
        text = " : ".join(str(c).strip() for c in row if c is not None and str(c).strip())
        match = _HOLDER_LABEL.match(text)
        if not match:
            continue
        name = match.group(1).strip(" :=,;'\"")
        if name and not re.fullmatch(r"[\d\s.\-]+", name):
            return " ".join(name.split())[:100]
    return None


def account_column(header_row: Sequence[Cell]) -> int | None:
    """The table column holding the account number (Mandiri MCM, BRI CMS), if any."""
    for i, cell in enumerate(header_row):
        if _ACCOUNT_COLUMN.match(re.sub(r"[_\s]+", " ", str(cell or "")).strip()):
            return i
    return None


def digits(value: object) -> str | None:
    """An account number as digits only, or None when it has too few to be one."""
    found = re.sub(r"\D", "", str(value or ""))
    return found if len(found) >= 6 else None


_SCIENTIFIC = re.compile(r"^\d([.,]\d+)?e\+?\d+$", re.I)


def column_number(cell: Cell) -> str | None:
    """An account number in a column (BRImo's NOREK): digits; a number cell as its whole
    digits; None for what Excel made of it when the CSV was opened and saved there
    (``1.23010E+13``): its digits are lost, so the account is not stated."""
    if isinstance(cell, float):
        return digits(f"{cell:.0f}") if cell.is_integer() else None
    if isinstance(cell, str) and _SCIENTIFIC.match(cell.strip()):
        return None
    return digits(cell)


# the banks a jastiper's account may be at, by how their names and exports spell them
_BANKS: Final = (
    ("BCA", r"\bbca\b|central asia|klikbca|mybca"),
    ("Mandiri", r"mandiri|\blivin\b|\bkopra\b"),
    ("BNI", r"\bbni\b|negara indonesia|bnidirect|\bwondr\b"),
    ("BRI", r"\bbri\b|rakyat indonesia|\bbrimo\b|\bqlola\b"),
    ("BSI", r"\bbsi\b|syariah indonesia"),
    ("CIMB Niaga", r"\bcimb\b"),
    ("Permata", r"permata"),
    ("Jago", r"\bjago\b"),
    ("Jenius", r"jenius|\bbtpn\b"),
    ("SeaBank", r"sea\s?bank"),
    ("BTN", r"\bbtn\b|tabungan negara"),
    ("Danamon", r"danamon"),
)
# table headers only one bank's export has
_LAYOUTS: Final = (
    ("BCA", ("tanggal transaksi", "keterangan", "cabang", "jumlah")),
    ("BCA", ("date", "description", "branch", "amount")),
    ("BCA", ("tgl.", "keterangan", "cab.", "mutasi")),  # KlikBCA Individual's page
    ("BRI", ("tgl_tran", "desk_tran")),
    ("Mandiri", ("postdate", "remarks", "additionaldesc")),
    ("Mandiri", ("tgl. val.", "rincian transaksi")),
    ("Mandiri", ("transaction code", "reference no.")),
    ("BNI", ("journal no.",)),
    ("BSI", ("trx time", "d/k")),
    ("Permata", ("transaction code", "customer no")),
    ("CIMB Niaga", ("transaction ref no",)),
)


def bank_named(text: str | None) -> str | None:
    """The bank a name or a line of text names (``Bank BCA`` → ``BCA``), if known."""
    lowered = (text or "").lower()
    for code, pattern in _BANKS:
        if re.search(pattern, lowered):
            return code
    return None


def bank_of(header: Sequence[Sequence[Cell]], table_header: Sequence[Cell]) -> str | None:
    """The bank the statement states: named in the lines above the table, or by a table
    header only that bank's export has."""
    for row in header:
        code = bank_named(_text(row))
        if code:
            return code
    names = [str(c or "").strip().lower() for c in table_header]
    for code, needed in _LAYOUTS:
        if all(n in names for n in needed):
            return code
    return None

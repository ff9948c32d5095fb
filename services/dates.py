"""Dates as people type them in a chat, in Indonesian or English: digits, month names
(``20 Desember``, ``Dec 20``) or words (``besok``, ``tomorrow``)."""

from __future__ import annotations

import datetime as dt
import re

MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("januari", "january", "jan"),
            ("februari", "february", "feb", "pebruari", "peb"),
            ("maret", "march", "mar"),
            ("april", "apr"),
            ("mei", "may"),
            ("juni", "june", "jun"),
            ("juli", "july", "jul"),
            ("agustus", "august", "agu", "agt", "agus", "aug"),
            ("september", "sep", "sept"),
            ("oktober", "october", "okt", "oct"),
            ("november", "nov", "nop", "nopember"),
            ("desember", "december", "des", "dec"),
        ),
        start=1,
    )
    for name in names
}
RELATIVE_DAYS = {
    "hari ini": 0,
    "today": 0,
    "besok": 1,
    "tomorrow": 1,
    "lusa": 2,
    "minggu depan": 7,
    "next week": 7,
}
_DAY_MONTH = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?(?:\s+(\d{4}))?")
_MONTH_DAY = re.compile(r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:\s+(\d{4}))?")


def _day(today: dt.date, year: str | None, month: int, day: int) -> dt.date | None:
    """The date; without a year, this year's or (when already past) next year's."""
    try:
        found = dt.date(int(year) if year else today.year, month, day)
    except ValueError:
        return None
    if year is None and found < today:
        try:
            return found.replace(year=today.year + 1)
        except ValueError:
            return None
    return found


def parse_date(text: str, today: dt.date) -> dt.date | None:
    """A date as people type it: ``20-12-2026``, ``20/12/2026``, ``2026-12-20``,
    ``20-12`` (this year or next), ``20 Desember``, ``20 Des 2026``, ``Dec 20``,
    ``December 20, 2026``, ``besok`` / ``tomorrow``, ``lusa``."""
    text = text.strip()
    for fmt in ("%d-%m-%Y", "%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    m = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})", text)
    if m:
        return _day(today, None, int(m.group(2)), int(m.group(1)))
    words = " ".join(text.lower().replace(",", " ").split())
    if words in RELATIVE_DAYS:
        return today + dt.timedelta(days=RELATIVE_DAYS[words])
    m = _DAY_MONTH.fullmatch(words)
    if m and m.group(2) in MONTHS:
        return _day(today, m.group(3), MONTHS[m.group(2)], int(m.group(1)))
    m = _MONTH_DAY.fullmatch(words)
    if m and m.group(1) in MONTHS:
        return _day(today, m.group(3), MONTHS[m.group(1)], int(m.group(2)))
    return None

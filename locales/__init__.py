"""Translations (Babel/gettext catalogues in this folder) and money/date formatting.

The ``.po`` files are the source of truth. They are compiled in memory with Babel when
first used, so there is no build step to forget and no stale ``.mo`` to ship.
Indonesian (``id``) is the default locale, English (``en``) the second.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from pathlib import Path
from typing import Any

from babel.dates import format_date as _babel_format_date
from babel.dates import format_datetime as _babel_format_datetime
from babel.dates import get_timezone
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LOCALES = ("id", "en")
DEFAULT_LOCALE = "id"
DOMAIN = "messages"
_HERE = Path(__file__).parent


def _(message: str) -> str:
    """Mark a string for extraction without translating it (translated later by ``t``)."""
    return message


class InContext(str):
    """A msgid that carries its gettext context (``msgctxt``): the same Indonesian word
    can mean two things ("Pesan": a message, an order), so the catalogue keeps one
    entry per meaning and ``Translator`` picks the right one."""

    __slots__ = ("context",)
    context: str

    def __new__(cls, context: str, message: str) -> InContext:
        self = super().__new__(cls, message)
        self.context = context
        return self


def pgettext(context: str, message: str) -> str:
    """Mark a string with its context for extraction (``msgctxt``); translated later by
    ``t`` like any ``_`` string, in its context."""
    return InContext(context, message)


def po_path(locale: str) -> Path:
    return _HERE / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(locale: str) -> Translations:
    """The compiled catalogue for a locale (compiled once per process)."""
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    with po_path(locale).open("rb") as fh:
        catalog = read_po(fh, locale=locale, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf, domain=DOMAIN)


class Translator:
    """Translates and formats for one locale: ``tr("Hello {name}", name="Tina")``."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else DEFAULT_LOCALE
        self._t = translations(self.locale)

    def __call__(self, message: str, /, **params: Any) -> str:
        context = getattr(message, "context", None)
        if context is not None:
            return self.pgettext(context, str(message), **params)
        text = self._t.gettext(message)
        return text.format(**params) if params else text

    def pgettext(self, context: str, message: str, /, **params: Any) -> str:
        """``message`` in its ``context`` ("Pesan" the message vs "Pesan" the order)."""
        text = str(self._t.pgettext(context, message))
        return text.format(**params) if params else text

    def ngettext(self, singular: str, plural: str, n: int, /, **params: Any) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text.format(n=n, **params)

    def money(self, amount: int) -> str:
        return format_rupiah(amount)

    def date(self, value: dt.date | None) -> str:
        return format_date(value, self.locale)

    def datetime(self, value: dt.datetime | None) -> str:
        return format_datetime(value, self.locale)


def format_rupiah(amount: int) -> str:
    """Rupiah the Indonesian way: ``Rp 1.250.000`` (integers, no decimals)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp {format_decimal(abs(int(amount)), format='#,##0', locale='id')}"


def format_date(value: dt.date | None, locale: str = DEFAULT_LOCALE) -> str:
    """A date as people write it: ``20 Des 2026`` / ``20 Dec 2026``."""
    if value is None:
        return "-"
    return _babel_format_date(value, format="d MMM yyyy", locale=locale)


JAKARTA = "Asia/Jakarta"


def format_datetime(value: dt.datetime | None, locale: str = DEFAULT_LOCALE) -> str:
    """A moment in Western Indonesian Time: ``30 Nov 2026 14.00 WIB``."""
    if value is None:
        return "-"
    text = _babel_format_datetime(
        value, format="d MMM yyyy HH.mm", tzinfo=get_timezone(JAKARTA), locale=locale
    )
    return f"{text} WIB"

"""The menu's table: the words that work from any state, the main menu's buttons, and
what answers when nothing else does.

A buyer's words (MENU, KATALOG, PESANAN, KERANJANG, BANTUAN, BAHASA, STOP, START, with
their English twins) and a jastiper's (MENU and BANTUAN give them their own menu and
help) run from the menu: whatever the person was in the middle of ends, except where a
handler keeps it. Each is one :class:`Word` row of :data:`WORDS`, which routes it and,
with a line, lists it in the buyer's help (BANTUAN, generated from the rows). The other
entry words belong to their flows' tables: ``JOIN`` / ``GABUNG`` (flows/join.py, whose
line heads the help), ``CARI`` / ``SEARCH`` (flows/shop), a slash command
(flows/jastiper).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from flows import jastiper, join, menu, orders, shop
from flows.base import Ctx, Fallbacks, Handler, Table
from locales import _


@dataclasses.dataclass(frozen=True)
class Word:
    """A word that works from any state.

    Args:
        names: The Indonesian word first, then its English twin(s), upper-cased.
        run: What answers it.
        line: Its line in the buyer's help (a catalogue id); None: not listed. Two words
            may share one line (``STOP / START``), which is then listed once.
        opening: The first word (or two) of a longer text (``TANYA …``), not the whole text.
    """

    names: tuple[str, ...]
    run: Handler
    line: str | None = None
    opening: bool = False


async def show_help(ctx: Ctx) -> None:
    """The buyer's words, one line each (from :data:`WORDS`), and the menu's buttons."""
    ctx.enter(menu.flow)
    body = [
        ctx.t(_("Kata yang bisa kamu kirim:")),
        *(f"• {ctx.t(line)}" for line in HELP_LINES),
        ctx.t(_("Selebihnya cukup ketuk tombol.")),
    ]
    ctx.reply(menu.menu_buttons(ctx, "\n".join(body)))


async def on_help_word(ctx: Ctx) -> None:
    """BANTUAN / HELP: a jastiper's grouped help; anyone else the buyer's."""
    await jastiper.on_help_word(ctx, buyers=show_help)


STOP_START = _("STOP / START — berhenti / mulai lagi menerima info trip")  # one line, two words

WORDS: tuple[Word, ...] = (
    Word(("MENU",), jastiper.on_menu_word, _("MENU — menu utama")),  # a jastiper's own menu
    Word(("KATALOG", "CATALOG", "CATALOGUE"), shop.on_catalogue_word, _("KATALOG — lihat produk")),
    Word(("PESANAN", "ORDERS"), orders.show_orders, _("PESANAN — pesanan kamu")),
    Word(("KERANJANG", "CART"), shop.show_cart),
    Word(("BANTUAN", "HELP"), on_help_word),
    Word(("BAHASA", "LANGUAGE"), menu.ask_language, _("BAHASA — ganti bahasa")),
    Word(("STOP",), menu.on_stop, STOP_START),
    Word(("START",), menu.on_start, STOP_START),
    Word(("TANYA", "ASK"), jastiper.on_question, opening=True),
    Word(("DAFTAR JASTIPER", "REGISTER JASTIPER"), jastiper.on_register, opening=True),
)

# the buyer's help, in table order (a shared line once); JOIN's first
HELP_LINES: tuple[str, ...] = tuple(
    dict.fromkeys([join.HELP_LINE, *(word.line for word in WORDS if word.line)])
)


def _by_name(words: Iterable[Word]) -> dict[str, Handler]:
    """Each name of these words → what answers it; a name written twice is a bug."""
    handlers: dict[str, Handler] = {}
    for word in words:
        for name in word.names:
            if handlers.setdefault(name, word.run) is not word.run:
                raise ValueError(f"{name!r} is in WORDS twice")
    return handlers


TABLE = Table(
    menu.flow,
    words=_by_name(word for word in WORDS if not word.opening),
    openings=_by_name(word for word in WORDS if word.opening),
    taps={
        "menu:catalog": shop.on_catalogue_word,
        "menu:orders": orders.show_orders,
        "menu:help": show_help,
        "menu": menu.show_menu,
        "lang": menu.on_language,
    },
)

FALLBACKS = Fallbacks(
    text=jastiper.not_understood,  # a jastiper is pointed to their menu, a buyer to theirs
    tap=menu.show_menu,  # a button of no flow's (a payload that no longer parses)
    media=jastiper.on_loose_media,  # a buyer's photo or PDF: a payment proof
    other=menu.unexpected_media,  # a sticker, a location: the state is kept
)

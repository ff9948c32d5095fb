"""The menu's table: the words that work from any state, the main menu's buttons, and
what answers when nothing else does.

A buyer's words (MENU, KATALOG, PESANAN, KERANJANG, BANTUAN, BAHASA, STOP, START, with
their English twins) and a jastiper's (MENU and BANTUAN give them their own menu and
help) run from the menu: whatever the person was in the middle of ends, except where a
handler keeps it. The other entry words belong to their flows' tables: ``JOIN`` /
``GABUNG`` (flows/join.py), ``CARI`` / ``SEARCH`` (flows/shop), a slash command
(flows/jastiper).
"""

from __future__ import annotations

from flows import jastiper, menu, orders, shop
from flows.base import Fallbacks, Table

TABLE = Table(
    menu.flow,
    words={
        "MENU": jastiper.on_menu_word,  # a jastiper's own menu; a buyer's otherwise
        "KATALOG": shop.on_catalogue_word,
        "CATALOG": shop.on_catalogue_word,
        "CATALOGUE": shop.on_catalogue_word,
        "PESANAN": orders.show_orders,
        "ORDERS": orders.show_orders,
        "KERANJANG": shop.show_cart,
        "CART": shop.show_cart,
        "BANTUAN": jastiper.on_help_word,
        "HELP": jastiper.on_help_word,
        "BAHASA": menu.ask_language,
        "LANGUAGE": menu.ask_language,
        "STOP": menu.on_stop,
        "START": menu.on_start,
    },
    openings={
        "TANYA": jastiper.on_question,
        "ASK": jastiper.on_question,
        "DAFTAR JASTIPER": jastiper.on_register,
        "REGISTER JASTIPER": jastiper.on_register,
    },
    taps={
        "menu:catalog": shop.on_catalogue_word,
        "menu:orders": orders.show_orders,
        "menu:help": menu.show_help,
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

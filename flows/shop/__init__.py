"""Shopping: catalogue (paged, searchable) → product → quantity → note → cart →
shipping address → checkout → order with reserved stock and payment instructions."""

from __future__ import annotations

from flows.base import Ctx, On, Table, with_tap
from flows.shop.catalogue import (
    add_to_cart,
    ask_qty,
    on_catalogue_word,
    on_held,
    on_note_text,
    on_notify,
    on_qty,
    on_qty_text,
    on_search,
    show_cart,
    show_catalogue,
    show_product,
)
from flows.shop.checkout import (
    ADDRESS_FIELDS,
    checkout,
    confirm,
    on_address_ok,
    on_address_text,
    on_new_address,
    on_old_address_tap,
)
from flows.shop.machine import S, State, flow
from locales import _

SEARCH_WORDS = frozenset({"CARI", "SEARCH"})


async def skip_note(ctx: Ctx) -> None:
    """No note: the pending product goes into the cart as it is."""
    await add_to_cart(ctx, None)


async def more_products(ctx: Ctx) -> None:
    """Back to the catalogue page the buyer was on."""
    await show_catalogue(ctx, ctx.data.get("page", 0))


async def clear_cart(ctx: Ctx) -> None:
    """Empties the cart and shows it."""
    ctx.forget("cart", "pending")
    await show_cart(ctx)


async def on_cancel(ctx: Ctx) -> None:
    """No order after all: the cart is kept."""
    ctx.say(_("Oke, pesanan tidak dibuat. Keranjangmu masih tersimpan."))
    await show_cart(ctx)


TABLE = Table(
    flow,
    openings=dict.fromkeys(SEARCH_WORDS, on_search),
    states={
        S.ASK_QTY: On(text=on_qty_text, taps={"shop:qty": with_tap(on_qty, "arg")}),
        S.ASK_NOTE: On(text=on_note_text, taps={"shop:skipnote": skip_note}),
        S.CART: On(taps={"shop:checkout": checkout}),
        **{state: On(text=on_address_text) for state in ADDRESS_FIELDS},
        S.ADDR_CONFIRM: On(taps={"addr:ok": on_address_ok, "addr:new": on_new_address}),
    },
    taps={
        "cat:page": with_tap(show_catalogue, "arg"),
        "cat": with_tap(show_product, "arg"),
        "addr": on_old_address_tap,
        "shop:order": with_tap(ask_qty, "arg"),
        "shop:notify": with_tap(on_notify, "arg"),
        "shop:held": with_tap(on_held, "arg"),
        "shop:more": more_products,
        "shop:clear": clear_cart,
        "shop:confirm": confirm,
        "shop:cancel": on_cancel,
        "shop": show_cart,  # an old button: show where things stand
    },
)

__all__ = ["TABLE", "State", "flow", "on_catalogue_word", "on_search", "show_cart"]

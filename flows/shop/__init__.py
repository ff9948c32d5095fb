"""Shopping: catalogue (paged, searchable) → product → quantity → note → cart →
shipping address → checkout → order with reserved stock and payment instructions."""

from __future__ import annotations

from flows.base import Ctx, Handlers
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
from flows.shop.checkout import ADDRESS_FIELDS, checkout, confirm, on_address_tap, on_address_text
from flows.shop.machine import S, State, flow
from locales import _
from services.payloads import AddressTap, CatalogTap, ShopTap


async def on_tap(ctx: Ctx) -> None:
    """Routes catalogue, cart and address taps."""
    tap = ctx.incoming.tap
    state = ctx.conversation.state
    if isinstance(tap, CatalogTap):
        if tap.action == "page":
            await show_catalogue(ctx, tap.arg)
        else:
            await show_product(ctx, tap.arg)
    elif isinstance(tap, AddressTap):
        await on_address_tap(ctx)
    elif isinstance(tap, ShopTap):
        if tap.action == "order":
            await ask_qty(ctx, tap.arg)
        elif tap.action == "notify":
            await on_notify(ctx, tap.arg)
        elif tap.action == "held":
            await on_held(ctx, tap.arg)
        elif tap.action == "qty" and state == S.ASK_QTY:
            await on_qty(ctx, tap.arg)
        elif tap.action == "skipnote" and state == S.ASK_NOTE:
            await add_to_cart(ctx, None)
        elif tap.action == "more":
            await show_catalogue(ctx, ctx.data.get("page", 0))
        elif tap.action == "checkout" and state == S.CART:
            await checkout(ctx)
        elif tap.action == "clear":
            ctx.forget("cart", "pending")
            await show_cart(ctx)
        elif tap.action == "confirm":
            await confirm(ctx)
        elif tap.action == "cancel":
            ctx.say(_("Oke, pesanan tidak dibuat. Keranjangmu masih tersimpan."))
            await show_cart(ctx)
        else:
            await show_cart(ctx)  # an old button: show where things stand


HANDLERS = Handlers(
    on_text={
        S.ASK_QTY: on_qty_text,
        S.ASK_NOTE: on_note_text,
        **{state: on_address_text for state in ADDRESS_FIELDS},
    },
    on_tap=on_tap,
)

__all__ = ["HANDLERS", "State", "flow", "on_catalogue_word", "on_search", "show_cart"]

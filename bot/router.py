"""From an incoming message to the handler that answers it.

A text that is the label of a choice of the current interactive message is that tap
(flows/labels.py). Then: global words first (they work from any state), a tap's typed
payload (which names its flow), then the current flow's handler for the current state,
then a short helpful fallback. Never silence, never an error text.
"""

from __future__ import annotations

from flows import jastiper, join, labels, menu, orders, shop
from flows.base import Ctx, Flow, Handler, Handlers, Kind
from services import qris, statements
from services.payloads import (
    AddressTap,
    BroadcastTap,
    CatalogTap,
    JastiperTap,
    JoinTap,
    LanguageTap,
    MenuTap,
    OrderTap,
    ProofTap,
    ShopTap,
)

# every conversation: its machine and which handler answers what in which state
FLOWS: dict[str, tuple[Flow, Handlers]] = {
    menu.flow.name: (menu.flow, menu.HANDLERS),
    join.flow.name: (join.flow, join.HANDLERS),
    shop.flow.name: (shop.flow, shop.HANDLERS),
    orders.flow.name: (orders.flow, orders.HANDLERS),
    jastiper.flow.name: (jastiper.flow, jastiper.HANDLERS),
}

GLOBAL_WORDS: dict[str, Handler] = {
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
}

SEARCH_WORDS = frozenset({"CARI", "SEARCH"})

TAP_FLOWS: dict[type, Flow] = {
    MenuTap: menu.flow,
    LanguageTap: menu.flow,
    JoinTap: join.flow,
    CatalogTap: shop.flow,
    ShopTap: shop.flow,
    AddressTap: shop.flow,
    OrderTap: orders.flow,
    JastiperTap: jastiper.flow,
}
MENU_TAPS: dict[str, Handler] = {
    "catalog": shop.on_catalogue_word,
    "orders": orders.show_orders,
}


def resolve(ctx: Ctx) -> tuple[Flow, Handler]:
    """The flow and handler for this update."""
    inc = ctx.incoming
    current, handlers = FLOWS.get(ctx.conversation.flow, FLOWS[menu.flow.name])
    if inc.kind is Kind.TEXT:
        text = inc.text.strip()
        if join.is_join(text):
            return join.flow, join.start
        if inc.first_word in ("TANYA", "ASK"):
            return menu.flow, jastiper.on_question
        if " ".join(inc.words[:2]).upper() in ("DAFTAR JASTIPER", "REGISTER JASTIPER"):
            return menu.flow, jastiper.on_register
        if text.startswith("/"):
            return jastiper.flow, jastiper.on_command  # buyers get "not understood" there
        word = text.upper()
        if word in GLOBAL_WORDS:
            return menu.flow, GLOBAL_WORDS[word]
        if inc.first_word in SEARCH_WORDS:
            return shop.flow, shop.on_search
        handler = handlers.on_text.get(ctx.conversation.state)
        if handler is not None:
            return current, handler
        return menu.flow, jastiper.not_understood
    if inc.kind is Kind.TAP:
        if isinstance(inc.tap, MenuTap) and inc.tap.action in MENU_TAPS:
            return menu.flow, MENU_TAPS[inc.tap.action]
        if isinstance(inc.tap, ProofTap):
            return orders.flow, orders.on_review
        if isinstance(inc.tap, BroadcastTap):
            return jastiper.flow, jastiper.on_broadcast_tap
        if inc.tap is not None:
            flow = TAP_FLOWS.get(type(inc.tap))
            if flow is not None:
                tap_handler = FLOWS[flow.name][1].on_tap
                if tap_handler is not None:
                    return flow, tap_handler
        return menu.flow, menu.show_menu
    if inc.kind in (Kind.IMAGE, Kind.DOCUMENT) and statements.is_statement_caption(inc.caption):
        return jastiper.flow, jastiper.on_statement
    if inc.kind in (Kind.IMAGE, Kind.DOCUMENT) and qris.is_caption(inc.caption):
        return jastiper.flow, jastiper.on_qris_photo
    if inc.kind is Kind.IMAGE and (inc.caption or "").strip().lower().startswith("/refunded"):
        return jastiper.flow, jastiper.on_refund_photo
    if inc.kind is Kind.IMAGE and (inc.caption or "").strip().lower().startswith("/add"):
        return jastiper.flow, jastiper.on_add_photo
    if inc.kind is Kind.IMAGE and (inc.caption or "").strip().lower().startswith("/profile"):
        return jastiper.flow, jastiper.on_profile_photo
    if inc.kind in (Kind.IMAGE, Kind.DOCUMENT):
        handler = handlers.on_media.get(ctx.conversation.state)
        if handler is not None:
            return current, handler
        # a buyer's photo or PDF: a payment proof; a jastiper's: asked or explained
        return current, jastiper.on_loose_media
    return current, menu.unexpected_media


async def route(ctx: Ctx) -> None:
    """Answer one update; a button's label typed is the tap (flows/labels.py)."""
    tapped = await labels.typed_tap(ctx)
    if tapped is not None:
        ctx.incoming = tapped
    flow, handler = resolve(ctx)
    await flow.run(ctx, handler)
    labels.remember(ctx)

"""From an incoming message to the handler that answers it.

Order: global words first (they work from any state), then a tap's typed payload
(which names its flow), then the current flow's handler for the current state, then a
short helpful fallback. Never silence, never an error text.
"""

from __future__ import annotations

from flows import join, menu
from flows.base import Ctx, Flow, Handler, Kind
from flows.payloads import JoinTap, LanguageTap, MenuTap

FLOWS: dict[str, Flow] = {f.name: f for f in (menu.flow, join.flow)}

GLOBAL_WORDS: dict[str, Handler] = {
    "MENU": menu.show_menu,
    "KATALOG": menu.show_catalogue,
    "CATALOG": menu.show_catalogue,
    "CATALOGUE": menu.show_catalogue,
    "PESANAN": menu.show_orders,
    "ORDERS": menu.show_orders,
    "BANTUAN": menu.show_help,
    "HELP": menu.show_help,
    "BAHASA": menu.ask_language,
    "LANGUAGE": menu.ask_language,
    "STOP": menu.on_stop,
    "START": menu.on_start,
}

TAP_FLOWS: dict[type, Flow] = {
    MenuTap: menu.flow,
    LanguageTap: menu.flow,
    JoinTap: join.flow,
}


def resolve(ctx: Ctx) -> tuple[Flow, Handler]:
    """The flow and handler for this update."""
    inc = ctx.incoming
    current = FLOWS.get(ctx.conversation.flow, menu.flow)
    if inc.kind is Kind.TEXT:
        text = inc.text.strip()
        if join.is_join(text):
            return join.flow, join.start
        word = text.upper()
        if word in GLOBAL_WORDS:
            return menu.flow, GLOBAL_WORDS[word]
        handler = current.on_text.get(ctx.conversation.state)
        if handler is not None:
            return current, handler
        return menu.flow, menu.not_understood
    if inc.kind is Kind.TAP:
        if inc.tap is not None:
            flow = TAP_FLOWS.get(type(inc.tap))
            if flow is not None and flow.on_tap is not None:
                return flow, flow.on_tap
        return menu.flow, menu.show_menu
    if inc.kind in (Kind.IMAGE, Kind.DOCUMENT):
        handler = current.on_media.get(ctx.conversation.state)
        if handler is not None:
            return current, handler
        return current, menu.unexpected_media
    return current, menu.unexpected_media


async def route(ctx: Ctx) -> None:
    flow, handler = resolve(ctx)
    await flow.run(ctx, handler)

"""The shop flow's states and transitions, and what its steps share: the trip being
shopped, the cart kept in the conversation (so it survives restarts and any API
instance can continue it) and how its lines read."""

from __future__ import annotations

import enum
from typing import Any

from flows import menu
from flows.base import Ctx, Flow
from services import products
from services.orders import Line
from storage.models import Trip


class State(enum.StrEnum):
    BROWSING = "browsing"
    ASK_QTY = "ask_qty"
    ASK_NOTE = "ask_note"
    CART = "cart"
    ADDR_RECIPIENT = "addr_recipient"
    ADDR_PHONE = "addr_phone"
    ADDR_STREET = "addr_street"
    ADDR_CITY = "addr_city"
    ADDR_POSTAL = "addr_postal"
    ADDR_CONFIRM = "addr_confirm"
    CONFIRM = "confirm"


S = State
# ``ctx.enter(flow)`` lands in BROWSING: the catalogue, a product's quantity and the cart
# are all reached from there; the address steps follow one another
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "browse", "source": S.BROWSING, "dest": S.BROWSING},
    {"trigger": "ask_qty", "source": S.BROWSING, "dest": S.ASK_QTY},
    {"trigger": "ask_note", "source": S.ASK_QTY, "dest": S.ASK_NOTE},
    {"trigger": "to_cart", "source": S.BROWSING, "dest": S.CART},
    {"trigger": "ask_recipient", "source": [S.CART, S.ADDR_CONFIRM], "dest": S.ADDR_RECIPIENT},
    {"trigger": "ask_phone", "source": S.ADDR_RECIPIENT, "dest": S.ADDR_PHONE},
    {"trigger": "ask_street", "source": S.ADDR_PHONE, "dest": S.ADDR_STREET},
    {"trigger": "ask_city", "source": S.ADDR_STREET, "dest": S.ADDR_CITY},
    {"trigger": "ask_postal", "source": S.ADDR_CITY, "dest": S.ADDR_POSTAL},
    {"trigger": "confirm_address", "source": [S.ADDR_POSTAL, S.CART], "dest": S.ADDR_CONFIRM},
    {"trigger": "review", "source": S.ADDR_CONFIRM, "dest": S.CONFIRM},
]
flow = Flow("shop", State, TRANSITIONS, State.BROWSING)


async def shop_trip(ctx: Ctx) -> Trip | None:
    """The trip being shopped; shows the menu (how to join) when there is none."""
    trip = await menu.current_trip(ctx)
    if trip is None:
        await menu.show_menu(ctx)
    return trip


def cart(ctx: Ctx) -> list[dict[str, Any]]:
    return list(ctx.data.get("cart", []))


async def lines(ctx: Ctx) -> list[Line]:
    """The cart's lines for the current trip (a product of another trip never slips in)."""
    trip = await menu.current_trip(ctx)
    out = []
    for item in cart(ctx):
        product = await products.get(ctx.session, item["p"])
        if product is not None and not product.hidden and trip and product.trip_id == trip.id:
            out.append(Line(product, int(item["q"]), item.get("n")))
    return out


def items_text(ctx: Ctx, cart_lines: list[Line]) -> str:
    out = []
    for line in cart_lines:
        amount = ctx.t.money(line.product.price * line.quantity)
        row = f"• {line.quantity}× {line.product.name} — {amount}"
        if line.note:
            row += f"\n   _{line.note}_"
        out.append(row)
    return "\n".join(out)

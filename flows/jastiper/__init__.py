"""Jastiper commands: slash words from a user the system knows as an approved jastiper.

A buyer who types them gets the ordinary "I don't understand" answer and nothing
happens. Every action that changes something is written to the audit log by the
service it calls. The commands live by family: trips (and the ``/trip new`` wizard),
products (and the product wizard), orders and money, broadcasts, questions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from flows import menu
from flows.base import Ctx, Handler, Handlers
from flows.jastiper import (
    broadcasts,
    home,
    money,
    orders,
    products,
    profile,
    qris,
    questions,
    trips,
    web,
)
from flows.jastiper import help as jhelp
from flows.jastiper.machine import (
    WIZARD_KEYS,
    S,
    State,
    approved_or_answered,
    flow,
    jastipers_only,
    own_trip,
)
from locales import _
from services.payloads import JastiperTap
from storage.models import Jastiper

Command = Callable[[Ctx, Jastiper, list[str]], Awaitable[None]]


async def cmd_help(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """The commands in five groups, each group's examples one tap away."""
    jhelp.show_help(ctx)


async def cmd_cancel(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Leaves any wizard."""
    ctx.forget(*WIZARD_KEYS)
    ctx.enter(flow)
    ctx.say(_("Oke, dibatalkan."))


COMMANDS: dict[str, Command] = {
    "/help": cmd_help,
    "/bantuan": cmd_help,
    "/cancel": cmd_cancel,
    "/batal": cmd_cancel,
    "/trip": trips.cmd_trip,
    "/trips": trips.cmd_trips,
    "/close": trips.cmd_close,
    "/open": trips.cmd_open,
    "/summary": trips.cmd_summary,
    "/add": products.cmd_add,
    "/products": products.cmd_products,
    "/stock": products.cmd_stock,
    "/price": products.cmd_price,
    "/hide": products.cmd_hide,
    "/orders": orders.cmd_orders,
    "/order": orders.cmd_order,
    "/paid": orders.cmd_paid,
    "/bought": orders.cmd_bought,
    "/ship": orders.cmd_ship,
    "/done": orders.cmd_done,
    "/balance": orders.cmd_balance,
    "/recap": orders.cmd_recap,
    "/ongkir": money.cmd_ongkir,
    "/shipping": money.cmd_ongkir,
    "/refund": money.cmd_refund,
    "/refunded": money.cmd_refunded,
    "/refunds": money.cmd_refunds,
    "/mutasi": money.cmd_mutasi,
    "/qris": qris.cmd_qris,
    "/statement": money.cmd_mutasi,
    "/reply": questions.cmd_reply,
    "/broadcast": broadcasts.cmd_broadcast,
    "/web": web.cmd_web,
    "/profile": profile.cmd_profile,
}


@jastipers_only
async def on_command(ctx: Ctx, jastiper: Jastiper) -> None:
    """Routes a slash command (a buyer who types one is not understood)."""
    words = ctx.incoming.text.split()
    command = COMMANDS.get(words[0].lower())
    if command is None:
        ctx.say(
            _("Perintah {command} tidak dikenal. Ketik /help untuk daftar perintah."),
            command=words[0].lower()[:30],
        )
        return
    await command(ctx, jastiper, words[1:])


@jastipers_only
async def on_tap(ctx: Ctx, jastiper: Jastiper) -> None:
    """Wizard buttons: payment type, no fee, saved bank account, unlimited stock, and
    which trip a product goes to."""
    tap = ctx.incoming.tap
    assert isinstance(tap, JastiperTap)
    state = ctx.conversation.state
    if tap.action == "pay" and state == S.T_PAYMENT:
        await trips.on_payment(ctx, tap.value)
    elif tap.action == "fee" and state == S.T_FEE:
        await trips.on_no_fee(ctx)
    elif tap.action == "bank" and state == S.T_BANK and jastiper.bank_account_number:
        await trips.create_trip(ctx, None)
    elif tap.action == "stock" and state == S.P_STOCK:
        await products.finish_product_wizard(ctx, None)
    elif tap.action == "qris":
        await qris.on_confirm(ctx, jastiper, tap.value)
    elif tap.action == "addto" and ctx.data.get("pending_product"):
        await products.on_trip_chosen(ctx, jastiper, tap.value)
    elif tap.action == "late":
        await money.on_late_tap(ctx, jastiper, tap.value)
    elif tap.action == "help":
        jhelp.show_group(ctx, tap.value)
    elif tap.action == "stmt":
        await home.on_statement_tap(ctx, jastiper, tap.value)
    elif tap.action == "orders":
        await orders.on_orders_page(ctx, jastiper, tap.value)
    elif tap.action == "products":
        await products.on_products_page(ctx, jastiper, tap.value)
    elif tap.action == "trips":
        await trips.on_trips_page(ctx, jastiper, tap.value)
    elif tap.action in ("trip", "cmd"):
        await home.on_menu_tap(ctx, jastiper, tap.action, tap.value)
    else:
        ctx.say(_("Tombol itu sudah tidak berlaku. Ketik /help."))


def _jastipers_only(handler: Handler) -> Handler:
    """A wizard step answers only an approved jastiper (anyone else gets the menu)."""

    async def guarded(ctx: Ctx) -> None:
        if await approved_or_answered(ctx, otherwise=menu.show_menu) is not None:
            await handler(ctx)

    guarded.__doc__ = handler.__doc__
    return guarded


WIZARD_STATES = [s for s in State if s is not S.IDLE]
HANDLERS = Handlers(
    on_text={
        **{state: home.on_wizard_text for state in WIZARD_STATES},
        **{
            state: _jastipers_only(handler)
            for state, handler in {**trips.WIZARD_TEXT, **products.WIZARD_TEXT}.items()
        },
    },
    on_media={
        **{state: home.on_wizard_media for state in WIZARD_STATES},
        S.P_PHOTO: products.on_product_photo,
    },
    on_tap=on_tap,
)
on_menu_word = home.on_menu_word
on_help_word = home.on_help_word
on_loose_media = home.on_loose_media
not_understood = home.not_understood
on_add_photo = products.on_add_photo
on_profile_photo = profile.on_profile_photo
on_statement = money.on_statement
on_qris_photo = qris.on_qris_photo
on_refund_photo = money.on_refund_photo
on_broadcast_tap = broadcasts.on_broadcast_tap
on_question = questions.on_question
on_register = questions.on_register

__all__ = [
    "COMMANDS",
    "HANDLERS",
    "State",
    "flow",
    "not_understood",
    "on_add_photo",
    "on_broadcast_tap",
    "on_command",
    "on_help_word",
    "on_loose_media",
    "on_menu_word",
    "on_qris_photo",
    "on_question",
    "on_refund_photo",
    "on_register",
    "on_statement",
    "own_trip",
]

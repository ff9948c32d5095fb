"""Jastiper commands: slash words from a user the system knows as an approved jastiper.

A buyer who types them gets the ordinary "I don't understand" answer and nothing
happens. Every action that changes something is written to the audit log by the
service it calls. The commands live by family: trips (and the ``/trip new`` wizard),
products (and the product wizard), orders and money, broadcasts, questions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from flows import menu
from flows.base import Ctx, Handler, Kind, On, Table, ignore
from flows.jastiper import (
    broadcasts,
    commands,
    home,
    money,
    orders,
    products,
    profile,
    qris,
    questions,
    trips,
)
from flows.jastiper.commands import COMMANDS
from flows.jastiper.machine import (
    S,
    State,
    approved_or_answered,
    flow,
    jastipers_only,
    own_trip,
)
from locales import _
from services import statements
from services.payloads import JastiperTap
from storage.models import Jastiper


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


TapValue = Callable[[Ctx, Jastiper, str], Awaitable[None]]


def _tap(handler: TapValue) -> Handler:
    """A jastiper's button as a table entry: an approved jastiper only, given the
    button's value."""

    async def tapped(ctx: Ctx, jastiper: Jastiper) -> None:
        tap = ctx.incoming.tap
        assert isinstance(tap, JastiperTap)
        await handler(ctx, jastiper, tap.value)

    tapped.__doc__ = handler.__doc__
    return jastipers_only(tapped)


def say_expired(ctx: Ctx) -> None:
    ctx.say(_("Tombol itu sudah tidak berlaku. Ketik /help."))


@_tap
async def on_expired(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """A button whose step is over, or whose action is gone."""
    say_expired(ctx)


@_tap
async def on_payment(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """The trip wizard's Lunas / DP buttons."""
    await trips.on_payment(ctx, value)


@_tap
async def on_no_fee(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """The trip wizard's *Tanpa fee* button."""
    await trips.on_no_fee(ctx)


@_tap
async def on_saved_bank(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """The trip wizard's saved bank account button: the trip is opened with it."""
    if not jastiper.bank_account_number:
        say_expired(ctx)
        return
    await trips.create_trip(ctx, None)


@_tap
async def on_unlimited_stock(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """The product wizard's *Tanpa batas* button: the product is added."""
    await products.finish_product_wizard(ctx, None)


@_tap
async def on_add_to(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """Which trip a waiting product goes to."""
    if not ctx.data.get("pending_product"):
        say_expired(ctx)
        return
    await products.on_trip_chosen(ctx, jastiper, value)


@_tap
async def on_help_group(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """One group of /help, with examples."""
    commands.show_group(ctx, value)


def _jastipers_only(handler: Handler) -> Handler:
    """A wizard step answers only an approved jastiper (anyone else gets the menu)."""

    async def guarded(ctx: Ctx) -> None:
        if await approved_or_answered(ctx, otherwise=menu.show_menu) is not None:
            await handler(ctx)

    guarded.__doc__ = handler.__doc__
    return guarded


WIZARD_STATES = [s for s in State if s is not S.IDLE]
WIZARD_TEXT = {
    state: _jastipers_only(handler)
    for state, handler in {**trips.WIZARD_TEXT, **products.WIZARD_TEXT}.items()
}
# a button that means something in one wizard step only (elsewhere: it has expired)
STEP_TAPS: dict[str, dict[str, Handler]] = {
    S.T_PAYMENT: {"jt:pay": on_payment},
    S.T_FEE: {"jt:fee": on_no_fee},
    S.T_BANK: {"jt:bank": on_saved_bank},
    S.P_STOCK: {"jt:stock": on_unlimited_stock},
}
# a photo or file whose caption is a command, in any state
FILES = (Kind.IMAGE, Kind.DOCUMENT)
CAPTIONS: dict[tuple[Kind, str], Handler] = {
    **{(kind, word): money.on_statement for kind in FILES for word in statements.COMMANDS},
    **{(kind, "/qris"): qris.on_qris_photo for kind in FILES},
    (Kind.IMAGE, "/refunded"): money.on_refund_photo,
    (Kind.IMAGE, "/add"): products.on_add_photo,
    (Kind.IMAGE, "/profile"): profile.on_profile_photo,
}
TABLE = Table(
    flow,
    openings={"/": on_command},  # a buyer who types one is not understood
    captions=CAPTIONS,
    states={
        state: On(
            text=WIZARD_TEXT.get(state, home.on_wizard_text),
            media=products.on_product_photo if state is S.P_PHOTO else home.on_wizard_media,
            taps=STEP_TAPS.get(state, {}),
        )
        for state in WIZARD_STATES
    },
    taps={
        "jt:qris": _tap(qris.on_confirm),
        "jt:addto": on_add_to,
        "jt:late": _tap(money.on_late_tap),
        "jt:help": on_help_group,
        "jt:stmt": _tap(home.on_statement_tap),
        "jt:orders": _tap(orders.on_orders_page),
        "jt:products": _tap(products.on_products_page),
        "jt:trips": _tap(trips.on_trips_page),
        # the jastiper menu's rows
        "jt:trip": _tap(home.on_trip_row),
        "jt:newtrip": _tap(home.on_new_trip_row),
        "jt:proofs": _tap(home.on_proofs_row),
        "jt:today": _tap(home.on_today_row),
        "jt:cmd": _tap(home.on_old_menu_row),
        "jt": on_expired,
        # the buttons under a broadcast's estimate
        "bc:send": broadcasts.on_send,
        "bc:free": broadcasts.on_send_free,
        "bc:cancel": broadcasts.on_cancel,
        "bc": ignore,
    },
)
on_menu_word = home.on_menu_word
on_help_word = home.on_help_word
on_loose_media = home.on_loose_media
not_understood = home.not_understood
on_question = questions.on_question
on_register = questions.on_register

__all__ = [
    "COMMANDS",
    "TABLE",
    "State",
    "flow",
    "not_understood",
    "on_help_word",
    "on_loose_media",
    "on_menu_word",
    "on_question",
    "on_register",
    "own_trip",
]

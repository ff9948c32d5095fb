"""The jastiper flow's states and transitions, and what its commands share: who the
jastiper is, and their trip or order named in a command."""

from __future__ import annotations

import enum
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from flows import menu
from flows.base import Ctx, Flow, Handler
from locales import _
from services import accounts, orders, trips
from storage.models import Jastiper, Order, Trip


class State(enum.StrEnum):
    IDLE = "idle"
    T_TITLE = "t_title"
    T_DEST = "t_dest"
    T_CLOSE = "t_close"
    T_PAYMENT = "t_payment"
    T_DP = "t_dp"
    T_FEE = "t_fee"
    T_BANK = "t_bank"
    P_PHOTO = "p_photo"
    P_NAME = "p_name"
    P_PRICE = "p_price"
    P_STOCK = "p_stock"


S = State
# ``ctx.enter(flow)`` lands in IDLE: /trip new, /add and a bare captioned photo start there;
# /cancel leaves any step by entering the flow again (IDLE)
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "ask_title", "source": S.IDLE, "dest": S.T_TITLE},
    {"trigger": "ask_dest", "source": S.T_TITLE, "dest": S.T_DEST},
    {"trigger": "ask_close", "source": S.T_DEST, "dest": S.T_CLOSE},
    {"trigger": "ask_payment", "source": S.T_CLOSE, "dest": S.T_PAYMENT},
    {"trigger": "ask_dp", "source": S.T_PAYMENT, "dest": S.T_DP},
    {"trigger": "ask_fee", "source": [S.T_PAYMENT, S.T_DP], "dest": S.T_FEE},
    {"trigger": "ask_bank", "source": S.T_FEE, "dest": S.T_BANK},
    {"trigger": "ask_photo", "source": S.IDLE, "dest": S.P_PHOTO},
    {"trigger": "ask_product_name", "source": [S.P_PHOTO, S.IDLE], "dest": S.P_NAME},
    {"trigger": "ask_product_price", "source": S.P_NAME, "dest": S.P_PRICE},
    {"trigger": "ask_product_stock", "source": S.P_PRICE, "dest": S.P_STOCK},
    {"trigger": "finish", "source": [S.T_BANK, S.P_STOCK], "dest": S.IDLE},
]
flow = Flow("jastiper", State, TRANSITIONS, State.IDLE)
# what a wizard keeps in the conversation, forgotten by /cancel and MENU
WIZARD_KEYS = ("wizard", "pwiz", "pending_product", "stmt_pending", "add_trip")


async def jastiper_of(ctx: Ctx) -> Jastiper | None:
    """The user's approved jastiper account, or None (then they are a buyer)."""
    return await accounts.approved_jastiper(ctx.session, ctx.user)


async def turned_away(ctx: Ctx) -> bool:
    """A suspended jastiper is told why their command does nothing (True); anyone else
    without an approved account is left to the caller's answer (False)."""
    if await accounts.is_suspended(ctx.session, ctx.user):
        ctx.say(accounts.SUSPENDED_TEXT)
        return True
    return False


async def approved_or_answered(
    ctx: Ctx, otherwise: Handler = menu.not_understood
) -> Jastiper | None:
    """The user's approved jastiper account; else None, with the answer given: a
    suspended jastiper is told why, anyone else gets ``otherwise`` (not understood)."""
    jastiper = await jastiper_of(ctx)
    if jastiper is None and not await turned_away(ctx):
        await otherwise(ctx)
    return jastiper


def jastipers_only(handler: Callable[[Ctx, Jastiper], Awaitable[None]]) -> Handler:
    """A handler that answers only an approved jastiper, given their account (see
    :func:`approved_or_answered` for everyone else)."""

    @functools.wraps(handler)
    async def guarded(ctx: Ctx) -> None:
        jastiper = await approved_or_answered(ctx)
        if jastiper is not None:
            await handler(ctx, jastiper)

    return guarded


async def own_trip(ctx: Ctx, jastiper: Jastiper, code: str | None) -> Trip:
    """The jastiper's trip with that code (a service's refusal otherwise: no code, none
    of theirs; the dispatcher says so)."""
    return await trips.owned_trip(ctx.session, jastiper, code)


async def own_order(ctx: Ctx, jastiper: Jastiper, code: str | None) -> Order | None:
    """An order of one of the jastiper's trips; says so when there is none."""
    if not code:
        ctx.say(_("Sebutkan kode pesanannya, contoh: /order JP-ABCDE"))
        return None
    order = await orders.jastiper_order(ctx.session, jastiper.id, code)
    if order is None:
        ctx.say(_("Pesanan {code} tidak ditemukan di trip-mu."), code=code.upper()[:20])
        return None
    return order

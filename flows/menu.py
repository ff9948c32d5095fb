"""The main menu and the global words: MENU, BAHASA/LANGUAGE, STOP, START (flows/words.py
says which word and which tap leads where, and writes the buyer's help from its table).

Global words work from any state. MENU and BANTUAN also end whatever the user was in
the middle of; BAHASA, STOP and START leave the current state alone.
"""

from __future__ import annotations

import enum
from typing import Any

from flows.base import Ctx, Flow
from locales import _
from services import people, replies, trips
from services.payloads import JoinTap, LanguageTap, MenuTap
from storage import trace
from storage.models import Trip


class State(enum.StrEnum):
    IDLE = "idle"


TRANSITIONS: list[dict[str, str]] = []  # one state: the menu is a place, not a path
flow = Flow("menu", State, TRANSITIONS, State.IDLE)


async def current_trip(ctx: Ctx) -> Trip | None:
    """The trip the user is working with: the one remembered, else the latest joined."""
    code = ctx.data.get("trip")
    key = ("current_trip", code)
    if key in ctx.memo:
        return ctx.memo[key]  # type: ignore[no-any-return]
    trip = await trips.by_code(ctx.session, code) if code else None
    if code and trip is None:
        ctx.forget("trip")
    if trip is None:
        joined = await trips.joined_trips(ctx.session, ctx.user)
        trip = joined[0] if joined else None
    ctx.memo[("current_trip", ctx.data.get("trip"))] = trip
    if trip is not None:
        trace.bind(tripId=trip.id)  # the lines and replies that follow name it
    return trip


def menu_buttons(ctx: Ctx, body: str) -> replies.Payload:
    return replies.buttons(
        body,
        [
            (ctx.t(_("Katalog")), MenuTap("catalog")),
            (ctx.t(_("Pesanan saya")), MenuTap("orders")),
            (ctx.t(_("Bantuan")), MenuTap("help")),
        ],
    )


async def show_menu(ctx: Ctx) -> None:
    """Shows the main menu of the user's current trip (or how to join one)."""
    ctx.enter(flow)
    trip = await current_trip(ctx)
    if trip is None:
        ctx.say(
            _(
                "Kamu belum bergabung ke trip jastip mana pun. Kirim JOIN diikuti kode "
                "trip dari jastiper-mu, contoh: JOIN DEMO"
            )
        )
        return
    body = ctx.t(_("Menu *{title}*. Mau lihat apa?"), title=trip.title)
    others = [t for t in await trips.joined_trips(ctx.session, ctx.user) if t.id != trip.id]
    if not others:
        ctx.reply(menu_buttons(ctx, body))
        return
    # a buyer in several trips picks which one the menu is about
    rows: list[tuple[str, str | None, Any]] = [
        (ctx.t(_("Katalog")), None, MenuTap("catalog")),
        (ctx.t(_("Pesanan saya")), None, MenuTap("orders")),
        (ctx.t(_("Bantuan")), None, MenuTap("help")),
    ]
    rows += [
        (
            other.title,
            ctx.t(_("Pindah ke trip ini ({code})"), code=other.code),
            JoinTap("switch", other.code),
        )
        for other in others[:7]
    ]
    ctx.reply(replies.list_rows(body, ctx.t(_("Pilih")), rows))


async def ask_language(ctx: Ctx) -> None:
    """Offers the two languages as buttons."""
    ctx.reply(
        replies.buttons(
            ctx.t(_("Pilih bahasa / Choose a language:")),
            [("Bahasa Indonesia", LanguageTap("id")), ("English", LanguageTap("en"))],
        )
    )


async def on_language(ctx: Ctx) -> None:
    """Stores the chosen language and confirms in it."""
    tap = ctx.incoming.tap
    assert isinstance(tap, LanguageTap)
    ctx.set_locale("en" if tap.locale == "en" else "id")
    ctx.say(_("Oke, aku akan pakai Bahasa Indonesia."))


async def on_stop(ctx: Ctx) -> None:
    """Unsubscribes the user from broadcasts; order updates still come."""
    people.opt_out(ctx.user, ctx.now)
    ctx.say(
        _(
            "Kamu tidak akan menerima info dan promo trip lagi. Kabar tentang pesananmu "
            "tetap kami kirim. Kirim START kapan saja untuk berlangganan lagi."
        )
    )


async def on_start(ctx: Ctx) -> None:
    """Resubscribes the user to broadcasts."""
    people.opt_in(ctx.user)
    ctx.say(_("Siap! Kamu akan menerima info trip lagi. Kirim STOP untuk berhenti."))


async def not_understood(ctx: Ctx) -> None:
    """A short helpful answer for anything the bot does not understand."""
    ctx.reply(
        menu_buttons(
            ctx,
            ctx.t(
                _(
                    "Maaf, aku belum paham. Ketuk salah satu tombol di bawah, atau kirim "
                    "MENU untuk menu utama dan BANTUAN untuk daftar perintah."
                )
            ),
        )
    )


async def unexpected_media(ctx: Ctx) -> None:
    """Politely answers media the current step does not expect; the state is kept."""
    ctx.say(
        _(
            "Terima kasih! Tapi aku tidak bisa memproses kiriman seperti ini di langkah "
            "ini. Ketik MENU kalau butuh menu utama."
        )
    )

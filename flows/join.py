"""Joining a trip: ``JOIN <CODE>`` / ``GABUNG <CODE>``, then a name and consent.

Entry: the text a ``wa.me`` link pre-fills. The first reply always names the trip;
a buyer we do not know yet is asked for a name (their WhatsApp profile name offered as
a one-tap default) and for consent to trip updates, then lands on the trip menu.
``JOIN <CODE> <n>`` (the "Order on WhatsApp" button of a product's page) then opens
product ``n`` of the catalogue.
"""

from __future__ import annotations

import enum

from flows import menu
from flows.base import Ctx, Flow, On, Table
from locales import _
from services import people, products, replies, trips
from services.errors import DomainError
from services.payloads import JoinTap
from storage.models import Participant, Trip

JOIN_WORDS = frozenset({"JOIN", "GABUNG"})
HELP_LINE = _("JOIN <kode> — gabung ke trip jastip")  # first in the buyer's help (flows/words.py)


class State(enum.StrEnum):
    IDLE = "idle"
    ASK_NAME = "ask_name"
    ASK_CONSENT = "ask_consent"


TRANSITIONS = [
    {
        "trigger": "ask_name",
        "source": [State.IDLE, State.ASK_NAME, State.ASK_CONSENT],
        "dest": State.ASK_NAME,
    },
    {
        "trigger": "ask_consent",
        "source": [State.IDLE, State.ASK_NAME, State.ASK_CONSENT],
        "dest": State.ASK_CONSENT,
    },
    {
        "trigger": "finish",
        "source": [State.IDLE, State.ASK_NAME, State.ASK_CONSENT],
        "dest": State.IDLE,
    },
]
flow = Flow("join", State, TRANSITIONS, State.IDLE)


async def start(ctx: Ctx) -> None:
    """Joins the trip named in ``JOIN <CODE>`` and greets the buyer with it."""
    words = ctx.incoming.words
    if len(words) < 2:
        ctx.say(_("Kirim JOIN diikuti kode trip dari jastiper-mu, contoh: JOIN DEMO"))
        return
    code = words[1].strip().upper().strip("*_.,!")
    wanted = words[2].lstrip("#") if len(words) > 2 else ""
    trip = await trips.find_open(ctx.session, code)
    participant = await trips.join(ctx.session, trip, ctx.user)
    ctx.remember(trip=trip.code)
    if wanted.isdigit() and len(wanted) <= 6:
        ctx.remember(want=int(wanted))  # opened once joining is done
    else:
        ctx.forget("want")
    welcome = ctx.t(
        _(
            "Selamat datang di *{title}*! ✈️\n"
            "Tujuan: {destination}\n"
            "Pesanan ditutup: {closes}\n"
            "Jastiper: {jastiper}"
        ),
        title=trip.title,
        destination=trip.destination,
        closes=ctx.t.date(trip.closes_on),
        jastiper=trip.jastiper.name,
    )
    await _next_step(ctx, trip, participant, welcome)


async def _next_step(ctx: Ctx, trip: Trip, participant: Participant, lead: str) -> None:
    if not ctx.user.display_name:
        ask_name(ctx, trip, lead)
    elif participant.consent_at is None and participant.unsubscribed_at is None:
        ask_consent(ctx, trip, lead)
    else:
        finish(ctx, trip, lead)
        await open_wanted(ctx, trip)


async def open_wanted(ctx: Ctx, trip: Trip) -> None:
    """The product the buyer came for (``JOIN <CODE> <n>``), once they are in."""
    position = ctx.data.get("want")
    if not position:
        return
    ctx.forget("want")
    from flows.shop.catalogue import show_product  # the shop builds on the menu: no cycle

    try:
        product = await products.numbered(ctx.session, trip, str(position))
    except DomainError:
        product = None
    await show_product(ctx, product.id if product else 0)


def ask_name(ctx: Ctx, trip: Trip, lead: str) -> None:
    """Asks for the buyer's name, offering the WhatsApp profile name as one tap."""
    body = lead + "\n\n" + ctx.t(_("Boleh tahu namamu? Ketik namamu di sini."))
    profile = (ctx.user.profile_name or "").strip()
    if profile:
        body = (
            lead
            + "\n\n"
            + ctx.t(
                _("Boleh tahu namamu? Ketuk tombol di bawah atau ketik nama lain."),
            )
        )
        use_profile = ctx.t(_("Pakai {name}"), name=profile)
        ctx.reply(replies.buttons(body, [(use_profile, JoinTap("name", trip.code))]))
    else:
        ctx.reply(replies.text(body))
    ctx.fire("ask_name")


def ask_consent(ctx: Ctx, trip: Trip, lead: str = "") -> None:
    """Asks whether the buyer wants trip updates (needed before any broadcast)."""
    body = ctx.t(
        _(
            "Mau dapat kabar dari trip *{title}* (produk baru, pengingat, info "
            "pengiriman)? Kamu bisa berhenti kapan saja dengan STOP."
        ),
        title=trip.title,
    )
    if lead:
        body = lead + "\n\n" + body
    ctx.reply(
        replies.buttons(
            body,
            [
                (ctx.t(_("Ya, kabari aku")), JoinTap("consent_yes", trip.code)),
                (ctx.t(_("Tidak usah")), JoinTap("consent_no", trip.code)),
            ],
        )
    )
    ctx.fire("ask_consent")


def finish(ctx: Ctx, trip: Trip, lead: str = "") -> None:
    """Shows the trip menu: joining is done."""
    body = ctx.t(_("Kamu sudah terdaftar di *{title}*. Mau lihat apa?"), title=trip.title)
    if lead:
        body = lead + "\n\n" + body
    ctx.reply(menu.menu_buttons(ctx, body))
    ctx.fire("finish")
    ctx.enter(menu.flow)


async def on_name(ctx: Ctx) -> None:
    """Stores the typed name and asks for consent."""
    name = people.check_name(ctx.incoming.text)
    ctx.user.display_name = name
    trip = await _remembered_trip(ctx)
    if trip is None:
        await menu.show_menu(ctx)
        return
    ctx.say(_("Salam kenal, {name}!"), name=name)
    participant = await trips.join(ctx.session, trip, ctx.user)
    await _next_step(ctx, trip, participant, "")


async def _tapped_trip(ctx: Ctx) -> tuple[Trip, Participant] | None:
    """The trip a join button names, joined (the menu instead when it is gone)."""
    tap = ctx.incoming.tap
    assert isinstance(tap, JoinTap)
    trip = await trips.by_code(ctx.session, tap.code)
    if trip is None:
        await menu.show_menu(ctx)
        return None
    participant = await trips.join(ctx.session, trip, ctx.user)
    ctx.remember(trip=trip.code)
    return trip, participant


async def on_switch(ctx: Ctx) -> None:
    """Makes another joined trip the current one and shows its menu."""
    if await _tapped_trip(ctx) is not None:
        ctx.forget("cart", "search", "page")  # a cart belongs to one trip
        await menu.show_menu(ctx)


async def on_use_profile_name(ctx: Ctx) -> None:
    """Takes the WhatsApp profile name as the buyer's name and asks for consent."""
    joined = await _tapped_trip(ctx)
    if joined is not None:
        ctx.user.display_name = people.name_from_profile(ctx.user.profile_name)
        await _next_step(ctx, *joined, "")


async def on_consent_yes(ctx: Ctx) -> None:
    """Stores the consent to trip updates and shows the trip menu."""
    joined = await _tapped_trip(ctx)
    if joined is not None:
        trip, participant = joined
        trips.set_consent(participant, True, ctx.now)
        finish(ctx, trip, ctx.t(_("Sip, kamu akan dapat kabar dari trip ini.")))
        await open_wanted(ctx, trip)


async def on_consent_no(ctx: Ctx) -> None:
    """Stores the refusal of trip updates and shows the trip menu."""
    joined = await _tapped_trip(ctx)
    if joined is not None:
        trip, participant = joined
        trips.set_consent(participant, False, ctx.now)
        finish(ctx, trip, ctx.t(_("Oke, kami hanya akan mengabari soal pesananmu.")))
        await open_wanted(ctx, trip)


async def on_old_tap(ctx: Ctx) -> None:
    """A join button whose action is gone: the trip joined, its menu shown."""
    if await _tapped_trip(ctx) is not None:
        await menu.show_menu(ctx)


async def _remembered_trip(ctx: Ctx) -> Trip | None:
    code = ctx.data.get("trip")
    return await trips.by_code(ctx.session, code) if code else None


TABLE = Table(
    flow,
    openings=dict.fromkeys(JOIN_WORDS, start),
    states={State.ASK_NAME: On(text=on_name)},
    taps={
        "join:switch": on_switch,
        "join:name": on_use_profile_name,
        "join:consent_yes": on_consent_yes,
        "join:consent_no": on_consent_no,
        "join": on_old_tap,
    },
)

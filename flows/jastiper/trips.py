"""A jastiper's trips: the ``/trip new`` wizard, one question per state, and the trip
commands (``/trip``, ``/trips``, ``/close``, ``/open``, ``/summary``)."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from flows import menu
from flows.base import Ctx
from flows.jastiper.machine import S, flow, jastiper_of, own_trip
from locales import _
from services import links, replies, trips
from services.dates import parse_date
from services.payloads import JastiperTap
from services.products import parse_price
from storage.models import Jastiper, PaymentType, Trip, TripStatus

Args = list[str]
DP_PROMPT = _("DP-nya berapa persen? Tulis angka 10 sampai 90, contoh: 50")


def parse_fee(text: str) -> trips.Fee | None:
    """``0``, ``5%`` or an amount per item (``10rb``)."""
    text = text.strip().lower()
    if text in ("0", "-", "tidak", "no", "none"):
        return trips.Fee()
    m = re.fullmatch(r"(\d{1,2})\s*%", text)
    if m:
        return trips.Fee(percent=int(m.group(1)))
    amount = parse_price(text)
    return trips.Fee(per_item=amount) if amount is not None else None


def _wizard(ctx: Ctx) -> dict[str, object]:
    return dict(ctx.data.get("wizard") or {})


def _keep(ctx: Ctx, **values: object) -> None:
    ctx.remember(wizard={**_wizard(ctx), **values})


# --- the wizard: one ask_ per state, one on_ per answer ------------------------------------


async def cmd_trip(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """``/trip new`` starts the wizard; ``/trip CODE`` shows one trip."""
    if args and args[0].lower() in ("new", "baru"):
        ctx.enter(flow)
        ctx.remember(wizard={})
        ask_title(ctx)
        return
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    ctx.remember(jtrip=trip.code)
    ctx.say(await trip_summary(ctx, trip, full=True))


def ask_title(ctx: Ctx) -> None:
    """Asks the new trip's title."""
    ctx.fire("ask_title")
    ctx.say(_("Trip baru! Apa judulnya? (contoh: Jastip Tokyo Desember)"))


async def on_title(ctx: Ctx) -> None:
    """Stores the title and asks the destination."""
    text = " ".join(ctx.incoming.text.split())
    if not 3 <= len(text) <= 100:
        ctx.say(_("Judulnya 3 sampai 100 huruf ya."))
        return
    _keep(ctx, title=text)
    ask_destination(ctx)


def ask_destination(ctx: Ctx) -> None:
    """Asks where the trip goes."""
    ctx.fire("ask_dest")
    ctx.say(_("Tujuannya ke mana? (contoh: Tokyo, Jepang)"))


async def on_destination(ctx: Ctx) -> None:
    """Stores the destination and asks the closing date."""
    text = " ".join(ctx.incoming.text.split())
    if not 2 <= len(text) <= 100:
        ctx.say(_("Tulis kota atau negara tujuannya."))
        return
    _keep(ctx, destination=text)
    ask_closes(ctx)


def ask_closes(ctx: Ctx) -> None:
    """Asks when orders close."""
    ctx.fire("ask_close")
    ctx.say(_("Kapan pesanan ditutup? (contoh: 20 Desember, 20-12-2026 atau besok)"))


async def on_closes(ctx: Ctx) -> None:
    """Stores the closing date (not in the past) and asks how buyers pay."""
    day = parse_date(ctx.incoming.text, ctx.now.date())
    if day is None or day < ctx.now.date():
        ctx.say(
            _(
                "Tanggalnya kurang pas. Tulis seperti 20 Desember, 20-12-2026 atau besok, dan "
                "jangan tanggal lampau."
            )
        )
        return
    _keep(ctx, closes=day.isoformat())
    ask_payment(ctx)


def ask_payment(ctx: Ctx) -> None:
    """Asks full payment up front or a down payment."""
    ctx.fire("ask_payment")
    ctx.reply(
        replies.buttons(
            ctx.t(_("Pembayaran: lunas di depan atau DP?")),
            [
                (ctx.t(_("Lunas")), JastiperTap("pay", "full")),
                (ctx.t(_("DP")), JastiperTap("pay", "dp")),
            ],
        )
    )


async def on_payment(ctx: Ctx, choice: str) -> None:
    """Stores full or DP and asks the DP percentage or the fee."""
    _keep(ctx, payment="dp" if choice == "dp" else "full")
    if choice == "dp":
        ask_dp(ctx)
    else:
        ask_fee(ctx)


def ask_dp(ctx: Ctx) -> None:
    """Asks the down payment in percent."""
    ctx.fire("ask_dp")
    ctx.say(DP_PROMPT)


async def on_dp(ctx: Ctx) -> None:
    """Stores the DP percentage and asks the fee."""
    text = ctx.incoming.text.strip()
    if not re.fullmatch(r"\d{1,2}%?", text) or not 10 <= int(text.rstrip("%")) <= 90:
        ctx.say(DP_PROMPT)
        return
    _keep(ctx, dp=int(text.rstrip("%")))
    ask_fee(ctx)


def ask_fee(ctx: Ctx) -> None:
    """Asks the jastiper's fee per item or in percent."""
    ctx.fire("ask_fee")
    ctx.reply(
        replies.buttons(
            ctx.t(_("Fee jastip per barang (contoh: 10rb) atau persen (contoh: 5%)?")),
            [(ctx.t(_("Tanpa fee")), JastiperTap("fee", "0"))],
        )
    )


async def on_payment_text(ctx: Ctx) -> None:
    """Full or DP in words (the label typed while its buttons are the last ones is the
    tap itself, flows/labels.py; the hint below invites typing them, so they stay
    words here too, for after a proof's buttons arrived in between)."""
    if ctx.typed("lunas", "full", "lunas di depan"):
        await on_payment(ctx, "full")
    elif ctx.typed("dp", "down payment"):
        await on_payment(ctx, "dp")
    else:
        ctx.say(_("Ketuk Lunas atau DP (atau ketik salah satunya). Ketik /cancel untuk batal."))


async def on_fee(ctx: Ctx) -> None:
    """Stores the fee and asks the bank account."""
    fee = parse_fee(ctx.incoming.text)
    if fee is None:
        ctx.say(_("Tulis fee per barang (contoh: 10rb) atau persen (contoh: 5%), atau 0."))
        return
    await _fee_chosen(ctx, fee)


async def _fee_chosen(ctx: Ctx, fee: trips.Fee) -> None:
    _keep(ctx, fee={"per_item": fee.per_item, "percent": fee.percent})
    jastiper = await jastiper_of(ctx)
    if jastiper is None:
        await menu.show_menu(ctx)
        return
    ask_bank(ctx, jastiper)


async def on_no_fee(ctx: Ctx) -> None:
    """The *Tanpa fee* button."""
    await _fee_chosen(ctx, trips.Fee())


def ask_bank(ctx: Ctx, jastiper: Jastiper) -> None:
    """Asks the account buyers transfer to, offering the one used last time."""
    ctx.fire("ask_bank")
    if not jastiper.bank_account_number:
        ctx.say(_("Rekening untuk transfer pembeli? (contoh: BCA 1234567890 a.n. Tina Wijaya)"))
        return
    ctx.reply(
        replies.buttons(
            ctx.t(
                _(
                    "Transfer ke {account} a.n. {holder}? Atau ketik rekening lain "
                    "(contoh: BCA 1234567890 a.n. Tina Wijaya)."
                ),
                account=f"{jastiper.bank_name} {jastiper.bank_account_number}",
                holder=jastiper.bank_account_name or "-",
            ),
            [(ctx.t(_("Pakai rekening ini")), JastiperTap("bank", "saved"))],
        )
    )


async def on_bank(ctx: Ctx) -> None:
    """Stores a typed bank account and opens the trip (*Pakai rekening ini* typed is
    the tap, flows/labels.py)."""
    bank = trips.parse_bank(ctx.incoming.text)
    await create_trip(ctx, bank)


async def create_trip(ctx: Ctx, bank: trips.Bank | None) -> None:
    """Opens the trip from the wizard's answers and sends its links and QR."""
    jastiper = await jastiper_of(ctx)
    if jastiper is None:
        await menu.show_menu(ctx)
        return
    w = ctx.data.get("wizard") or {}
    fee = w.get("fee") or {}
    trip = await trips.create_trip(
        ctx.session,
        jastiper,
        title=w.get("title", "Jastip"),
        destination=w.get("destination", "-"),
        closes_on=dt.date.fromisoformat(w["closes"]) if w.get("closes") else None,
        payment=w.get("payment", PaymentType.FULL.value),
        dp_percent=w.get("dp"),
        fee=trips.Fee(fee.get("per_item", 0), fee.get("percent", 0)),
        bank=bank,
    )
    ctx.forget("wizard")
    ctx.remember(jtrip=trip.code)  # the trip just created: first when /add asks which
    ctx.fire("finish")
    settings = ctx.resources.settings
    link = trips.join_link(settings.wa_business_number, trip.code)
    short = await links.ensure_for_trip(ctx.session, trip)
    ctx.say(
        _(
            "Trip *{title}* dibuka! Kode: *{code}*\n\n"
            "Link gabung WhatsApp: {link}\n"
            "Link pendek (klik dihitung): {short}\n"
            "Halaman trip: {page}\n\n"
            "Tambah produk: kirim foto dengan caption /add nama | harga | stok"
        ),
        title=trip.title,
        code=trip.code,
        link=link,
        short=f"{settings.public_base_url}/s/{short.slug}",
        page=f"{settings.public_base_url}/t/{trip.code}",
    )
    if ctx.resources.media is not None:
        key = f"qr/{trip.code}-{secrets.token_hex(4)}.png"
        await ctx.resources.media.put(key, trips.qr_png(link), "image/png")
        ctx.reply(replies.image(key, ctx.t(_("QR untuk story Instagram: {code}"), code=trip.code)))


# --- trip commands ---------------------------------------------------------------------------


def trip_setup(ctx: Ctx, trip: Trip) -> str:
    """How the trip is set up: payment (full or DP and its percent), fee, account,
    how long buyers have to pay and how often the summary goes out."""
    if trip.payment_type == PaymentType.DP.value:
        payment = ctx.t(_("DP {percent}%"), percent=trip.dp_percent or 0)
    else:
        payment = ctx.t(_("lunas di depan"))
    if trip.fee_percent:
        fee = f"{trip.fee_percent}%"
    elif trip.fee_per_item:
        fee = ctx.t(_("{amount} per barang"), amount=ctx.t.money(trip.fee_per_item))
    else:
        fee = ctx.t(_("tanpa fee"))
    account = (
        f"{trip.bank_name or ''} {trip.bank_account_number} a.n. {trip.bank_account_name or '-'}"
        if trip.bank_account_number
        else ctx.t(_("belum diisi"))
    )
    return ctx.t(
        _(
            "Pembayaran: {payment} · Fee: {fee}\n"
            "Rekening: {account}\n"
            "Batas bayar: {hours} jam · Ringkasan ke pembeli: {summary}"
        ),
        payment=payment,
        fee=fee,
        account=account.strip(),
        hours=trip.payment_window_hours,
        summary=ctx.t(SUMMARY_LABELS.get(trip.summary_every, SUMMARY_LABELS["off"])),
    )


async def trip_summary(ctx: Ctx, trip: Trip, *, full: bool = False) -> str:
    stats = await trips.stats(ctx.session, trip)
    clicks = await links.clicks(ctx.session, trip, links.day_of(ctx.now))
    status = ctx.t(_("buka")) if trip.status == TripStatus.OPEN.value else ctx.t(_("tutup"))
    return ctx.t(
        _(
            "*{title}* ({code}) — {status}\n"
            "Tujuan: {destination} · tutup {closes}\n"
            "Klik link: {clicks} (hari ini {today}) · Peserta: {participants} · "
            "Pesanan: {orders} · Uang masuk: {revenue}\n"
            "Link pendek: {short}"
        ),
        title=trip.title,
        code=trip.code,
        status=status,
        destination=trip.destination,
        closes=ctx.t.date(trip.closes_on),
        clicks=clicks.total,
        today=clicks.today,
        participants=stats.participants,
        orders=stats.orders,
        revenue=ctx.t.money(stats.revenue),
        short=f"{ctx.resources.settings.public_base_url}/s/{clicks.slug}",
    ) + (("\n" + trip_setup(ctx, trip)) if full else "")


TRIPS_PAGE = 3  # three summaries fit a message with buttons (1024 characters)


async def cmd_trips(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Lists the jastiper's trips with participants, orders and revenue."""
    await show_trips_page(ctx, jastiper, 0)


async def show_trips_page(ctx: Ctx, jastiper: Jastiper, page: int) -> None:
    """One page of the jastiper's trips, with buttons to the pages around it."""
    mine = await trips.jastiper_trips(ctx.session, jastiper)
    if not mine:
        ctx.say(_("Kamu belum punya trip. Mulai dengan /trip new"))
        return
    pages = (len(mine) + TRIPS_PAGE - 1) // TRIPS_PAGE
    page = max(0, min(page, pages - 1))
    shown = mine[page * TRIPS_PAGE : (page + 1) * TRIPS_PAGE]
    body = "\n\n".join([await trip_summary(ctx, t) for t in shown])
    if pages == 1:
        ctx.say(body)
        return
    body += "\n\n" + ctx.t(_("Halaman {page}/{pages}"), page=page + 1, pages=pages)
    nav = []
    if page > 0:
        nav.append((ctx.t(_("◀ Sebelumnya")), JastiperTap("trips", str(page - 1))))
    if page < pages - 1:
        nav.append((ctx.t(_("Berikutnya ▶")), JastiperTap("trips", str(page + 1))))
    ctx.reply(replies.buttons(body, nav))


async def on_trips_page(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """A tap on a page button of /trips."""
    if value.isdigit():
        await show_trips_page(ctx, jastiper, int(value[:4]))


async def cmd_close(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Stops new orders."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    await trips.set_status(ctx.session, trip, TripStatus.CLOSED.value, actor_user_id=ctx.user.id)
    ctx.say(_("Trip {code} ditutup: tidak ada pesanan baru."), code=trip.code)


async def cmd_open(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Reopens a trip."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    await trips.set_status(ctx.session, trip, TripStatus.OPEN.value, actor_user_id=ctx.user.id)
    ctx.say(_("Trip {code} dibuka lagi: pembeli bisa memesan."), code=trip.code)


SUMMARY_WORDS = {
    "daily": "daily",
    "harian": "daily",
    "weekly": "weekly",
    "mingguan": "weekly",
    "off": "off",
    "mati": "off",
}
SUMMARY_LABELS = {
    "daily": _("harian"),
    "weekly": _("mingguan (Minggu)"),
    "off": _("tidak dikirim"),
}


async def cmd_summary(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """How often the trip's buyers get the automatic summary: daily, weekly or never."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    every = SUMMARY_WORDS.get(args[1].lower()) if len(args) > 1 else None
    if every is None:
        ctx.say(
            _(
                "Ringkasan {code} sekarang: {every}. Ubah dengan /summary {code} "
                "harian, mingguan, atau off."
            ),
            code=trip.code,
            every=ctx.t(SUMMARY_LABELS.get(trip.summary_every, SUMMARY_LABELS["off"])),
        )
        return
    await trips.set_summary(ctx.session, trip, every, actor_user_id=ctx.user.id)
    ctx.say(
        _("Ringkasan {code}: {every}. Dikirim pukul 19.00 WIB ke pembeli yang berlangganan."),
        code=trip.code,
        every=ctx.t(SUMMARY_LABELS[every]),
    )


WIZARD_TEXT = {
    S.T_TITLE: on_title,
    S.T_PAYMENT: on_payment_text,
    S.T_DEST: on_destination,
    S.T_CLOSE: on_closes,
    S.T_DP: on_dp,
    S.T_FEE: on_fee,
    S.T_BANK: on_bank,
}

"""Where a jastiper lands when they are not in the middle of a command: their own menu
(MENU), their help (BANTUAN, /help), an answer in their terms to words the bot does not
know, hints that keep a wizard going whatever arrives, and a file sent without a caption
(a bank statement is offered for matching, anything else explained). A buyer gets the
buyer's answers from every entry here."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flows import menu, orders
from flows.base import Ctx, Handler, Kind
from flows.jastiper import commands, money, products
from flows.jastiper import orders as jorders
from flows.jastiper import trips as jtrips
from flows.jastiper.machine import WIZARD_KEYS, S, jastiper_of, own_trip
from locales import JAKARTA, _
from services import orders as orders_service
from services import reconcile, replies, statements, trips
from services.payloads import JastiperTap
from storage.media import MediaNotFound
from storage.models import Jastiper

# what each wizard step is waiting for, said again when something else arrives
STEP_HINTS: dict[str, Any] = {
    S.T_TITLE: _("judul trip (contoh: Jastip Tokyo Desember)"),
    S.T_DEST: _("tujuan trip (contoh: Tokyo, Jepang)"),
    S.T_CLOSE: _("tanggal tutup pesanan (contoh: 20 Desember)"),
    S.T_PAYMENT: _("pilihan Lunas atau DP (ketuk tombolnya)"),
    S.T_DP: _("DP dalam persen (contoh: 50)"),
    S.T_FEE: _("fee per barang (contoh: 10rb), persen (contoh: 5%), atau 0"),
    S.T_BANK: _("rekening transfer (contoh: BCA 1234567890 a.n. Tina Wijaya)"),
    S.P_PHOTO: _("foto produknya (kirim sebagai foto)"),
    S.P_NAME: _("nama produknya"),
    S.P_PRICE: _("harga produknya (contoh: 85rb)"),
    S.P_STOCK: _("stoknya (angka, atau ketuk Tanpa batas)"),
}
MENU_TRIPS = 6  # rows for open trips; with proofs, today's orders and help: within 10


async def on_menu_word(ctx: Ctx) -> None:
    """MENU: a jastiper's own menu; anyone else the buyer's."""
    jastiper = await jastiper_of(ctx)
    if jastiper is None:
        await menu.show_menu(ctx)
        return
    await show_jastiper_menu(ctx, jastiper)


async def show_jastiper_menu(ctx: Ctx, jastiper: Jastiper) -> None:
    """Open trips, proofs waiting and today's orders, each one tap away."""
    ctx.forget(*WIZARD_KEYS)
    ctx.enter(menu.flow)
    open_trips = await trips.jastiper_trips(ctx.session, jastiper, open_only=True)
    midnight = today_start(ctx)
    proofs, today = await trips.jastiper_overview(ctx.session, jastiper, midnight)
    body = ctx.t(
        _(
            "Menu jastiper *{name}*\n"
            "Trip buka: {trips} · Bukti transfer menunggu: {proofs} · Pesanan hari ini: {today}"
        ),
        name=jastiper.name,
        trips=len(open_trips),
        proofs=proofs,
        today=today,
    )
    trip_rows: list[tuple[str, str | None, Any]] = [
        (
            f"{t.code} · {t.title}",
            ctx.t(_("Detail, produk dan pesanan trip ini")),
            JastiperTap("trip", t.code),
        )
        for t in open_trips[:MENU_TRIPS]
    ]
    if not trip_rows:
        trip_rows = [(ctx.t(_("Buka trip baru")), "/trip new", JastiperTap("newtrip", ""))]
    work_rows: list[tuple[str, str | None, Any]] = [
        (
            ctx.t(_("Bukti menunggu ({n})"), n=proofs),
            ctx.t(_("Pesanan yang bukti transfernya perlu dicek")),
            JastiperTap("proofs", ""),
        ),
        (
            ctx.t(_("Pesanan hari ini ({n})"), n=today),
            ctx.t(_("Pesanan baru sejak pukul 00.00 WIB")),
            JastiperTap("today", ""),
        ),
        (ctx.t(_("Bantuan")), ctx.t(_("Semua perintah jastiper")), JastiperTap("help", "")),
    ]
    ctx.reply(
        replies.list_sections(
            body,
            ctx.t(_("Pilih")),
            [(ctx.t(_("Trip buka")), trip_rows), (ctx.t(_("Pekerjaan")), work_rows)],
        )
    )


def today_start(ctx: Ctx) -> dt.datetime:
    """Midnight in Jakarta today, as the UTC time orders are stamped with."""
    local = ctx.now.astimezone(_jakarta())
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(dt.UTC).replace(tzinfo=ctx.now.tzinfo)


def _jakarta() -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(JAKARTA)


async def on_help_word(ctx: Ctx, buyers: Handler) -> None:
    """BANTUAN / HELP: a jastiper's grouped help; anyone else ``buyers`` (the buyer's)."""
    if await jastiper_of(ctx) is None:
        await buyers(ctx)
        return
    commands.show_help(ctx)


async def not_understood(ctx: Ctx) -> None:
    """Words the bot does not know: a jastiper is pointed to their menu and help."""
    jastiper = await jastiper_of(ctx)
    if jastiper is None:
        await menu.not_understood(ctx)
        return
    if ctx.data.get("pending_product"):  # "which trip?" answered by typing its code
        code = ctx.incoming.text.strip().upper()
        for trip in await trips.jastiper_trips(ctx.session, jastiper, open_only=True):
            if code in (trip.code, trip.title.upper()):
                await products.on_trip_chosen(ctx, jastiper, trip.code)
                return
    ctx.say(
        _(
            "Maaf, aku belum paham. Ketik MENU untuk menu jastiper-mu atau /help untuk "
            "daftar perintah."
        )
    )


def step_hint(ctx: Ctx) -> None:
    """Something other than the answer arrived in a wizard step: say what the step
    waits for, and how to leave; the step and everything answered so far are kept."""
    hint = STEP_HINTS.get(ctx.conversation.state)
    ctx.say(
        _("Aku sedang menunggu {what}. Ketik /cancel untuk membatalkan."),
        what=ctx.t(hint) if hint else "-",
    )


async def on_wizard_text(ctx: Ctx) -> None:
    """Text in a step that waits for a photo or a tap."""
    if await jastiper_of(ctx) is None:
        await menu.show_menu(ctx)
        return
    step_hint(ctx)


async def on_wizard_media(ctx: Ctx) -> None:
    """A photo or file in a step that waits for typed words (never a payment proof)."""
    if await jastiper_of(ctx) is None:
        await orders.on_media(ctx)
        return
    step_hint(ctx)


def _statement_file(ctx: Ctx) -> bool:
    inc = ctx.incoming
    return inc.kind is Kind.DOCUMENT and (
        inc.statement is not None or (inc.upload_error or "").startswith("statement_")
    )


async def on_loose_media(ctx: Ctx) -> None:
    """A photo or file without a command caption. A buyer's is a payment proof. A
    jastiper's statement export is offered for matching with a button; their other
    files are a proof only when they have an order of their own awaiting payment,
    otherwise they are told which caption does what."""
    jastiper = await jastiper_of(ctx)
    if jastiper is None:
        if _statement_file(ctx):
            ctx.say(orders.UPLOAD_ERRORS["unsupported_type"])
            return
        await orders.on_media(ctx)
        return
    if _statement_file(ctx):
        await offer_statement(ctx)
        return
    broken = ctx.incoming.upload_error
    if broken in ("corrupt", "too_large", "too_many_pixels"):
        ctx.say(orders.UPLOAD_ERRORS[broken])  # the file itself first: no caption mends it
        return
    awaiting = await orders_service.awaiting_payment(ctx.session, ctx.user)
    if awaiting:
        await orders.on_media(ctx)
        return
    ctx.say(
        _(
            "File ini tidak aku proses karena tidak ada caption perintah. Kirim ulang dengan "
            "caption:\n"
            "• /add nama | harga | stok — foto produk baru\n"
            "• /mutasi — file mutasi rekening (CSV/XLS/XLSX)\n"
            "• /qris — foto QRIS toko\n"
            "• /refunded JP-ABCDE — bukti refund ke pembeli"
        )
    )


async def offer_statement(ctx: Ctx) -> None:
    """A statement export sent without /mutasi: read already; matched after a tap."""
    inc = ctx.incoming
    if inc.statement is None or not inc.media_key:
        ctx.say(reconcile.refusal(inc.upload_error))
        return
    ctx.remember(stmt_pending={"key": inc.media_key, "name": (inc.filename or "")[:60]})
    ctx.reply(
        replies.buttons(
            ctx.t(
                _(
                    "File {name} terbaca sebagai mutasi rekening: {credits} transfer masuk dari "
                    "{lines} baris. Cocokkan dengan pesanan yang menunggu pembayaran?"
                ),
                name=inc.filename or "-",
                credits=len(inc.statement.credits),
                lines=inc.statement.lines,
            ),
            [
                (ctx.t(_("Ya, cocokkan")), JastiperTap("stmt", "ok")),
                (ctx.t(_("Bukan mutasi")), JastiperTap("stmt", "no")),
            ],
        )
    )


async def on_statement_tap(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """The answer to "match this statement?": read the kept file again and match it."""
    pending = ctx.data.get("stmt_pending") or {}
    ctx.forget("stmt_pending")
    media = ctx.resources.media
    if not pending.get("key") or media is None:
        ctx.say(_("Tombol itu sudah tidak berlaku. Ketik /help."))
        return
    if value != "ok":
        await media.delete(pending["key"])  # a bank statement is kept no longer than needed
        ctx.say(_("Oke, file itu tidak dicocokkan."))
        return
    try:
        data = await media.get(pending["key"])
    except MediaNotFound:  # this tap's first try read and deleted it, then did not commit
        ctx.say(
            _("File mutasinya sudah tidak tersimpan. Kirim lagi file-nya dengan caption /mutasi.")
        )
        return
    statement = await statements.read(data, ctx.now.astimezone(_jakarta()).date())
    await media.delete(pending["key"])  # read: the statement is not kept any longer
    await money.match_statement(ctx, jastiper, statement)


async def on_trip_row(ctx: Ctx, jastiper: Jastiper, code: str) -> None:
    """A trip of the jastiper menu: its details, products and orders."""
    trip = await own_trip(ctx, jastiper, code)
    ctx.say(await jtrips.trip_summary(ctx, trip, full=True))


async def on_new_trip_row(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """*Buka trip baru* (no trip open): the trip wizard starts."""
    await jtrips.cmd_trip(ctx, jastiper, ["new"])


async def on_proofs_row(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """*Bukti menunggu*: the orders whose transfer proof waits for a look."""
    await jorders.list_waiting_proofs(ctx, jastiper)


async def on_today_row(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """*Pesanan hari ini*: the orders placed since midnight in Jakarta."""
    await jorders.list_today(ctx, jastiper, today_start(ctx))


# a menu sent before each row had its own action (``jt:cmd:proofs``), tapped later
OLD_MENU_ROWS = {"newtrip": on_new_trip_row, "proofs": on_proofs_row, "today": on_today_row}


async def on_old_menu_row(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """A row of a menu sent before this version: answered as its row is today."""
    row = OLD_MENU_ROWS.get(value)
    if row is not None:
        await row(ctx, jastiper, value)

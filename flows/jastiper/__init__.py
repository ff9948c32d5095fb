"""Jastiper commands: slash words from a user the system knows as an approved jastiper.

A buyer who types them gets the ordinary "I don't understand" answer and nothing
happens. Every action that changes something is written to the audit log by the
service it calls. The commands live by family: trips (and the ``/trip new`` wizard),
products (and the product wizard), orders and money, broadcasts, questions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from flows import menu
from flows.base import Ctx, Handler, Handlers, Kind
from flows.jastiper import (
    broadcasts,
    money,
    orders,
    products,
    profile,
    qris,
    questions,
    trips,
    web,
)
from flows.jastiper.machine import S, State, flow, jastiper_of, own_trip, turned_away
from locales import _
from services.payloads import JastiperTap
from storage.models import Jastiper

Command = Callable[[Ctx, Jastiper, list[str]], Awaitable[None]]

HELP = _(
    "*Perintah jastiper*\n"
    "/trip new — buka trip baru (wizard)\n"
    "/trips — semua trip-mu\n"
    "/trip DEMO — detail satu trip\n"
    "/close DEMO · /open DEMO — tutup / buka pesanan\n"
    "Foto + caption /add Kit Kat Matcha | 85rb | 20 — tambah produk\n"
    "/products DEMO — daftar produk bernomor\n"
    "/stock 3 10 · /price 3 90000 · /hide 3 — ubah produk nomor 3\n"
    "/orders DEMO [unpaid|paid|proof|shipped] — daftar pesanan\n"
    "/order JP-ABCDE — detail pesanan\n"
    "/paid JP-ABCDE — tandai lunas (bayar di luar bot)\n"
    "/bought JP-ABCDE · /ship JP-ABCDE RESI123 · /done JP-ABCDE — kabari pembeli\n"
    "/ongkir JP-ABCDE 25000 · /ongkir DEMO 25000 — ongkir satu pesanan / semua yang belum\n"
    "/refund JP-ABCDE 1 [jumlah] [alasan] — barang nomor 1 tidak didapat\n"
    "/refunds — refund yang belum dikembalikan, dengan rekening pembeli\n"
    "/refunded JP-ABCDE — refund sudah dikembalikan (atau foto bukti + caption itu)\n"
    "File mutasi (CSV/XLSX) + caption /mutasi — cocokkan transfer masuk\n"
    "Foto QRIS + caption /qris — QRIS dengan nominal tepat di setiap instruksi bayar\n"
    "/balance DEMO — tagih pelunasan trip DP\n"
    "/recap DEMO [csv] — rekap pesanan (XLSX / CSV)\n"
    "/reply Q-AB12 jawaban — jawab pertanyaan pembeli\n"
    "/broadcast DEMO pesan — perkiraan biaya, lalu kirim\n"
    "/summary DEMO harian|mingguan|off — ringkasan otomatis ke pembeli\n"
    "/web — link sekali pakai ke panel web-mu\n"
    "/profile — bio, link dan foto di halaman publikmu\n"
    "/cancel — batalkan wizard"
)


async def cmd_help(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Lists every command with an example."""
    ctx.say(HELP)


async def cmd_cancel(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Leaves any wizard."""
    ctx.forget("wizard", "pwiz", "pending_product")
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


async def on_command(ctx: Ctx) -> None:
    """Routes a slash command (a buyer who types one is not understood)."""
    jastiper = await jastiper_of(ctx)
    if jastiper is None:
        if not await turned_away(ctx):
            await menu.not_understood(ctx)
        return
    words = ctx.incoming.text.split()
    command = COMMANDS.get(words[0].lower())
    if command is None:
        ctx.say(
            _("Perintah {command} tidak dikenal. Ketik /help untuk daftar perintah."),
            command=words[0].lower()[:30],
        )
        return
    await command(ctx, jastiper, words[1:])


async def on_tap(ctx: Ctx) -> None:
    """Wizard buttons: payment type, no fee, saved bank account, unlimited stock, and
    which trip a product goes to."""
    tap = ctx.incoming.tap
    assert isinstance(tap, JastiperTap)
    jastiper = await jastiper_of(ctx)
    if jastiper is None:
        if not await turned_away(ctx):
            await menu.not_understood(ctx)
        return
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
    else:
        ctx.say(_("Tombol itu sudah tidak berlaku. Ketik /help."))


def _jastipers_only(handler: Handler) -> Handler:
    """A wizard step answers only an approved jastiper (anyone else gets the menu)."""

    async def guarded(ctx: Ctx) -> None:
        if await jastiper_of(ctx) is None:
            if not await turned_away(ctx):
                await menu.show_menu(ctx)
            return
        await handler(ctx)

    guarded.__doc__ = handler.__doc__
    return guarded


def is_command(kind: Kind, text: str) -> bool:
    return kind is Kind.TEXT and text.strip().startswith("/")


HANDLERS = Handlers(
    on_text={
        state: _jastipers_only(handler)
        for state, handler in {**trips.WIZARD_TEXT, **products.WIZARD_TEXT}.items()
    },
    on_media={S.P_PHOTO: products.on_product_photo},
    on_tap=on_tap,
)
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
    "on_add_photo",
    "on_broadcast_tap",
    "on_command",
    "on_qris_photo",
    "on_question",
    "on_refund_photo",
    "on_register",
    "on_statement",
    "own_trip",
]

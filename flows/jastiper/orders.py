"""A jastiper's orders and money: ``/orders``, ``/order``, ``/paid``, ``/bought``,
``/ship``, ``/done``, ``/balance`` and ``/recap``. Every move goes through the order
service's table of allowed moves; the buyer is told by the service."""

from __future__ import annotations

import datetime as dt
import secrets

from flows.base import Ctx
from flows.jastiper.machine import own_order, own_trip
from locales import _
from services import amounts, orders, payments, people, recap, refunds, replies, trips
from services.payloads import JastiperTap
from storage.models import Jastiper, OrderGroup, OrderStatus, Trip

Args = list[str]
FILTERS = {
    "unpaid": OrderGroup.OPEN_FOR_PAYMENT,
    "proof": (OrderStatus.PROOF_SUBMITTED.value,),
    "paid": OrderGroup.PAID_NOT_SHIPPED,
    "shipped": OrderGroup.SHIPPED,
}
# the words a jastiper types, in either language, for each filter
FILTER_WORDS = {
    "unpaid": "unpaid",
    "belum bayar": "unpaid",
    "belum lunas": "unpaid",
    "belum dibayar": "unpaid",
    "tagihan": "unpaid",
    "proof": "proof",
    "bukti": "proof",
    "cek": "proof",
    "paid": "paid",
    "lunas": "paid",
    "dibayar": "paid",
    "sudah bayar": "paid",
    "shipped": "shipped",
    "dikirim": "shipped",
    "kirim": "shipped",
    "sent": "shipped",
    "selesai": "shipped",
}
FILTER_HELP = _("Filter yang ada: belum bayar, bukti, lunas, dikirim.")
ORDERS_PAGE = 10


def filter_of(words: Args) -> str | None:
    """The filter named by the words after the trip code ("" for none, None: unknown)."""
    phrase = " ".join(w.lower() for w in words)
    if not phrase:
        return ""
    return FILTER_WORDS.get(phrase)


async def cmd_orders(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Lists a trip's orders (buyer, exact amount, status), optionally filtered, a page
    at a time."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    chosen = filter_of(args[1:])
    if chosen is None:
        ctx.say(FILTER_HELP)
        return
    await show_orders_page(ctx, trip, chosen, 0)


async def show_orders_page(ctx: Ctx, trip: Trip, chosen: str, page: int) -> None:
    """One page of a trip's orders, with buttons to the pages before and after."""
    wanted = FILTERS.get(chosen)
    page = max(0, page)
    listed = await trips.trip_orders(
        ctx.session, trip, wanted, limit=ORDERS_PAGE + 1, offset=page * ORDERS_PAGE
    )
    more = len(listed) > ORDERS_PAGE
    listed = listed[:ORDERS_PAGE]
    if not listed:
        ctx.say(_("Tidak ada pesanan di {code}."), code=trip.code)
        return
    lines = []
    for o in listed:
        name = await people.shown_name(ctx.session, o.user_id)
        lines.append(
            f"{o.code} · {replies.clip(name, 20)} · {ctx.t.money(amounts.amount(o))} · "
            f"{ctx.t(orders.status_label(o.status))}"
        )
    body = ctx.t(
        _("Pesanan {code} (halaman {page}):\n{lines}"),
        code=trip.code,
        page=page + 1,
        lines="\n".join(lines),
    )
    nav: list[tuple[str, JastiperTap]] = []
    if page > 0:
        nav.append(
            (ctx.t(_("◀ Sebelumnya")), JastiperTap("orders", f"{trip.code}.{chosen}.{page - 1}"))
        )
    if more:
        nav.append(
            (ctx.t(_("Berikutnya ▶")), JastiperTap("orders", f"{trip.code}.{chosen}.{page + 1}"))
        )
    if not nav:
        ctx.reply(replies.text(body))
        return
    ctx.reply(replies.buttons(body, nav))


async def on_orders_page(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """A tap on a page button of /orders."""
    code, _sep, rest = value.partition(".")
    chosen, _sep, page = rest.partition(".")
    trip = await own_trip(ctx, jastiper, code)
    if chosen in ("", *FILTERS) and page.isdigit():
        await show_orders_page(ctx, trip, chosen, int(page[:4]))


async def list_waiting_proofs(ctx: Ctx, jastiper: Jastiper) -> None:
    """The orders whose transfer proof waits for the jastiper's check."""
    waiting = await trips.jastiper_orders(
        ctx.session, jastiper, status=OrderStatus.PROOF_SUBMITTED.value
    )
    if not waiting:
        ctx.say(_("Tidak ada bukti transfer yang menunggu dicek. 👍"))
        return
    lines = [f"{o.code} · {ctx.t.money(amounts.amount(o))}" for o in waiting]
    ctx.say(
        _(
            "Bukti transfer menunggu dicek:\n{lines}\nKetuk Setujui / Tolak di pesan buktinya, "
            "atau lihat /order KODE."
        ),
        lines="\n".join(lines),
    )


async def list_today(ctx: Ctx, jastiper: Jastiper, since: dt.datetime) -> None:
    """The orders placed today across the jastiper's trips."""
    placed = await trips.jastiper_orders(ctx.session, jastiper, since=since)
    if not placed:
        ctx.say(_("Belum ada pesanan hari ini."))
        return
    lines = [
        f"{o.code} · {ctx.t.money(amounts.amount(o))} · {ctx.t(orders.status_label(o.status))}"
        for o in placed
    ]
    ctx.say(_("Pesanan hari ini:\n{lines}"), lines="\n".join(lines))


async def cmd_order(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """One order with the buyer's name and shipping address."""
    order = await own_order(ctx, jastiper, args[0] if args else None)
    if order is None:
        return
    buyer = await people.shown_name(ctx.session, order.user_id)
    address = "-"
    a = ctx.resources.cipher.decrypt_json(order.address_enc) if order.address_enc else None
    if a:
        address = (
            f"{a.get('recipient')} ({a.get('phone')}), {a.get('street')}, "
            f"{a.get('city')} {a.get('postal')}"
        )
    text = ctx.t(
        _("*{code}* — {status}\nPembeli: {buyer}\n{items}\nTotal: {total}\nAlamat: {address}"),
        code=order.code,
        status=ctx.t(orders.status_label(order.status)),
        buyer=buyer,
        items="\n".join(refunds.item_lines(ctx.t, order, numbered=True)),  # as /refund counts
        total=ctx.t.money(amounts.amount(order)),
        address=address,
    )
    money = ctx.t.money
    extra = []
    if order.shipping:
        extra.append(ctx.t(_("Ongkir: {amount}"), amount=money(order.shipping)))
    if order.paid:
        extra.append(ctx.t(_("Dibayar: {amount}"), amount=money(order.paid)))
    if amounts.due_now(order):
        extra.append(ctx.t(_("Harus ditransfer: {amount}"), amount=money(order.amount_due)))
    extra += refunds.refund_lines(ctx.t, order)
    if order.refund_due:
        extra.append(
            ctx.t(_("Ke: {account}"), account=refunds.describe(ctx.t, order.refund_account))
        )
    ctx.reply(replies.text("\n".join([text, *extra])))


async def _advance(ctx: Ctx, jastiper: Jastiper, args: Args, to: str) -> None:
    order = await own_order(ctx, jastiper, args[0] if args else None)
    if order is None:
        return
    tracking = args[1] if len(args) > 1 else None
    before = order.status
    await orders.advance(ctx.session, order, to, actor_user_id=ctx.user.id, tracking=tracking)
    text = ctx.t(
        _("Pesanan {code}: {old} → {new}. Pembeli sudah dikabari."),
        code=order.code,
        old=ctx.t(orders.status_label(before)),
        new=ctx.t(orders.status_label(to)),
    )
    if to == OrderStatus.SHIPPED.value:
        text += "\n" + ctx.t(_("Nomor resi: {tracking}"), tracking=order.tracking_number)
    ctx.reply(replies.text(text))


async def cmd_paid(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Confirms a payment received another way."""
    await _advance(ctx, jastiper, args, OrderStatus.PAID.value)


async def cmd_bought(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """The goods are bought."""
    await _advance(ctx, jastiper, args, OrderStatus.BOUGHT.value)


async def cmd_ship(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Shipped, with a tracking number."""
    await _advance(ctx, jastiper, args, OrderStatus.SHIPPED.value)


async def cmd_done(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Completed."""
    await _advance(ctx, jastiper, args, OrderStatus.DONE.value)


async def cmd_balance(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Asks every buyer whose DP is paid for the balance, with the breakdown."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    billed = await payments.bill_balance(
        ctx.session, trip, ctx.now, actor_user_id=ctx.user.id, media=ctx.resources.media
    )
    ctx.say(_("Tagihan pelunasan dikirim ke {n} pembeli."), n=billed)


async def cmd_recap(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """A spreadsheet (XLSX, or CSV on request) with one row per order item."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    as_csv = len(args) > 1 and args[1].lower() == "csv"
    rows = await recap.rows(ctx.session, trip, ctx.resources.cipher, ctx.t)
    if not rows:
        ctx.say(_("Tidak ada pesanan di {code}."), code=trip.code)
        return
    header = [ctx.t(h) for h in recap.HEADER]
    data, mime, ext = recap.as_csv(header, rows) if as_csv else recap.xlsx(header, rows, trip.code)
    if ctx.resources.media is None:
        return
    key = f"recaps/{trip.code}-{secrets.token_hex(6)}.{ext}"
    await ctx.resources.media.put(key, data, mime)
    recap.record_sent(ctx.session, trip, actor_user_id=ctx.user.id, ext=ext)
    payload = replies.document(
        key,
        f"rekap-{trip.code}.{ext}",
        ctx.t(_("Rekap {code}: {n} baris."), code=trip.code, n=len(rows)),
    )
    payload["mime_type"] = mime
    ctx.reply(payload)

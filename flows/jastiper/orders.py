"""A jastiper's orders and money: ``/orders``, ``/order``, ``/paid``, ``/bought``,
``/ship``, ``/done``, ``/balance`` and ``/recap``. Every move goes through the order
service's table of allowed moves; the buyer is told by the service."""

from __future__ import annotations

import secrets

from flows.base import Ctx
from flows.jastiper.machine import own_order, own_trip
from locales import _
from services import amounts, orders, payments, recap, refunds, replies
from services.errors import DomainError
from storage.models import Jastiper, OrderStatus
from storage.repo import audit
from storage.repo import orders as orders_repo
from storage.repo import users as users_repo

Args = list[str]
FILTERS = {
    "unpaid": (OrderStatus.AWAITING_PAYMENT.value, OrderStatus.AWAITING_BALANCE.value),
    "proof": (OrderStatus.PROOF_SUBMITTED.value,),
    "paid": (OrderStatus.PAID.value, OrderStatus.DP_PAID.value, OrderStatus.BOUGHT.value),
    "shipped": (OrderStatus.SHIPPED.value, OrderStatus.DONE.value),
}


async def cmd_orders(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Lists a trip's orders, optionally filtered."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    if trip is None:
        return
    wanted = None
    if len(args) > 1:
        wanted = FILTERS.get(args[1].lower())
        if wanted is None:
            ctx.say(_("Filter yang ada: unpaid, paid, proof, shipped."))
            return
    listed = await orders_repo.trip_orders(ctx.session, trip.id, wanted)
    if not listed:
        ctx.say(_("Tidak ada pesanan di {code}."), code=trip.code)
        return
    lines = [
        f"{o.code} · {ctx.t.money(amounts.amount(o))} · {ctx.t(orders.status_label(o.status))}"
        for o in listed
    ]
    ctx.say(_("Pesanan {code}:\n{lines}"), code=trip.code, lines="\n".join(lines))


async def cmd_order(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """One order with the buyer's name and shipping address."""
    order = await own_order(ctx, jastiper, args[0] if args else None)
    if order is None:
        return
    buyer = await users_repo.get_user(ctx.session, order.user_id)
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
        buyer=(buyer.display_name or buyer.profile_name or "-") if buyer else "-",
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
    tracking = None
    if to == OrderStatus.SHIPPED.value:
        if len(args) < 2:
            ctx.say(_("Sertakan nomor resinya, contoh: /ship {code} JNE123456"), code=order.code)
            return
        tracking = args[1]
    try:
        await orders.advance(ctx.session, order, to, actor_user_id=ctx.user.id, tracking=tracking)
    except DomainError as error:
        ctx.refuse(error)
        return
    ctx.say(_("Pesanan {code} diperbarui dan pembeli sudah dikabari."), code=order.code)


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
    if trip is None:
        return
    try:
        billed = await payments.bill_balance(
            ctx.session, trip, ctx.now, actor_user_id=ctx.user.id, media=ctx.resources.media
        )
    except DomainError as error:
        ctx.refuse(error)
        return
    ctx.say(_("Tagihan pelunasan dikirim ke {n} pembeli."), n=billed)


async def cmd_recap(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """A spreadsheet (XLSX, or CSV on request) with one row per order item."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    if trip is None:
        return
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
    audit.record(ctx.session, "trip.recap", actor_user_id=ctx.user.id, trip_id=trip.id, format=ext)
    payload = replies.document(
        key,
        f"rekap-{trip.code}.{ext}",
        ctx.t(_("Rekap {code}: {n} baris."), code=trip.code, n=len(rows)),
    )
    payload["mime_type"] = mime
    ctx.reply(payload)

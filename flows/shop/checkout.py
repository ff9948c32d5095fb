"""Checkout: the shipping address (asked once, field by field, then offered again next
time), the order summary, and the order with its stock reserved."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from flows import menu
from flows.base import Ctx, Handler, purchase_step
from flows.shop.catalogue import show_cart
from flows.shop.machine import S, items_text, lines, shop_trip
from locales import _
from services import orders, payqris, people, replies
from services.errors import OutOfStock
from services.payloads import AddressTap, ShopTap
from storage.models import PaymentType

# the address field each state asks for (the rules for each are in services/people.py)
ADDRESS_FIELDS = {
    S.ADDR_RECIPIENT: "recipient",
    S.ADDR_PHONE: "phone",
    S.ADDR_STREET: "street",
    S.ADDR_CITY: "city",
    S.ADDR_POSTAL: "postal",
}


def ask_recipient(ctx: Ctx) -> None:
    """Asks who receives the parcel (the first address field)."""
    ctx.fire("ask_recipient")
    ctx.say(_("Alamat pengiriman. Siapa nama penerimanya?"))


def ask_phone(ctx: Ctx) -> None:
    """Asks the recipient's phone number."""
    ctx.fire("ask_phone")
    ctx.say(_("Nomor HP penerima? (contoh: 081234567890)"))


def ask_street(ctx: Ctx) -> None:
    """Asks the street address."""
    ctx.fire("ask_street")
    ctx.say(_("Alamat lengkap (jalan, nomor, RT/RW, kelurahan, kecamatan)?"))


def ask_city(ctx: Ctx) -> None:
    """Asks the city."""
    ctx.fire("ask_city")
    ctx.say(_("Kota atau kabupaten?"))


def ask_postal(ctx: Ctx) -> None:
    """Asks the postal code."""
    ctx.fire("ask_postal")
    ctx.say(_("Kode pos? (5 angka)"))


def ask_address_ok(ctx: Ctx, address: dict[str, str], *, saved: bool) -> None:
    """Shows the address back: use it, or type a new one."""
    ctx.fire("confirm_address")
    if saved:
        body = ctx.t(_("Kirim ke alamat tersimpan?\n\n{address}"), address=_text(address))
        choices = [
            (ctx.t(_("Ya, pakai ini")), AddressTap("ok")),
            (ctx.t(_("Alamat baru")), AddressTap("new")),
        ]
    else:
        body = ctx.t(_("Alamatnya sudah benar?\n\n{address}"), address=_text(address))
        choices = [(ctx.t(_("Benar")), AddressTap("ok")), (ctx.t(_("Ubah")), AddressTap("new"))]
    ctx.reply(replies.buttons(body, choices))


NEXT_FIELD = {
    S.ADDR_RECIPIENT: ask_phone,
    S.ADDR_PHONE: ask_street,
    S.ADDR_STREET: ask_city,
    S.ADDR_CITY: ask_postal,
}


def _text(address: dict[str, str]) -> str:
    return (
        f"{address['recipient']} ({address['phone']})\n{address['street']}\n"
        f"{address['city']} {address['postal']}"
    )


@purchase_step
async def checkout(ctx: Ctx) -> None:
    """Starts checkout: reuse the saved address or ask for one."""
    if not await lines(ctx):
        await show_cart(ctx)
        return
    saved = await people.saved_address(ctx.session, ctx.resources.cipher, ctx.user.id)
    if saved:
        ctx.remember(address=saved)
        ask_address_ok(ctx, saved, saved=True)
        return
    ctx.forget("address")
    ask_recipient(ctx)


@purchase_step
async def on_address_text(ctx: Ctx) -> None:
    """Stores one address field and asks the next (or shows it back for confirmation)."""
    state = S(ctx.conversation.state)
    value = people.check_address_field(ADDRESS_FIELDS[state], ctx.incoming.text)
    address = {**ctx.data.get("address", {}), ADDRESS_FIELDS[state]: value}
    ctx.remember(address=address)
    if state in NEXT_FIELD:
        NEXT_FIELD[state](ctx)
    else:
        ask_address_ok(ctx, address, saved=False)


AddressStep = Callable[[Ctx, dict[str, str]], Awaitable[None]]


def _shown_address(handler: AddressStep) -> Handler:
    """A button under the address shown back, given that address (none kept any more:
    the cart is shown)."""

    @functools.wraps(handler)
    async def tapped(ctx: Ctx) -> None:
        address = ctx.data.get("address")
        if not address:
            await show_cart(ctx)
            return
        await handler(ctx, address)

    return tapped


@purchase_step
@_shown_address
async def on_address_ok(ctx: Ctx, address: dict[str, str]) -> None:
    """*Ya, pakai ini* / *Benar*: saves the address (encrypted, for next time) and shows
    the order's summary."""
    await people.save_address(ctx.session, ctx.resources.cipher, ctx.user.id, address)
    await review(ctx)


@purchase_step
@_shown_address
async def on_new_address(ctx: Ctx, address: dict[str, str]) -> None:
    """*Alamat baru* / *Ubah*: asks the address again, field by field."""
    ctx.forget("address")
    ask_recipient(ctx)


@purchase_step
async def on_old_address_tap(ctx: Ctx) -> None:
    """An address button once its step is over: where the cart stands."""
    await show_cart(ctx)


@purchase_step
async def review(ctx: Ctx) -> None:
    """Shows items, subtotal, fee, total (and DP now / balance later); confirm or cancel."""
    trip = await shop_trip(ctx)
    cart_lines = await lines(ctx)
    if trip is None or not cart_lines:
        await show_cart(ctx)
        return
    totals = orders.compute_totals(trip, cart_lines)
    money = ctx.t.money
    parts = [
        ctx.t(_("*Ringkasan pesanan* — {title}"), title=trip.title),
        items_text(ctx, cart_lines),
        ctx.t(_("Subtotal: {amount}"), amount=money(totals.subtotal)),
    ]
    if totals.fee:
        parts.append(ctx.t(_("Fee jastip: {amount}"), amount=money(totals.fee)))
    parts.append(ctx.t(_("Ongkir: dihitung jastiper setelah barang dibeli")))
    parts.append(ctx.t(_("*Total: {amount}*"), amount=money(totals.total)))
    if trip.payment_type == PaymentType.DP.value and totals.balance_later:
        parts.append(
            ctx.t(
                _("Bayar DP {percent}% sekarang: *{now}*. Sisa {later} ditagih setelah belanja."),
                percent=trip.dp_percent,
                now=money(totals.due_now),
                later=money(totals.balance_later),
            )
        )
    parts.append(ctx.t(_("Kirim ke: {address}"), address=_text(ctx.data["address"])))
    ctx.fire("review")
    ctx.reply(
        replies.buttons(
            "\n".join(parts),
            [
                (ctx.t(_("Konfirmasi")), ShopTap("confirm", 0)),
                (ctx.t(_("Batal")), ShopTap("cancel", 0)),
            ],
        )
    )


@purchase_step
async def confirm(ctx: Ctx) -> None:
    """Creates the order, reserving stock in this transaction, and sends how to pay."""
    trip = await shop_trip(ctx)
    cart_lines = await lines(ctx)
    if trip is None or not cart_lines or ctx.conversation.state != S.CONFIRM:
        await show_cart(ctx)
        return
    address = ctx.data.get("address") or {}
    try:
        order = await orders.place_order(
            ctx.session,
            trip=trip,
            buyer=ctx.user,
            lines=cart_lines,
            address_enc=people.seal_address(ctx.resources.cipher, address),
            now=ctx.now,
        )
    except OutOfStock as error:
        ctx.refuse(error)
        await show_cart(ctx)
        return
    ctx.forget("cart", "pending", "search")
    ctx.enter(menu.flow)
    ctx.say(
        _(
            "Pesanan *{code}* dibuat! 🎉\n\n"
            "Transfer *tepat {amount}* (angka unik di belakang membantu kami mencocokkan "
            "transfermu) ke:\n{bank} {account}\na.n. {holder}\n\n"
            "Batas bayar: {deadline}. Setelah transfer, kirim foto bukti transfer di sini."
        ),
        code=order.code,
        amount=ctx.t.money(order.amount_due),
        bank=trip.bank_name or "-",
        account=trip.bank_account_number or "-",
        holder=trip.bank_account_name or "-",
        deadline=ctx.t.datetime(order.payment_deadline),
    )
    await payqris.offer(ctx.session, ctx.resources.media, ctx.user, trip, order)

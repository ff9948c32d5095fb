"""Shopping: catalogue (paged, searchable) → product → quantity → note → cart →
shipping address → checkout → order with reserved stock and payment instructions.

The cart lives in the conversation's data, so it survives restarts and any API
instance can continue it.
"""

from __future__ import annotations

import enum
import re
from typing import Any

from flows import menu, replies
from flows.base import Ctx, Flow
from flows.payloads import AddressTap, CatalogTap, ShopTap
from locales import _
from storage.models import Address, PaymentType, Product, Trip, TripStatus
from storage.repo import orders as orders_repo
from storage.repo import trips as trips_repo

PAGE_SIZE = 8  # + up to two navigation rows: never more than Meta's 10
NOTE_MAX = 200
ADDRESS_FIELDS = ("recipient", "phone", "street", "city", "postal")


class State(enum.StrEnum):
    BROWSING = "browsing"
    ASK_QTY = "ask_qty"
    ASK_NOTE = "ask_note"
    CART = "cart"
    ADDR_RECIPIENT = "addr_recipient"
    ADDR_PHONE = "addr_phone"
    ADDR_STREET = "addr_street"
    ADDR_CITY = "addr_city"
    ADDR_POSTAL = "addr_postal"
    ADDR_CONFIRM = "addr_confirm"
    CONFIRM = "confirm"


S = State
_ADDR_STATES = [S.ADDR_RECIPIENT, S.ADDR_PHONE, S.ADDR_STREET, S.ADDR_CITY, S.ADDR_POSTAL]
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "browse", "source": "*", "dest": S.BROWSING},
    {"trigger": "ask_qty", "source": "*", "dest": S.ASK_QTY},
    {"trigger": "ask_note", "source": S.ASK_QTY, "dest": S.ASK_NOTE},
    {
        "trigger": "to_cart",
        "source": [S.ASK_QTY, S.ASK_NOTE, S.CART, S.CONFIRM, S.BROWSING],
        "dest": S.CART,
    },
    {"trigger": "ask_recipient", "source": [S.CART, S.ADDR_CONFIRM], "dest": S.ADDR_RECIPIENT},
    {"trigger": "ask_phone", "source": S.ADDR_RECIPIENT, "dest": S.ADDR_PHONE},
    {"trigger": "ask_street", "source": S.ADDR_PHONE, "dest": S.ADDR_STREET},
    {"trigger": "ask_city", "source": S.ADDR_STREET, "dest": S.ADDR_CITY},
    {"trigger": "ask_postal", "source": S.ADDR_CITY, "dest": S.ADDR_POSTAL},
    {"trigger": "confirm_address", "source": [S.ADDR_POSTAL, S.CART], "dest": S.ADDR_CONFIRM},
    {"trigger": "review", "source": [S.CART, S.ADDR_CONFIRM], "dest": S.CONFIRM},
]


# --- catalogue --------------------------------------------------------------------------


async def _trip(ctx: Ctx) -> Trip | None:
    trip = await menu.current_trip(ctx)
    if trip is None:
        await menu.show_menu(ctx)
    return trip


async def show_catalogue(ctx: Ctx, page: int = 0) -> None:
    """Shows one page of the trip's catalogue as an interactive list."""
    trip = await _trip(ctx)
    if trip is None:
        return
    products = await trips_repo.visible_products(ctx.session, trip.id)
    query = ctx.data.get("search")
    if query:
        words = query.lower().split()
        products = [p for p in products if all(w in p.name.lower() for w in words)]
    if not products:
        ctx.enter(flow)
        ctx.fire("browse")
        text = (
            ctx.t(_("Tidak ada produk yang cocok dengan \u201c{q}\u201d."), q=query)
            if query
            else ctx.t(_("Belum ada produk di *{title}*. Nanti kami kabari!"), title=trip.title)
        )
        ctx.reply(menu.menu_buttons(ctx, text))
        return
    pages = (len(products) + PAGE_SIZE - 1) // PAGE_SIZE
    page = max(0, min(page, pages - 1))
    shown = products[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    rows: list[tuple[str, str | None, Any]] = [
        (p.name, _row_description(ctx, p), CatalogTap("prod", p.id)) for p in shown
    ]
    if page > 0:
        rows.append((ctx.t(_("◀ Sebelumnya")), None, CatalogTap("page", page - 1)))
    if page < pages - 1:
        rows.append((ctx.t(_("Berikutnya ▶")), None, CatalogTap("page", page + 1)))
    body = ctx.t(
        _("Katalog *{title}* (halaman {page}/{pages}). Ketuk tombol untuk memilih produk."),
        title=trip.title,
        page=page + 1,
        pages=pages,
    )
    if query:
        body += "\n" + ctx.t(_("Hasil pencarian \u201c{q}\u201d."), q=query)
    else:
        body += "\n" + ctx.t(_("Cari produk: kirim CARI diikuti kata kunci."))
    ctx.enter(flow)
    ctx.remember(page=page)
    ctx.fire("browse")
    ctx.reply(replies.list_rows(body, ctx.t(_("Lihat produk")), rows))


def _row_description(ctx: Ctx, p: Product) -> str:
    if p.stock == 0:
        return f"{ctx.t.money(p.price)} · {ctx.t(_('habis'))}"
    if p.stock is None:
        return ctx.t.money(p.price)
    return f"{ctx.t.money(p.price)} · " + ctx.t(_("stok {n}"), n=p.stock)


async def on_catalogue_word(ctx: Ctx) -> None:
    """KATALOG: the first page of the catalogue."""
    ctx.forget("search")
    await show_catalogue(ctx, 0)


async def on_search(ctx: Ctx) -> None:
    """CARI <words>: the catalogue filtered by name."""
    query = " ".join(ctx.incoming.words[1:])[:50]
    if not query:
        ctx.say(_("Kirim CARI diikuti kata kunci, contoh: CARI matcha"))
        return
    ctx.remember(search=query)
    await show_catalogue(ctx, 0)


async def show_product(ctx: Ctx, product_id: int) -> None:
    """Shows a product: photo, name, price, stock, description, and what to do."""
    trip = await _trip(ctx)
    if trip is None:
        return
    product = await ctx.session.get(Product, product_id)
    if product is None or product.trip_id != trip.id or product.hidden:
        ctx.say(_("Produk itu sudah tidak tersedia."))
        await show_catalogue(ctx, ctx.data.get("page", 0))
        return
    lines = [f"*{product.name}*", ctx.t.money(product.price)]
    if product.stock is not None:
        lines.append(
            ctx.t(_("Stok: {n}"), n=product.stock) if product.stock else ctx.t(_("Stok habis"))
        )
    if product.description:
        lines.append(product.description)
    caption = "\n".join(lines)
    if product.image_key:
        ctx.reply(replies.image(product.image_key, caption))
        caption = ctx.t(_("Mau pesan *{name}*?"), name=product.name)
    back: tuple[str, Any] = (ctx.t(_("Kembali")), CatalogTap("page", ctx.data.get("page", 0)))
    choices = (
        [back] if product.stock == 0 else [(ctx.t(_("Pesan")), ShopTap("order", product.id)), back]
    )
    ctx.reply(replies.buttons(caption, choices))


# --- cart ------------------------------------------------------------------------------


def _cart(ctx: Ctx) -> list[dict[str, Any]]:
    return list(ctx.data.get("cart", []))


async def ask_qty(ctx: Ctx, product_id: int) -> None:
    """Asks how many, with 1-2-3 buttons or a typed number."""
    trip = await _trip(ctx)
    if trip is None:
        return
    product = await ctx.session.get(Product, product_id)
    if product is None or product.trip_id != trip.id or product.hidden or product.stock == 0:
        ctx.say(_("Maaf, produk itu sudah habis atau tidak tersedia."))
        return
    if trip.status != TripStatus.OPEN.value:
        ctx.say(
            _("Trip *{title}* sudah ditutup dan tidak menerima pesanan baru."), title=trip.title
        )
        return
    ctx.enter(flow)
    ctx.remember(pending={"p": product.id})
    ctx.fire("ask_qty")
    limit = (
        orders_repo.MAX_QTY if product.stock is None else min(product.stock, orders_repo.MAX_QTY)
    )
    choices = [(str(n), ShopTap("qty", n)) for n in (1, 2, 3) if n <= limit]
    ctx.reply(
        replies.buttons(
            ctx.t(
                _("Berapa *{name}* yang mau dipesan? Ketuk atau ketik angkanya (maks. {max})."),
                name=product.name,
                max=limit,
            ),
            choices,
        )
    )


async def on_qty(ctx: Ctx, qty: int) -> None:
    """Checks the quantity against stock and a sane maximum, then asks for a note."""
    pending = ctx.data.get("pending") or {}
    product = await ctx.session.get(Product, pending.get("p", 0))
    if product is None:
        await show_catalogue(ctx, ctx.data.get("page", 0))
        return
    in_cart = sum(i["q"] for i in _cart(ctx) if i["p"] == product.id)
    if qty < 1 or qty > orders_repo.MAX_QTY:
        ctx.say(_("Jumlahnya antara 1 dan {max} ya."), max=orders_repo.MAX_QTY)
        return
    if product.stock is not None and qty + in_cart > product.stock:
        ctx.say(
            _("Stok *{name}* tinggal {n}. Ketik jumlah yang lebih kecil."),
            name=product.name,
            n=max(0, product.stock - in_cart),
        )
        return
    ctx.remember(pending={"p": product.id, "q": qty})
    ctx.fire("ask_note")
    ctx.reply(
        replies.buttons(
            ctx.t(
                _(
                    "Ada catatan untuk jastiper (ukuran, warna, varian)? Ketik di sini, "
                    "atau ketuk Lewati."
                )
            ),
            [(ctx.t(_("Lewati")), ShopTap("skipnote", 0))],
        )
    )


async def on_qty_text(ctx: Ctx) -> None:
    """A typed quantity."""
    text = ctx.incoming.text.strip()
    if not re.fullmatch(r"\d{1,4}", text):
        ctx.say(_("Ketik jumlahnya dengan angka, contoh: 2"))
        return
    await on_qty(ctx, int(text))


async def on_note_text(ctx: Ctx) -> None:
    """A typed note for the pending product."""
    await add_to_cart(ctx, ctx.incoming.text.strip()[:NOTE_MAX] or None)


async def add_to_cart(ctx: Ctx, note: str | None) -> None:
    """Adds the pending product to the cart and shows the cart."""
    pending = ctx.data.get("pending") or {}
    if "q" not in pending:
        await show_cart(ctx)
        return
    cart = _cart(ctx)
    cart.append({"p": pending["p"], "q": pending["q"], "n": note})
    ctx.remember(cart=cart)
    ctx.forget("pending")
    await show_cart(ctx, added=True)


async def _lines(ctx: Ctx) -> list[orders_repo.Line]:
    """The cart's lines for the current trip (a product of another trip never slips in)."""
    trip = await menu.current_trip(ctx)
    lines = []
    for item in _cart(ctx):
        product = await ctx.session.get(Product, item["p"])
        if product is not None and not product.hidden and trip and product.trip_id == trip.id:
            lines.append(orders_repo.Line(product, int(item["q"]), item.get("n")))
    return lines


def _items_text(ctx: Ctx, lines: list[orders_repo.Line]) -> str:
    out = []
    for line in lines:
        amount = ctx.t.money(line.product.price * line.quantity)
        row = f"• {line.quantity}× {line.product.name} — {amount}"
        if line.note:
            row += f"\n   _{line.note}_"
        out.append(row)
    return "\n".join(out)


async def show_cart(ctx: Ctx, *, added: bool = False) -> None:
    """Shows the cart with add-more / checkout / empty."""
    lines = await _lines(ctx)
    ctx.enter(flow)
    if not lines:
        ctx.forget("cart")
        ctx.reply(menu.menu_buttons(ctx, ctx.t(_("Keranjangmu masih kosong."))))
        return
    ctx.fire("to_cart")
    head = ctx.t(_("Masuk keranjang! ✅")) + "\n\n" if added else ""
    subtotal = sum(line.product.price * line.quantity for line in lines)
    body = (
        head
        + ctx.t(_("*Keranjang*"))
        + "\n"
        + _items_text(ctx, lines)
        + "\n"
        + ctx.t(_("Subtotal: {amount}"), amount=ctx.t.money(subtotal))
    )
    ctx.reply(
        replies.buttons(
            body,
            [
                (ctx.t(_("Tambah produk")), ShopTap("more", 0)),
                (ctx.t(_("Checkout")), ShopTap("checkout", 0)),
                (ctx.t(_("Kosongkan")), ShopTap("clear", 0)),
            ],
        )
    )


# --- address ---------------------------------------------------------------------------

_ADDR_PROMPTS = {
    S.ADDR_RECIPIENT: _("Alamat pengiriman. Siapa nama penerimanya?"),
    S.ADDR_PHONE: _("Nomor HP penerima? (contoh: 081234567890)"),
    S.ADDR_STREET: _("Alamat lengkap (jalan, nomor, RT/RW, kelurahan, kecamatan)?"),
    S.ADDR_CITY: _("Kota atau kabupaten?"),
    S.ADDR_POSTAL: _("Kode pos? (5 angka)"),
}
_ADDR_NEXT = {
    S.ADDR_RECIPIENT: ("ask_phone", S.ADDR_PHONE),
    S.ADDR_PHONE: ("ask_street", S.ADDR_STREET),
    S.ADDR_STREET: ("ask_city", S.ADDR_CITY),
    S.ADDR_CITY: ("ask_postal", S.ADDR_POSTAL),
}


async def _saved_address(ctx: Ctx) -> dict[str, str] | None:
    from sqlalchemy import select

    row = (
        await ctx.session.execute(select(Address).where(Address.user_id == ctx.user.id))
    ).scalar_one_or_none()
    return ctx.services.cipher.decrypt_json(row.data_enc) if row else None


def _address_text(address: dict[str, str]) -> str:
    return (
        f"{address['recipient']} ({address['phone']})\n{address['street']}\n"
        f"{address['city']} {address['postal']}"
    )


async def checkout(ctx: Ctx) -> None:
    """Starts checkout: reuse the saved address or ask for one."""
    if not await _lines(ctx):
        await show_cart(ctx)
        return
    saved = await _saved_address(ctx)
    if saved:
        ctx.remember(address=saved)
        ctx.fire("confirm_address")
        ctx.reply(
            replies.buttons(
                ctx.t(_("Kirim ke alamat tersimpan?\n\n{address}"), address=_address_text(saved)),
                [
                    (ctx.t(_("Ya, pakai ini")), AddressTap("ok")),
                    (ctx.t(_("Alamat baru")), AddressTap("new")),
                ],
            )
        )
        return
    ctx.forget("address")
    ctx.fire("ask_recipient")
    ctx.say(_ADDR_PROMPTS[S.ADDR_RECIPIENT])


def _valid(state: str, value: str) -> str | None:
    """The cleaned field, or None when it does not look right."""
    value = " ".join(value.split())
    if state == S.ADDR_PHONE:
        digits = re.sub(r"[\s\-+().]", "", value)
        return digits if re.fullmatch(r"\d{8,15}", digits) else None
    if state == S.ADDR_POSTAL:
        return value if re.fullmatch(r"\d{5}", value) else None
    if state == S.ADDR_STREET:
        return value if 8 <= len(value) <= 300 else None
    return value if 2 <= len(value) <= 100 else None


_ADDR_ERRORS = {
    S.ADDR_PHONE: _("Nomor HP-nya kurang pas. Ketik angka saja, contoh: 081234567890"),
    S.ADDR_POSTAL: _("Kode pos terdiri dari 5 angka, contoh: 12345"),
    S.ADDR_STREET: _("Alamatnya terlalu pendek. Tulis jalan, nomor rumah dan kelurahan."),
}


async def on_address_text(ctx: Ctx) -> None:
    """Stores one address field and asks the next (or shows it back for confirmation)."""
    state = ctx.conversation.state
    value = _valid(state, ctx.incoming.text)
    if value is None:
        ctx.say(_ADDR_ERRORS.get(S(state), _("Isiannya kurang pas, coba lagi ya.")))
        return
    field = ADDRESS_FIELDS[_ADDR_STATES.index(S(state))]
    address = {**ctx.data.get("address", {}), field: value}
    ctx.remember(address=address)
    if state in _ADDR_NEXT:
        trigger, next_state = _ADDR_NEXT[S(state)]
        ctx.fire(trigger)
        ctx.say(_ADDR_PROMPTS[next_state])
        return
    ctx.fire("confirm_address")
    ctx.reply(
        replies.buttons(
            ctx.t(_("Alamatnya sudah benar?\n\n{address}"), address=_address_text(address)),
            [(ctx.t(_("Benar")), AddressTap("ok")), (ctx.t(_("Ubah")), AddressTap("new"))],
        )
    )


async def on_address_tap(ctx: Ctx) -> None:
    """Accepts the address (saving it for next time) or starts over."""
    tap = ctx.incoming.tap
    assert isinstance(tap, AddressTap)
    address = ctx.data.get("address")
    if ctx.conversation.state != S.ADDR_CONFIRM or not address:
        await show_cart(ctx)
        return
    if tap.action == "new":
        ctx.forget("address")
        ctx.fire("ask_recipient")
        ctx.say(_ADDR_PROMPTS[S.ADDR_RECIPIENT])
        return
    from sqlalchemy import select

    row = (
        await ctx.session.execute(select(Address).where(Address.user_id == ctx.user.id))
    ).scalar_one_or_none()
    blob = ctx.services.cipher.encrypt_json(address)
    if row is None:
        ctx.session.add(Address(user_id=ctx.user.id, data_enc=blob))
    else:
        row.data_enc = blob
    await review(ctx)


# --- review and order ---------------------------------------------------------------------


async def review(ctx: Ctx) -> None:
    """Shows items, subtotal, fee, total (and DP now / balance later); confirm or cancel."""
    trip = await _trip(ctx)
    lines = await _lines(ctx)
    if trip is None or not lines:
        await show_cart(ctx)
        return
    totals = orders_repo.compute_totals(trip, lines)
    money = ctx.t.money
    parts = [
        ctx.t(_("*Ringkasan pesanan* — {title}"), title=trip.title),
        _items_text(ctx, lines),
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
    parts.append(ctx.t(_("Kirim ke: {address}"), address=_address_text(ctx.data["address"])))
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


async def confirm(ctx: Ctx) -> None:
    """Creates the order, reserving stock in this transaction, and sends how to pay."""
    trip = await _trip(ctx)
    lines = await _lines(ctx)
    if trip is None or not lines or ctx.conversation.state != S.CONFIRM:
        await show_cart(ctx)
        return
    if trip.status != TripStatus.OPEN.value:
        ctx.say(
            _("Trip *{title}* sudah ditutup dan tidak menerima pesanan baru."), title=trip.title
        )
        return
    address = ctx.data.get("address") or {}
    try:
        async with ctx.session.begin_nested():
            order = await orders_repo.create_order(
                ctx.session,
                trip=trip,
                user_id=ctx.user.id,
                lines=lines,
                address_enc=ctx.services.cipher.encrypt_json(address),
                now=ctx.now,
            )
    except orders_repo.OutOfStock as exc:
        ctx.say(
            _("Maaf, stok *{name}* tinggal {n}. Ubah keranjangmu ya."),
            name=exc.product_name,
            n=exc.left,
        )
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


async def on_tap(ctx: Ctx) -> None:
    """Routes catalogue, cart and address taps."""
    tap = ctx.incoming.tap
    if isinstance(tap, CatalogTap):
        if tap.action == "page":
            await show_catalogue(ctx, tap.arg)
        else:
            await show_product(ctx, tap.arg)
    elif isinstance(tap, AddressTap):
        await on_address_tap(ctx)
    elif isinstance(tap, ShopTap):
        action = tap.action
        if action == "order":
            await ask_qty(ctx, tap.arg)
        elif action == "qty" and ctx.conversation.state == S.ASK_QTY:
            await on_qty(ctx, tap.arg)
        elif action == "skipnote" and ctx.conversation.state == S.ASK_NOTE:
            await add_to_cart(ctx, None)
        elif action == "more":
            await show_catalogue(ctx, ctx.data.get("page", 0))
        elif action == "checkout" and ctx.conversation.state == S.CART:
            await checkout(ctx)
        elif action == "clear":
            ctx.forget("cart", "pending")
            await show_cart(ctx)
        elif action == "confirm":
            await confirm(ctx)
        elif action == "cancel":
            ctx.say(_("Oke, pesanan tidak dibuat. Keranjangmu masih tersimpan."))
            await show_cart(ctx)
        else:
            await show_cart(ctx)  # an old button: show where things stand


flow = Flow(
    "shop",
    State,
    TRANSITIONS,
    State.BROWSING,
    on_text={
        S.ASK_QTY: on_qty_text,
        S.ASK_NOTE: on_note_text,
        **{s: on_address_text for s in _ADDR_STATES},
    },
    on_tap=on_tap,
)

"""Browsing and the cart: catalogue pages, search, a product, its quantity and note."""

from __future__ import annotations

import re
from typing import Any

from flows import menu
from flows.base import Ctx
from flows.shop.machine import cart, flow, items_text, lines, shop_trip
from locales import _
from services import orders, products, replies, waitlist
from services.errors import DomainError
from services.payloads import CatalogTap, ShopTap
from storage.models import Product, TripStatus

PAGE_SIZE = 8  # + up to two navigation rows: never more than Meta's 10
NOTE_MAX = 200


async def show_catalogue(ctx: Ctx, page: int = 0) -> None:
    """Shows one page of the trip's catalogue as an interactive list."""
    trip = await shop_trip(ctx)
    if trip is None:
        return
    shown_all = await products.of_trip(ctx.session, trip, visible_only=True)
    query = ctx.data.get("search")
    if query:
        words = query.lower().split()
        shown_all = [p for p in shown_all if all(w in p.name.lower() for w in words)]
    ctx.enter(flow)
    ctx.fire("browse")
    if not shown_all:
        text = (
            ctx.t(_("Tidak ada produk yang cocok dengan \u201c{q}\u201d."), q=query)
            if query
            else ctx.t(_("Belum ada produk di *{title}*. Nanti kami kabari!"), title=trip.title)
        )
        ctx.reply(menu.menu_buttons(ctx, text))
        return
    pages = (len(shown_all) + PAGE_SIZE - 1) // PAGE_SIZE
    page = max(0, min(page, pages - 1))
    shown = shown_all[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
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
    ctx.remember(page=page)
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
    trip = await shop_trip(ctx)
    if trip is None:
        return
    product = await products.get(ctx.session, product_id)
    if product is None or product.trip_id != trip.id or product.hidden:
        ctx.say(_("Produk itu sudah tidak tersedia."))
        await show_catalogue(ctx, ctx.data.get("page", 0))
        return
    lines_ = [f"*{product.name}*", ctx.t.money(product.price)]
    place = await waitlist.place_of(ctx.session, product, ctx.user, ctx.now)
    if place is not None and place.hold_until is not None:
        lines_.append(
            ctx.t(_("1 disimpan untukmu sampai {until}."), until=ctx.t.datetime(place.hold_until))
        )
    elif product.stock is not None:
        lines_.append(
            ctx.t(_("Stok: {n}"), n=product.stock) if product.stock else ctx.t(_("Stok habis"))
        )
    if place is not None and place.place is not None:
        lines_.append(_place_text(ctx, place.place))
    if product.description:
        lines_.append(product.description)
    caption = "\n".join(lines_)
    back: tuple[str, Any] = (ctx.t(_("Kembali")), CatalogTap("page", ctx.data.get("page", 0)))
    if product.stock != 0 or (place is not None and place.hold_until is not None):
        choices = [(ctx.t(_("Pesan")), ShopTap("order", product.id)), back]
    elif place is None:
        choices = [(ctx.t(_("Kabari kalau ada")), ShopTap("notify", product.id)), back]
    else:
        choices = [back]
    # the photo is the buttons' header: one message, one send at the number's cap
    ctx.reply(replies.buttons(caption, choices, image_key=product.image_key))


def _place_text(ctx: Ctx, place: int) -> str:
    return ctx.t(
        _("Kamu di antrean ke-{n}. Kalau ada yang batal atau stok ditambah, kami kabari."),
        n=place,
    )


async def on_notify(ctx: Ctx, product_id: int) -> None:
    """Puts the buyer in line for a sold-out product and tells them their place."""
    trip = await shop_trip(ctx)
    if trip is None:
        return
    product = await products.get(ctx.session, product_id)
    if product is None or product.trip_id != trip.id or product.hidden:
        ctx.say(_("Produk itu sudah tidak tersedia."))
        await show_catalogue(ctx, ctx.data.get("page", 0))
        return
    try:
        place = await waitlist.join(ctx.session, product, ctx.user, ctx.now)
    except DomainError as error:
        ctx.refuse(error)
        await show_product(ctx, product.id)
        return
    if place.place is None:  # a unit is held for them already
        await show_product(ctx, product.id)
        return
    head = (
        ctx.t(_("Oke! Kami kabari kalau *{name}* ada lagi."), name=product.name)
        if place.joined_now
        else ctx.t(_("Kamu sudah ada di antrean *{name}*."), name=product.name)
    )
    back = (ctx.t(_("Kembali")), CatalogTap("page", ctx.data.get("page", 0)))
    ctx.reply(replies.buttons(head + "\n" + _place_text(ctx, place.place), [back]))


async def on_held(ctx: Ctx, product_id: int) -> None:
    """The Order button of a waitlist offer: the product's trip becomes the one being
    shopped, then the quantity is asked."""
    product = await products.get(ctx.session, product_id)
    trip = await waitlist.trip_of(ctx.session, product) if product is not None else None
    if trip is not None and trip.code != ctx.data.get("trip"):
        ctx.remember(trip=trip.code)  # the cart shows only this trip's products
        ctx.forget("search")
    await ask_qty(ctx, product_id)


# --- quantity, note, cart ---------------------------------------------------------------------


async def ask_qty(ctx: Ctx, product_id: int) -> None:
    """Asks how many, with 1-2-3 buttons or a typed number."""
    trip = await shop_trip(ctx)
    if trip is None:
        return
    product = await products.get(ctx.session, product_id)
    available = (
        await waitlist.available_to(ctx.session, product, ctx.user, ctx.now) if product else 0
    )
    if product is None or product.trip_id != trip.id or product.hidden or available == 0:
        ctx.say(_("Maaf, produk itu sudah habis atau tidak tersedia."))
        return
    if trip.status != TripStatus.OPEN.value:
        ctx.say(
            _("Trip *{title}* sudah ditutup dan tidak menerima pesanan baru."), title=trip.title
        )
        return
    try:
        orders.check_room(len(cart(ctx)))
    except DomainError as error:
        ctx.refuse(error)
        await show_cart(ctx)
        return
    ctx.enter(flow)
    ctx.remember(pending={"p": product.id})
    ctx.fire("ask_qty")
    limit = orders.MAX_QTY if available is None else min(available, orders.MAX_QTY)
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
    product = await products.get(ctx.session, pending.get("p", 0))
    if product is None:
        await show_catalogue(ctx, ctx.data.get("page", 0))
        return
    in_cart = sum(i["q"] for i in cart(ctx) if i["p"] == product.id)
    available = await waitlist.available_to(ctx.session, product, ctx.user, ctx.now)
    room = None if available is None else max(0, available - in_cart)
    if room is not None and room < orders.MAX_QTY and not 1 <= qty <= room:
        # the real bound is the stock left, not the per-order maximum
        if room:
            ctx.say(_("Jumlahnya antara 1 dan {max} ya (stok tinggal {max})."), max=room)
        else:
            ctx.say(_("Stok *{name}* sudah habis untukmu."), name=product.name)
        return
    try:
        orders.check_quantity(qty, in_cart)
    except DomainError as error:
        ctx.refuse(error)  # still asking: the cart is as it was
        return
    if available is not None and qty + in_cart > available:
        ctx.say(
            _("Stok *{name}* tinggal {n}. Ketik jumlah yang lebih kecil."),
            name=product.name,
            n=max(0, available - in_cart),
        )
        return
    ctx.remember(pending={"p": product.id, "q": qty})
    ask_note(ctx)


def ask_note(ctx: Ctx) -> None:
    """Asks for an optional note for the jastiper (size, colour, variant)."""
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
    """A typed note for the pending product (*Lewati* typed is the tap, flows/labels.py;
    "tidak ada" and the like: no note either)."""
    if ctx.typed(_("tidak ada"), _("tidak"), "-"):
        await add_to_cart(ctx, None)
        return
    await add_to_cart(ctx, ctx.incoming.text.strip()[:NOTE_MAX] or None)


async def add_to_cart(ctx: Ctx, note: str | None) -> None:
    """Adds the pending product to the cart and shows the cart."""
    pending = ctx.data.get("pending") or {}
    if "q" not in pending:
        await show_cart(ctx)
        return
    try:
        orders.check_room(len(cart(ctx)))
    except DomainError as error:
        ctx.forget("pending")
        ctx.refuse(error)
        await show_cart(ctx)
        return
    ctx.remember(cart=[*cart(ctx), {"p": pending["p"], "q": pending["q"], "n": note}])
    ctx.forget("pending")
    await show_cart(ctx, added=True)


async def show_cart(ctx: Ctx, *, added: bool = False) -> None:
    """Shows the cart with add-more / checkout / empty."""
    cart_lines = await lines(ctx)
    ctx.enter(flow)
    if not cart_lines:
        ctx.forget("cart")
        ctx.reply(menu.menu_buttons(ctx, ctx.t(_("Keranjangmu masih kosong."))))
        return
    ctx.fire("to_cart")
    head = ctx.t(_("Masuk keranjang! ✅")) + "\n\n" if added else ""
    subtotal = sum(line.product.price * line.quantity for line in cart_lines)
    body = (
        head
        + ctx.t(_("*Keranjang*"))
        + "\n"
        + items_text(ctx, cart_lines)
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

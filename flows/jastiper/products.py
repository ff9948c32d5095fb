"""A jastiper's products: a photo captioned ``/add name | price | stock``, the product
wizard (``/add`` alone, or a photo with a bare ``/add``), and ``/products``, ``/stock``,
``/price``, ``/hide`` by number. Both ways in check the fields with one function."""

from __future__ import annotations

from typing import Any

from flows.base import Ctx
from flows.jastiper.machine import S, flow, jastiper_of, jastipers_only, own_trip
from locales import _
from services import products, replies, trips, waitlist
from services.payloads import JastiperTap
from storage.models import Jastiper, Product, Trip

Args = list[str]
BAD_PHOTO = _("Fotonya tidak bisa dipakai (JPG/PNG, maks. 5 MB). Kirim ulang ya.")


@jastipers_only
async def on_add_photo(ctx: Ctx, jastiper: Jastiper) -> None:
    """A photo captioned ``/add name | price | stock`` adds a product to the open trip."""
    if ctx.incoming.upload_error or not ctx.incoming.media_key:
        ctx.say(BAD_PHOTO)
        return
    words = (ctx.incoming.caption or "").split(None, 1)
    body = words[1] if len(words) > 1 else ""
    if not body.strip():  # a photo captioned just /add: ask the rest
        ctx.enter(flow)
        ctx.remember(pwiz={"key": ctx.incoming.media_key})
        ask_product_name(ctx)
        return
    parts = [p.strip() for p in body.split("|")]
    if len(parts) < 2 or not parts[0]:
        ctx.say(
            _("Format: foto dengan caption /add Kit Kat Matcha | 85rb | 20 (stok boleh kosong)")
        )
        return
    draft = products.check_fields(
        parts[0][: products.NAME_MAX],
        parts[1],
        parts[2] if len(parts) > 2 else "",
        ctx.incoming.media_key,
    )
    await place_product(ctx, jastiper, draft)


async def place_product(ctx: Ctx, jastiper: Jastiper, draft: products.Draft) -> None:
    """Adds the product to the open trip, asking which one when several are open."""
    open_trips = await trips.jastiper_trips(ctx.session, jastiper, open_only=True)
    if not open_trips:
        ctx.say(_("Belum ada trip yang buka. Mulai dengan /trip new"))
        return
    named = next((t for t in open_trips if t.code == draft_trip(ctx)), None)
    if named is not None or len(open_trips) == 1:
        await _add(ctx, named or open_trips[0], draft)
        return
    ask_which_trip(ctx, draft, open_trips)


def draft_trip(ctx: Ctx) -> str | None:
    """The trip named with ``/add CODE`` for the product being added, if any."""
    return (ctx.data.get("pwiz") or {}).get("trip") or ctx.data.get("add_trip")


def ask_which_trip(ctx: Ctx, draft: products.Draft, open_trips: list[Trip]) -> None:
    """Asks which open trip the product is for (kept until the tap): never guessed.
    The trip just created or last named comes first, marked as the likely one."""
    recent = ctx.data.get("jtrip")
    ctx.forget("add_trip")
    open_trips = sorted(open_trips, key=lambda t: t.code != recent)
    ctx.remember(
        pending_product={
            "key": draft.image_key,
            "name": draft.name,
            "price": draft.price,
            "stock": draft.stock,
        }
    )
    ctx.reply(
        replies.list_rows(
            ctx.t(_("Tambahkan *{name}* ke trip yang mana?"), name=draft.name),
            ctx.t(_("Pilih trip")),
            [
                (
                    f"{t.code} · {t.title}",
                    ctx.t(_("{title} — baru saja dipakai"), title=t.title)
                    if t.code == recent
                    else t.title,
                    JastiperTap("addto", t.code),
                )
                for t in open_trips[:10]
            ],
        )
    )


async def on_trip_chosen(ctx: Ctx, jastiper: Jastiper, code: str) -> None:
    """Adds the waiting product to the trip tapped."""
    pending = ctx.data.get("pending_product")
    trip = await own_trip(ctx, jastiper, code)
    if not pending:
        return
    ctx.forget("pending_product")
    draft = products.Draft(pending["name"], pending["price"], pending["stock"], pending["key"])
    await _add(ctx, trip, draft)


async def _add(ctx: Ctx, trip: Trip, draft: products.Draft) -> None:
    product = await products.add(ctx.session, trip, draft, actor_user_id=ctx.user.id)
    ctx.remember(jtrip=trip.code)
    stock_text = ctx.t(_("tanpa batas")) if product.stock is None else str(product.stock)
    ctx.forget("add_trip")
    ctx.say(
        _("Produk #{n} ditambahkan ke {code} ({title}): *{name}* — {price}, stok {stock}."),
        n=product.position,
        code=trip.code,
        title=trip.title,
        name=product.name,
        price=ctx.t.money(product.price),
        stock=stock_text,
    )


# --- the product wizard ------------------------------------------------------------------------


async def cmd_add(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """``/add`` typed alone starts the product wizard with the photo; ``/add CODE`` names
    the trip the product goes to (otherwise asked at the end when several are open)."""
    wiz: dict[str, Any] = {}
    if args:
        trip = await own_trip(ctx, jastiper, args[0])
        wiz["trip"] = trip.code
    ctx.enter(flow)
    ctx.remember(pwiz=wiz)
    ask_photo(ctx)


def ask_photo(ctx: Ctx) -> None:
    """Asks the product's photo."""
    ctx.fire("ask_photo")
    ctx.say(_("Kirim foto produknya (tanpa caption). Ketik /cancel untuk batal."))


async def on_product_photo(ctx: Ctx) -> None:
    """Stores the wizard's photo and asks the name."""
    if ctx.incoming.upload_error or not ctx.incoming.media_key:
        ctx.say(BAD_PHOTO)
        return
    ctx.remember(pwiz={**_wiz(ctx), "key": ctx.incoming.media_key})
    ask_product_name(ctx)


def ask_product_name(ctx: Ctx) -> None:
    """Asks the product's name."""
    ctx.fire("ask_product_name")
    ctx.say(_("Nama produknya?"))


def _wiz(ctx: Ctx) -> dict[str, Any]:
    return dict(ctx.data.get("pwiz") or {})


async def on_product_name(ctx: Ctx) -> None:
    """Stores the name and asks the price."""
    name = products.check_name(ctx.incoming.text)
    ctx.remember(pwiz={**_wiz(ctx), "name": name})
    ask_product_price(ctx)


def ask_product_price(ctx: Ctx) -> None:
    """Asks the price."""
    ctx.fire("ask_product_price")
    ctx.say(_("Harganya? (contoh: 85000, 85.000, 85rb)"))


async def on_product_price(ctx: Ctx) -> None:
    """Stores the price and asks the stock."""
    price = products.check_price(ctx.incoming.text)
    ctx.remember(pwiz={**_wiz(ctx), "price": price})
    ask_product_stock(ctx)


def ask_product_stock(ctx: Ctx) -> None:
    """Asks the stock (or unlimited, one tap)."""
    ctx.fire("ask_product_stock")
    ctx.reply(
        replies.buttons(
            ctx.t(_("Stoknya berapa? Ketik angkanya, atau ketuk Tanpa batas.")),
            [(ctx.t(_("Tanpa batas")), JastiperTap("stock", "none"))],
        )
    )


async def on_product_stock(ctx: Ctx) -> None:
    """Stores the stock and adds the product."""
    text = ctx.incoming.text.strip()
    if ctx.typed("unlimited", "∞"):  # the label itself typed is the tap (flows/labels.py)
        await finish_product_wizard(ctx, None)
        return
    if not products.STOCK_RE.fullmatch(text):
        ctx.say(products.STOCK_INVALID)
        return
    await finish_product_wizard(ctx, int(text))


async def finish_product_wizard(ctx: Ctx, stock: int | None) -> None:
    """Checks the wizard's fields once more (the same check as the caption) and adds."""
    jastiper = await jastiper_of(ctx)
    wiz = _wiz(ctx)
    ctx.forget("pwiz")
    ctx.fire("finish")
    if jastiper is None:
        return
    draft = products.check_fields(
        wiz.get("name", ""), str(wiz.get("price", "")), "" if stock is None else str(stock)
    )
    draft = products.Draft(draft.name, draft.price, draft.stock, wiz.get("key"))
    if wiz.get("trip"):
        ctx.remember(add_trip=wiz["trip"])
    await place_product(ctx, jastiper, draft)


# --- editing by number --------------------------------------------------------------------------


PRODUCTS_PAGE = 10


async def cmd_products(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Numbered products of a trip (the numbers /stock, /price and /hide use)."""
    trip = await own_trip(ctx, jastiper, args[0] if args else ctx.data.get("jtrip"))
    await show_products_page(ctx, trip, 0)


async def show_products_page(ctx: Ctx, trip: Trip, page: int) -> None:
    """One page of a trip's numbered products, with buttons to the pages around it."""
    ctx.remember(jtrip=trip.code)
    listed = await products.of_trip(ctx.session, trip)
    if not listed:
        ctx.say(_("Belum ada produk di {code}."), code=trip.code)
        return
    pages = (len(listed) + PRODUCTS_PAGE - 1) // PRODUCTS_PAGE
    page = max(0, min(page, pages - 1))
    shown = listed[page * PRODUCTS_PAGE : (page + 1) * PRODUCTS_PAGE]
    waiting = await waitlist.waiting_counts(ctx.session, [p.id for p in shown])
    lines = []
    for p in shown:
        if p.stock is None:
            stock = ctx.t(_("stok tanpa batas"))
        elif p.stock == 0:
            stock = ctx.t(_("habis"))
        else:
            stock = ctx.t(_("stok {n}"), n=p.stock)
        hidden = " " + ctx.t(_("(disembunyikan)")) if p.hidden else ""
        if waiting.get(p.id):
            hidden += " · " + ctx.t(_("{n} antre"), n=waiting[p.id])
        lines.append(f"#{p.position} {p.name} — {ctx.t.money(p.price)} · {stock}{hidden}")
    body = ctx.t(_("Produk {code}:\n{lines}"), code=trip.code, lines="\n".join(lines))
    if pages == 1:
        ctx.say(body)
        return
    body += "\n" + ctx.t(_("Halaman {page}/{pages}"), page=page + 1, pages=pages)
    nav = []
    if page > 0:
        nav.append((ctx.t(_("◀ Sebelumnya")), JastiperTap("products", f"{trip.code}.{page - 1}")))
    if page < pages - 1:
        nav.append((ctx.t(_("Berikutnya ▶")), JastiperTap("products", f"{trip.code}.{page + 1}")))
    ctx.reply(replies.buttons(body, nav))


async def on_products_page(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """A tap on a page button of /products."""
    code, _sep, page = value.partition(".")
    trip = await own_trip(ctx, jastiper, code)
    if page.isdigit():
        await show_products_page(ctx, trip, int(page[:4]))


async def _numbered(ctx: Ctx, jastiper: Jastiper, ref: str | None) -> Product | None:
    code = ctx.data.get("jtrip")
    if not code:
        ctx.say(_("Lihat dulu daftarnya dengan /products KODE, lalu pakai nomornya."))
        return None
    trip = await own_trip(ctx, jastiper, code)
    return await products.numbered(ctx.session, trip, ref)


async def cmd_stock(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Sets a product's stock."""
    product = await _numbered(ctx, jastiper, args[0] if args else None)
    if product is None:
        return
    if len(args) < 2 or not products.STOCK_RE.fullmatch(args[1]):
        ctx.say(_("Stok harus angka 0 atau lebih, contoh: /stock 3 10"))
        return
    stock = int(args[1])
    offered = await products.set_stock(
        ctx.session, product, stock, actor_user_id=ctx.user.id, now=ctx.now
    )
    text = ctx.t(_("Stok *{name}* sekarang {n}."), name=product.name, n=stock)
    if offered:
        text += "\n" + ctx.t(
            _(
                "{n} ditawarkan dulu ke pembeli di antrean, disimpan {minutes} menit untuk "
                "masing-masing."
            ),
            n=offered,
            minutes=waitlist.HOLD_MINUTES,
        )
    ctx.reply(replies.text(text))


async def cmd_price(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Sets a product's price."""
    product = await _numbered(ctx, jastiper, args[0] if args else None)
    if product is None:
        return
    price = products.parse_price(" ".join(args[1:])) if len(args) > 1 else None
    if price is None:
        ctx.say(_("Harga tidak bisa dibaca. Contoh: /price 3 90000 atau /price 3 90rb"))
        return
    await products.set_price(ctx.session, product, price, actor_user_id=ctx.user.id)
    ctx.say(_("Harga *{name}* sekarang {price}."), name=product.name, price=ctx.t.money(price))


async def cmd_hide(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Hides a product from the catalogue."""
    product = await _numbered(ctx, jastiper, args[0] if args else None)
    if product is None:
        return
    await products.hide(ctx.session, product, actor_user_id=ctx.user.id)
    ctx.say(_("*{name}* disembunyikan dari katalog."), name=product.name)


WIZARD_TEXT = {
    S.P_NAME: on_product_name,
    S.P_PRICE: on_product_price,
    S.P_STOCK: on_product_stock,
}

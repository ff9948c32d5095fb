"""Jastiper commands: slash words from a user the system knows as an approved jastiper.

A buyer who types them gets the ordinary "I don't understand" answer and nothing
happens. Every action that changes something is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import enum
import io
import re
import secrets
from typing import Any

from sqlalchemy import func, select

from flows import menu, replies
from flows.base import Ctx, Flow, Kind
from flows.payloads import JastiperTap
from locales import _
from storage.models import (
    AuditLog,
    Jastiper,
    Order,
    OrderStatus,
    Participant,
    PaymentType,
    Product,
    Trip,
    TripStatus,
    User,
)
from storage.repo import orders as orders_repo
from storage.repo.users import approved_jastiper


class State(enum.StrEnum):
    IDLE = "idle"
    T_TITLE = "t_title"
    T_DEST = "t_dest"
    T_CLOSE = "t_close"
    T_PAYMENT = "t_payment"
    T_DP = "t_dp"
    T_FEE = "t_fee"
    T_BANK = "t_bank"
    P_PHOTO = "p_photo"
    P_NAME = "p_name"
    P_PRICE = "p_price"
    P_STOCK = "p_stock"


S = State
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "ask_title", "source": "*", "dest": S.T_TITLE},
    {"trigger": "ask_dest", "source": S.T_TITLE, "dest": S.T_DEST},
    {"trigger": "ask_close", "source": S.T_DEST, "dest": S.T_CLOSE},
    {"trigger": "ask_payment", "source": S.T_CLOSE, "dest": S.T_PAYMENT},
    {"trigger": "ask_dp", "source": S.T_PAYMENT, "dest": S.T_DP},
    {"trigger": "ask_fee", "source": [S.T_PAYMENT, S.T_DP], "dest": S.T_FEE},
    {"trigger": "ask_bank", "source": S.T_FEE, "dest": S.T_BANK},
    {"trigger": "ask_photo", "source": "*", "dest": S.P_PHOTO},
    {"trigger": "ask_product_name", "source": [S.P_PHOTO, S.IDLE], "dest": S.P_NAME},
    {"trigger": "ask_product_price", "source": S.P_NAME, "dest": S.P_PRICE},
    {"trigger": "ask_product_stock", "source": S.P_PRICE, "dest": S.P_STOCK},
    {"trigger": "finish", "source": "*", "dest": S.IDLE},
]

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
    "/balance DEMO — tagih pelunasan trip DP\n"
    "/recap DEMO [csv] — rekap pesanan (XLSX / CSV)\n"
    "/reply Q-AB12 jawaban — jawab pertanyaan pembeli\n"
    "/broadcast DEMO pesan — perkiraan biaya, lalu kirim\n"
    "/summary DEMO harian|mingguan|off — ringkasan otomatis ke pembeli\n"
    "/cancel — batalkan wizard"
)

PRICE_RE = re.compile(
    r"^(?:rp\.?\s*)?(\d{1,3}(?:[.,]\d{3})+|\d+(?:[.,]\d+)?)\s*(rb|ribu|k|jt|juta)?$"
)


def parse_price(text: str) -> int | None:
    """Rupiah as people type it: ``85000``, ``85.000``, ``85rb``, ``Rp 85.000``, ``1,5jt``."""
    m = PRICE_RE.match(text.strip().lower())
    if not m:
        return None
    number, unit = m.group(1), m.group(2)
    if unit:
        value = float(number.replace(",", "."))
        amount = round(value * (1_000 if unit in ("rb", "ribu", "k") else 1_000_000))
    else:
        amount = int(re.sub(r"[.,]", "", number))
    return amount if 0 < amount <= 1_000_000_000 else None


def parse_date(text: str, today: dt.date) -> dt.date | None:
    """``20-12-2026``, ``20/12/2026``, ``2026-12-20`` or ``20-12`` (this year or next)."""
    text = text.strip()
    for fmt in ("%d-%m-%Y", "%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    m = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})", text)
    if m:
        try:
            day = dt.date(today.year, int(m.group(2)), int(m.group(1)))
        except ValueError:
            return None
        return day if day >= today else day.replace(year=today.year + 1)
    return None


async def is_jastiper(ctx: Ctx) -> Jastiper | None:
    return await approved_jastiper(ctx.session, ctx.user.id)


def audit(ctx: Ctx, action: str, trip: Trip | None = None, **detail: Any) -> None:
    ctx.session.add(
        AuditLog(
            actor_user_id=ctx.user.id,
            action=action,
            trip_id=trip.id if trip else None,
            detail=detail,
        )
    )


async def own_trip(ctx: Ctx, jastiper: Jastiper, code: str | None) -> Trip | None:
    """The jastiper's trip with that code; says so when there is none."""
    if not code:
        ctx.say(_("Sebutkan kode trip-nya, contoh: /trip DEMO"))
        return None
    trip = (
        await ctx.session.execute(select(Trip).where(Trip.code == code.upper()))
    ).scalar_one_or_none()
    if trip is None or trip.jastiper_id != jastiper.id:
        ctx.say(_("Trip {code} tidak ada di daftar trip-mu. Ketik /trips."), code=code.upper())
        return None
    return trip


async def own_order(ctx: Ctx, jastiper: Jastiper, code: str | None) -> tuple[Order, Trip] | None:
    if not code:
        ctx.say(_("Sebutkan kode pesanannya, contoh: /order JP-ABCDE"))
        return None
    try:
        order = await orders_repo.get_order(ctx.session, code)
    except orders_repo.OrderNotFound:
        order = None
    trip = await ctx.session.get(Trip, order.trip_id) if order else None
    if order is None or trip is None or trip.jastiper_id != jastiper.id:
        ctx.say(_("Pesanan {code} tidak ditemukan di trip-mu."), code=code.upper())
        return None
    return order, trip


# --- entry -----------------------------------------------------------------------------


async def on_command(ctx: Ctx) -> None:
    """Routes a slash command (only an approved jastiper gets here)."""
    jastiper = await is_jastiper(ctx)
    if jastiper is None:
        await menu.not_understood(ctx)
        return
    words = ctx.incoming.text.split()
    command = words[0].lower()
    args = words[1:]
    handler = COMMANDS.get(command)
    if handler is None:
        ctx.say(
            _("Perintah {command} tidak dikenal. Ketik /help untuk daftar perintah."),
            command=command[:30],
        )
        return
    await handler(ctx, jastiper, args)


async def cmd_help(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Lists every command with an example."""
    ctx.say(HELP)


async def cmd_cancel(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Leaves the wizard."""
    ctx.forget("wizard")
    ctx.enter(flow)
    ctx.say(_("Oke, dibatalkan."))


# --- trips -----------------------------------------------------------------------------


async def cmd_trip(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """``/trip new`` starts the wizard; ``/trip CODE`` shows one trip."""
    if args and args[0].lower() in ("new", "baru"):
        ctx.enter(flow)
        ctx.remember(wizard={})
        ctx.fire("ask_title")
        ctx.say(_("Trip baru! Apa judulnya? (contoh: Jastip Tokyo Desember)"))
        return
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    if trip is not None:
        ctx.say(await _trip_summary(ctx, trip))


async def _trip_summary(ctx: Ctx, trip: Trip) -> str:
    participants = (
        await ctx.session.execute(
            select(func.count()).select_from(Participant).where(Participant.trip_id == trip.id)
        )
    ).scalar_one()
    rows = (
        await ctx.session.execute(
            select(Order.status, func.count(), func.coalesce(func.sum(Order.total), 0))
            .where(Order.trip_id == trip.id)
            .group_by(Order.status)
        )
    ).all()
    live = [
        r for r in rows if r[0] not in (OrderStatus.CANCELLED.value, OrderStatus.EXPIRED.value)
    ]
    paid_states = {
        OrderStatus.PAID.value,
        OrderStatus.BOUGHT.value,
        OrderStatus.SHIPPED.value,
        OrderStatus.DONE.value,
        OrderStatus.DP_PAID.value,
    }
    revenue = sum(int(r[2]) for r in live if r[0] in paid_states)
    status = ctx.t(_("buka")) if trip.status == TripStatus.OPEN.value else ctx.t(_("tutup"))
    return ctx.t(
        _(
            "*{title}* ({code}) — {status}\n"
            "Tujuan: {destination} · tutup {closes}\n"
            "Peserta: {participants} · Pesanan: {orders} · Lunas: {revenue}"
        ),
        title=trip.title,
        code=trip.code,
        status=status,
        destination=trip.destination,
        closes=ctx.t.date(trip.closes_on),
        participants=participants,
        orders=sum(int(r[1]) for r in live),
        revenue=ctx.t.money(revenue),
    )


async def cmd_trips(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Lists the jastiper's trips with participants, orders and revenue."""
    trips = (
        (
            await ctx.session.execute(
                select(Trip).where(Trip.jastiper_id == jastiper.id).order_by(Trip.id.desc())
            )
        )
        .scalars()
        .all()
    )
    if not trips:
        ctx.say(_("Kamu belum punya trip. Mulai dengan /trip new"))
        return
    ctx.say("\n\n".join([await _trip_summary(ctx, t) for t in trips[:10]]))


async def _set_status(ctx: Ctx, jastiper: Jastiper, args: list[str], status: str) -> None:
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    if trip is None:
        return
    trip.status = status
    audit(ctx, f"trip.{status}", trip)
    if status == TripStatus.OPEN.value:
        ctx.say(_("Trip {code} dibuka lagi: pembeli bisa memesan."), code=trip.code)
    else:
        ctx.say(_("Trip {code} ditutup: tidak ada pesanan baru."), code=trip.code)


async def cmd_close(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Stops new orders."""
    await _set_status(ctx, jastiper, args, TripStatus.CLOSED.value)


async def cmd_open(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Reopens a trip."""
    await _set_status(ctx, jastiper, args, TripStatus.OPEN.value)


# --- the /trip new wizard -----------------------------------------------------------------


async def on_wizard_text(ctx: Ctx) -> None:
    """One answer of the new-trip wizard."""
    jastiper = await is_jastiper(ctx)
    if jastiper is None:
        await menu.show_menu(ctx)
        return
    text = " ".join(ctx.incoming.text.split())
    wizard = dict(ctx.data.get("wizard") or {})
    state = ctx.conversation.state
    if state == S.T_TITLE:
        if not 3 <= len(text) <= 100:
            ctx.say(_("Judulnya 3 sampai 100 huruf ya."))
            return
        wizard["title"] = text
        ctx.fire("ask_dest")
        ctx.say(_("Tujuannya ke mana? (contoh: Tokyo, Jepang)"))
    elif state == S.T_DEST:
        if not 2 <= len(text) <= 100:
            ctx.say(_("Tulis kota atau negara tujuannya."))
            return
        wizard["destination"] = text
        ctx.fire("ask_close")
        ctx.say(_("Kapan pesanan ditutup? (contoh: 20-12-2026)"))
    elif state == S.T_CLOSE:
        day = parse_date(text, ctx.now.date())
        if day is None or day < ctx.now.date():
            ctx.say(
                _("Tanggalnya kurang pas. Tulis seperti 20-12-2026, dan jangan tanggal lampau.")
            )
            return
        wizard["closes"] = day.isoformat()
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
    elif state == S.T_DP:
        if not re.fullmatch(r"\d{1,2}%?", text) or not 10 <= int(text.rstrip("%")) <= 90:
            ctx.say(_("DP-nya berapa persen? Tulis angka 10 sampai 90, contoh: 50"))
            return
        wizard["dp"] = int(text.rstrip("%"))
        ctx.fire("ask_fee")
        _ask_fee(ctx)
    elif state == S.T_FEE:
        fee = _parse_fee(text)
        if fee is None:
            ctx.say(_("Tulis fee per barang (contoh: 10rb) atau persen (contoh: 5%), atau 0."))
            return
        wizard["fee"] = fee
        ctx.fire("ask_bank")
        _ask_bank(ctx, jastiper)
    elif state == S.T_BANK:
        m = re.fullmatch(
            r"(\w[\w ]{1,20}?)\s+([\d\- ]{6,30})\s+(?:a\.?n\.?|an)\s+(.{2,100})",
            text,
            re.IGNORECASE,
        )
        if not m:
            ctx.say(_("Tulis seperti: BCA 1234567890 a.n. Tina Wijaya"))
            return
        jastiper.bank_name = m.group(1).strip().upper()
        jastiper.bank_account_number = re.sub(r"[\s\-]", "", m.group(2))
        jastiper.bank_account_name = m.group(3).strip()
        ctx.remember(wizard=wizard)
        await _create_trip(ctx, jastiper)
        return
    ctx.remember(wizard=wizard)


def _parse_fee(text: str) -> dict[str, int] | None:
    text = text.strip().lower()
    if text in ("0", "-", "tidak", "no", "none"):
        return {"per_item": 0, "percent": 0}
    m = re.fullmatch(r"(\d{1,2})\s*%", text)
    if m:
        return {"per_item": 0, "percent": int(m.group(1))}
    amount = parse_price(text)
    return {"per_item": amount, "percent": 0} if amount is not None else None


def _ask_fee(ctx: Ctx) -> None:
    ctx.reply(
        replies.buttons(
            ctx.t(_("Fee jastip per barang (contoh: 10rb) atau persen (contoh: 5%)?")),
            [(ctx.t(_("Tanpa fee")), JastiperTap("fee", "0"))],
        )
    )


def _ask_bank(ctx: Ctx, jastiper: Jastiper) -> None:
    if jastiper.bank_account_number:
        saved = f"{jastiper.bank_name} {jastiper.bank_account_number}"
        ctx.reply(
            replies.buttons(
                ctx.t(
                    _(
                        "Transfer ke {account} a.n. {holder}? Atau ketik rekening lain "
                        "(contoh: BCA 1234567890 a.n. Tina Wijaya)."
                    ),
                    account=saved,
                    holder=jastiper.bank_account_name or "-",
                ),
                [(ctx.t(_("Pakai rekening ini")), JastiperTap("bank", "saved"))],
            )
        )
    else:
        ctx.say(_("Rekening untuk transfer pembeli? (contoh: BCA 1234567890 a.n. Tina Wijaya)"))


async def on_tap(ctx: Ctx) -> None:
    """Wizard buttons: payment type, no fee, saved bank account."""
    tap = ctx.incoming.tap
    assert isinstance(tap, JastiperTap)
    jastiper = await is_jastiper(ctx)
    if jastiper is None:
        await menu.not_understood(ctx)
        return
    wizard = dict(ctx.data.get("wizard") or {})
    state = ctx.conversation.state
    if tap.action == "pay" and state == S.T_PAYMENT:
        wizard["payment"] = "dp" if tap.value == "dp" else "full"
        ctx.remember(wizard=wizard)
        if tap.value == "dp":
            ctx.fire("ask_dp")
            ctx.say(_("DP-nya berapa persen? Tulis angka 10 sampai 90, contoh: 50"))
        else:
            ctx.fire("ask_fee")
            _ask_fee(ctx)
    elif tap.action == "fee" and state == S.T_FEE:
        wizard["fee"] = {"per_item": 0, "percent": 0}
        ctx.remember(wizard=wizard)
        ctx.fire("ask_bank")
        _ask_bank(ctx, jastiper)
    elif tap.action == "bank" and state == S.T_BANK and jastiper.bank_account_number:
        await _create_trip(ctx, jastiper)
    elif tap.action == "stock" and state == S.P_STOCK:
        wiz = dict(ctx.data.get("pwiz") or {})
        wiz["stock"] = None
        await _finish_product_wizard(ctx, jastiper, wiz)
    elif tap.action == "addto" and ctx.data.get("pending_product"):
        trip = await own_trip(ctx, jastiper, tap.value)
        if trip is not None:
            pending = ctx.data["pending_product"]
            ctx.forget("pending_product")
            await _create_product(ctx, trip, pending)
    else:
        ctx.say(_("Tombol itu sudah tidak berlaku. Ketik /help."))


async def _new_code(ctx: Ctx, title: str) -> str:
    letters = re.sub(r"[^A-Z]", "", title.upper().replace("JASTIP", ""))[:4] or "TRIP"
    for _attempt in range(50):
        code = f"{letters}{secrets.randbelow(90) + 10}"
        taken = (await ctx.session.execute(select(Trip.id).where(Trip.code == code))).first()
        if taken is None:
            return code
    return "T" + secrets.token_hex(4).upper()


async def _create_trip(ctx: Ctx, jastiper: Jastiper) -> None:
    w = ctx.data.get("wizard") or {}
    fee = w.get("fee") or {"per_item": 0, "percent": 0}
    trip = Trip(
        jastiper_id=jastiper.id,
        code=await _new_code(ctx, w.get("title", "")),
        title=w.get("title", "Jastip"),
        destination=w.get("destination", "-"),
        closes_on=dt.date.fromisoformat(w["closes"]) if w.get("closes") else None,
        status=TripStatus.OPEN.value,
        payment_type=w.get("payment", PaymentType.FULL.value),
        dp_percent=w.get("dp"),
        fee_per_item=fee["per_item"],
        fee_percent=fee["percent"],
        bank_name=jastiper.bank_name,
        bank_account_number=jastiper.bank_account_number,
        bank_account_name=jastiper.bank_account_name,
    )
    ctx.session.add(trip)
    await ctx.session.flush()
    audit(ctx, "trip.create", trip, code=trip.code)
    ctx.forget("wizard")
    ctx.fire("finish")
    settings = ctx.services.settings
    from admin_web.public import join_link

    link = join_link(settings.wa_business_number, trip.code)
    ctx.say(
        _(
            "Trip *{title}* dibuka! Kode: *{code}*\n\n"
            "Link gabung WhatsApp: {link}\n"
            "Halaman trip: {page}\n\n"
            "Tambah produk: kirim foto dengan caption /add nama | harga | stok"
        ),
        title=trip.title,
        code=trip.code,
        link=link,
        page=f"{settings.public_base_url}/t/{trip.code}",
    )
    if ctx.services.media is not None:
        key = f"qr/{trip.code}-{secrets.token_hex(4)}.png"
        await ctx.services.media.put(key, _qr_png(link), "image/png")
        ctx.reply(replies.image(key, ctx.t(_("QR untuk story Instagram: {code}"), code=trip.code)))


def _qr_png(data: str) -> bytes:
    import qrcode

    image = qrcode.make(data, box_size=10, border=3)
    buf = io.BytesIO()
    image.save(buf)
    return buf.getvalue()


# --- products ----------------------------------------------------------------------------


async def on_add_photo(ctx: Ctx) -> None:
    """A photo captioned ``/add name | price | stock`` adds a product to the open trip."""
    jastiper = await is_jastiper(ctx)
    if jastiper is None:
        await menu.not_understood(ctx)
        return
    if ctx.incoming.upload_error or not ctx.incoming.media_key:
        ctx.say(_("Fotonya tidak bisa dipakai (JPG/PNG, maks. 5 MB). Kirim ulang ya."))
        return
    body = ctx.incoming.caption or ""
    body = body.split(None, 1)[1] if len(body.split(None, 1)) > 1 else ""
    if not body.strip():  # a photo captioned just /add: ask the rest
        ctx.enter(flow)
        ctx.remember(pwiz={"key": ctx.incoming.media_key})
        ctx.fire("ask_product_name")
        ctx.say(_("Nama produknya?"))
        return
    parts = [p.strip() for p in body.split("|")]
    if len(parts) < 2 or not parts[0]:
        ctx.say(
            _("Format: foto dengan caption /add Kit Kat Matcha | 85rb | 20 (stok boleh kosong)")
        )
        return
    price = parse_price(parts[1])
    if price is None:
        ctx.say(
            _("Harga \u201c{price}\u201d tidak bisa dibaca. Contoh: 85000, 85.000, 85rb"),
            price=parts[1][:30],
        )
        return
    stock: int | None = None
    if len(parts) > 2 and parts[2]:
        if not re.fullmatch(r"\d{1,6}", parts[2]):
            ctx.say(_("Stok harus angka 0 atau lebih (kosongkan untuk tanpa batas)."))
            return
        stock = int(parts[2])
    pending = {
        "key": ctx.incoming.media_key,
        "name": parts[0][:200],
        "price": price,
        "stock": stock,
    }
    await _place_product(ctx, jastiper, pending)


async def _place_product(ctx: Ctx, jastiper: Jastiper, pending: dict[str, Any]) -> None:
    """Adds the product to the open trip, asking which one when several are open."""
    open_trips = (
        (
            await ctx.session.execute(
                select(Trip)
                .where(Trip.jastiper_id == jastiper.id, Trip.status == TripStatus.OPEN.value)
                .order_by(Trip.id.desc())
            )
        )
        .scalars()
        .all()
    )
    if not open_trips:
        ctx.say(_("Belum ada trip yang buka. Mulai dengan /trip new"))
        return
    chosen = next((t for t in open_trips if t.code == ctx.data.get("jtrip")), None)
    if chosen is None and len(open_trips) > 1:
        ctx.remember(pending_product=pending)
        ctx.reply(
            replies.list_rows(
                ctx.t(_("Tambahkan *{name}* ke trip yang mana?"), name=pending["name"]),
                ctx.t(_("Pilih trip")),
                [(t.title, t.code, JastiperTap("addto", t.code)) for t in open_trips[:10]],
            )
        )
        return
    await _create_product(ctx, chosen or open_trips[0], pending)


async def _create_product(ctx: Ctx, trip: Trip, pending: dict[str, Any]) -> None:
    position = (
        await ctx.session.execute(
            select(func.coalesce(func.max(Product.position), 0)).where(Product.trip_id == trip.id)
        )
    ).scalar_one() + 1
    product = Product(
        trip_id=trip.id,
        position=position,
        name=pending["name"],
        price=pending["price"],
        stock=pending["stock"],
        image_key=pending["key"],
    )
    ctx.session.add(product)
    await ctx.session.flush()
    ctx.remember(jtrip=trip.code)
    audit(ctx, "product.add", trip, product=product.id, price=product.price, stock=product.stock)
    stock_text = ctx.t(_("tanpa batas")) if product.stock is None else str(product.stock)
    ctx.say(
        _("Produk #{n} ditambahkan ke {code}: *{name}* — {price}, stok {stock}."),
        n=position,
        code=trip.code,
        name=product.name,
        price=ctx.t.money(product.price),
        stock=stock_text,
    )


async def cmd_add(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """``/add`` typed alone starts the product wizard with the photo."""
    ctx.enter(flow)
    ctx.remember(pwiz={})
    ctx.fire("ask_photo")
    ctx.say(_("Kirim foto produknya (tanpa caption). Ketik /cancel untuk batal."))


async def on_product_photo(ctx: Ctx) -> None:
    """The product wizard's photo."""
    if ctx.incoming.upload_error or not ctx.incoming.media_key:
        ctx.say(_("Fotonya tidak bisa dipakai (JPG/PNG, maks. 5 MB). Kirim ulang ya."))
        return
    ctx.remember(pwiz={"key": ctx.incoming.media_key})
    ctx.fire("ask_product_name")
    ctx.say(_("Nama produknya?"))


async def on_product_text(ctx: Ctx) -> None:
    """The product wizard's name, price and stock."""
    jastiper = await is_jastiper(ctx)
    if jastiper is None:
        await menu.show_menu(ctx)
        return
    text = " ".join(ctx.incoming.text.split())
    wiz = dict(ctx.data.get("pwiz") or {})
    state = ctx.conversation.state
    if state == S.P_NAME:
        if not 2 <= len(text) <= 200:
            ctx.say(_("Nama produknya 2 sampai 200 huruf ya."))
            return
        wiz["name"] = text
        ctx.remember(pwiz=wiz)
        ctx.fire("ask_product_price")
        ctx.say(_("Harganya? (contoh: 85000, 85.000, 85rb)"))
    elif state == S.P_PRICE:
        price = parse_price(text)
        if price is None:
            ctx.say(
                _("Harga \u201c{price}\u201d tidak bisa dibaca. Contoh: 85000, 85.000, 85rb"),
                price=text[:30],
            )
            return
        wiz["price"] = price
        ctx.remember(pwiz=wiz)
        ctx.fire("ask_product_stock")
        ctx.reply(
            replies.buttons(
                ctx.t(_("Stoknya berapa? Ketik angkanya, atau ketuk Tanpa batas.")),
                [(ctx.t(_("Tanpa batas")), JastiperTap("stock", "none"))],
            )
        )
    elif state == S.P_STOCK:
        if not re.fullmatch(r"\d{1,6}", text):
            ctx.say(_("Stok harus angka 0 atau lebih (kosongkan untuk tanpa batas)."))
            return
        wiz["stock"] = int(text)
        await _finish_product_wizard(ctx, jastiper, wiz)


async def _finish_product_wizard(ctx: Ctx, jastiper: Jastiper, wiz: dict[str, Any]) -> None:
    ctx.forget("pwiz")
    ctx.fire("finish")
    await _place_product(
        ctx,
        jastiper,
        {
            "key": wiz.get("key"),
            "name": wiz["name"],
            "price": wiz["price"],
            "stock": wiz.get("stock"),
        },
    )


async def cmd_products(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Numbered products of a trip (the numbers /stock, /price and /hide use)."""
    trip = await own_trip(ctx, jastiper, args[0] if args else ctx.data.get("jtrip"))
    if trip is None:
        return
    ctx.remember(jtrip=trip.code)
    products = (
        (
            await ctx.session.execute(
                select(Product).where(Product.trip_id == trip.id).order_by(Product.position)
            )
        )
        .scalars()
        .all()
    )
    if not products:
        ctx.say(_("Belum ada produk di {code}."), code=trip.code)
        return
    lines = []
    for p in products:
        stock = "∞" if p.stock is None else str(p.stock)
        hidden = " " + ctx.t(_("(disembunyikan)")) if p.hidden else ""
        lines.append(f"#{p.position} {p.name} — {ctx.t.money(p.price)} · {stock}{hidden}")
    ctx.say(_("Produk {code}:\n{lines}"), code=trip.code, lines="\n".join(lines))


async def _numbered(ctx: Ctx, jastiper: Jastiper, ref: str | None) -> Product | None:
    code = ctx.data.get("jtrip")
    if not code:
        ctx.say(_("Lihat dulu daftarnya dengan /products KODE, lalu pakai nomornya."))
        return None
    trip = await own_trip(ctx, jastiper, code)
    if trip is None:
        return None
    if not ref or not ref.lstrip("#").isdigit():
        ctx.say(_("Sebutkan nomor produknya dari /products, contoh: /stock 3 10"))
        return None
    product = (
        await ctx.session.execute(
            select(Product).where(
                Product.trip_id == trip.id, Product.position == int(ref.lstrip("#"))
            )
        )
    ).scalar_one_or_none()
    if product is None:
        ctx.say(_("Produk #{n} tidak ada di {code}."), n=ref.lstrip("#"), code=trip.code)
    return product


async def cmd_stock(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Sets a product's stock."""
    product = await _numbered(ctx, jastiper, args[0] if args else None)
    if product is None:
        return
    if len(args) < 2 or not re.fullmatch(r"\d{1,6}", args[1]):
        ctx.say(_("Stok harus angka 0 atau lebih, contoh: /stock 3 10"))
        return
    product.stock = int(args[1])
    audit(ctx, "product.stock", None, product=product.id, stock=product.stock)
    ctx.say(_("Stok *{name}* sekarang {n}."), name=product.name, n=product.stock)


async def cmd_price(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Sets a product's price."""
    product = await _numbered(ctx, jastiper, args[0] if args else None)
    if product is None:
        return
    price = parse_price(" ".join(args[1:])) if len(args) > 1 else None
    if price is None:
        ctx.say(_("Harga tidak bisa dibaca. Contoh: /price 3 90000 atau /price 3 90rb"))
        return
    product.price = price
    audit(ctx, "product.price", None, product=product.id, price=price)
    ctx.say(_("Harga *{name}* sekarang {price}."), name=product.name, price=ctx.t.money(price))


async def cmd_hide(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Hides a product from the catalogue."""
    product = await _numbered(ctx, jastiper, args[0] if args else None)
    if product is None:
        return
    product.hidden = True
    audit(ctx, "product.hide", None, product=product.id)
    ctx.say(_("*{name}* disembunyikan dari katalog."), name=product.name)


# --- orders ------------------------------------------------------------------------------

ORDER_FILTERS = {
    "unpaid": (OrderStatus.AWAITING_PAYMENT.value, OrderStatus.AWAITING_BALANCE.value),
    "proof": (OrderStatus.PROOF_SUBMITTED.value,),
    "paid": (OrderStatus.PAID.value, OrderStatus.DP_PAID.value, OrderStatus.BOUGHT.value),
    "shipped": (OrderStatus.SHIPPED.value, OrderStatus.DONE.value),
}


async def cmd_orders(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Lists a trip's orders, optionally filtered."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    if trip is None:
        return
    stmt = select(Order).where(Order.trip_id == trip.id).order_by(Order.id.desc()).limit(30)
    if len(args) > 1:
        wanted = ORDER_FILTERS.get(args[1].lower())
        if wanted is None:
            ctx.say(_("Filter yang ada: unpaid, paid, proof, shipped."))
            return
        stmt = stmt.where(Order.status.in_(wanted))
    orders = (await ctx.session.execute(stmt)).scalars().all()
    if not orders:
        ctx.say(_("Tidak ada pesanan di {code}."), code=trip.code)
        return
    from flows.orders import status_text

    lines = [f"{o.code} · {ctx.t.money(o.total)} · {status_text(ctx, o)}" for o in orders]
    ctx.say(_("Pesanan {code}:\n{lines}"), code=trip.code, lines="\n".join(lines))


async def cmd_order(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """One order with the buyer's name and shipping address."""
    found = await own_order(ctx, jastiper, args[0] if args else None)
    if found is None:
        return
    order, _trip = found
    buyer = await ctx.session.get(User, order.user_id)
    from flows.orders import status_text

    address = "-"
    if order.address_enc:
        a = ctx.services.cipher.decrypt_json(order.address_enc)
        if a:
            address = (
                f"{a.get('recipient')} ({a.get('phone')}), {a.get('street')}, "
                f"{a.get('city')} {a.get('postal')}"
            )
    items = "\n".join(
        f"• {i.quantity}× {i.name}" + (f" ({i.note})" if i.note else "") for i in order.items
    )
    ctx.say(
        _("*{code}* — {status}\nPembeli: {buyer}\n{items}\nTotal: {total}\nAlamat: {address}"),
        code=order.code,
        status=status_text(ctx, order),
        buyer=(buyer.display_name or buyer.profile_name or "-") if buyer else "-",
        items=items,
        total=ctx.t.money(order.total),
        address=address,
    )


async def _advance(
    ctx: Ctx,
    jastiper: Jastiper,
    args: list[str],
    *,
    allowed: tuple[str, ...],
    to: str,
    buyer_text: str,
    tracking: bool = False,
) -> None:
    found = await own_order(ctx, jastiper, args[0] if args else None)
    if found is None:
        return
    order, trip = found
    if tracking and len(args) < 2:
        ctx.say(_("Sertakan nomor resinya, contoh: /ship {code} JNE123456"), code=order.code)
        return
    if order.status not in allowed:
        from flows.orders import status_text

        ctx.say(
            _("Pesanan {code} sedang \u201c{status}\u201d, jadi belum bisa diubah ke sini."),
            code=order.code,
            status=status_text(ctx, order),
        )
        return
    order.status = to
    if tracking:
        order.tracking_number = args[1][:100]
    audit(ctx, f"order.{to}", trip, order=order.code)
    buyer = await ctx.session.get(User, order.user_id)
    if buyer is not None:
        bt = ctx.translator_for(buyer)
        ctx.send_to(
            buyer,
            replies.text(bt(buyer_text, code=order.code, tracking=order.tracking_number or "")),
        )
    ctx.say(_("Pesanan {code} diperbarui dan pembeli sudah dikabari."), code=order.code)


async def cmd_paid(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Confirms a payment received another way."""
    await _advance(
        ctx,
        jastiper,
        args,
        allowed=(
            OrderStatus.AWAITING_PAYMENT.value,
            OrderStatus.PROOF_SUBMITTED.value,
            OrderStatus.AWAITING_BALANCE.value,
        ),
        to=OrderStatus.PAID.value,
        buyer_text=_(
            "Pembayaran untuk pesanan {code} sudah dikonfirmasi jastiper. Terima kasih! 🙏"
        ),
    )


async def cmd_bought(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """The goods are bought."""
    await _advance(
        ctx,
        jastiper,
        args,
        allowed=(OrderStatus.PAID.value, OrderStatus.DP_PAID.value),
        to=OrderStatus.BOUGHT.value,
        buyer_text=_("Kabar baik! Barang untuk pesanan {code} sudah dibelikan jastiper. 🛍️"),
    )


async def cmd_ship(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Shipped, with a tracking number."""
    await _advance(
        ctx,
        jastiper,
        args,
        allowed=(OrderStatus.PAID.value, OrderStatus.BOUGHT.value),
        to=OrderStatus.SHIPPED.value,
        buyer_text=_("Pesanan {code} sudah dikirim! Nomor resi: {tracking} 📦"),
        tracking=True,
    )


async def cmd_done(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Completed."""
    await _advance(
        ctx,
        jastiper,
        args,
        allowed=(OrderStatus.SHIPPED.value,),
        to=OrderStatus.DONE.value,
        buyer_text=_("Pesanan {code} selesai. Terima kasih sudah belanja! 💚"),
    )


COMMANDS = {
    "/help": cmd_help,
    "/bantuan": cmd_help,
    "/cancel": cmd_cancel,
    "/batal": cmd_cancel,
    "/trip": cmd_trip,
    "/add": cmd_add,
    "/trips": cmd_trips,
    "/close": cmd_close,
    "/open": cmd_open,
    "/products": cmd_products,
    "/stock": cmd_stock,
    "/price": cmd_price,
    "/hide": cmd_hide,
    "/orders": cmd_orders,
    "/order": cmd_order,
    "/paid": cmd_paid,
    "/bought": cmd_bought,
    "/ship": cmd_ship,
    "/done": cmd_done,
}


def is_command(kind: Kind, text: str) -> bool:
    return kind is Kind.TEXT and text.strip().startswith("/")


flow = Flow(
    "jastiper",
    State,
    TRANSITIONS,
    State.IDLE,
    on_text={
        **{s: on_wizard_text for s in (S.T_TITLE, S.T_DEST, S.T_CLOSE, S.T_DP, S.T_FEE, S.T_BANK)},
        **{s: on_product_text for s in (S.P_NAME, S.P_PRICE, S.P_STOCK)},
    },
    on_media={S.P_PHOTO: on_product_photo},
    on_tap=on_tap,
)


# --- DP balance, recap, questions, registration ---------------------------------------------


async def cmd_balance(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Asks every buyer whose DP is paid for the balance, with the breakdown."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    if trip is None:
        return
    if trip.payment_type != PaymentType.DP.value:
        ctx.say(_("Trip {code} bukan trip DP: pembeli sudah bayar lunas."), code=trip.code)
        return
    orders = (
        (
            await ctx.session.execute(
                select(Order).where(
                    Order.trip_id == trip.id, Order.status == OrderStatus.DP_PAID.value
                )
            )
        )
        .scalars()
        .all()
    )
    for order in orders:
        dp_paid = order.amount_due - order.unique_cents
        unique = secrets.randbelow(499) + 1
        balance = order.total - dp_paid
        order.amount_due = balance + unique
        order.unique_cents = unique
        order.status = OrderStatus.AWAITING_BALANCE.value
        order.payment_deadline = ctx.now + dt.timedelta(hours=trip.payment_window_hours)
        buyer = await ctx.session.get(User, order.user_id)
        if buyer is None:
            continue
        bt = ctx.translator_for(buyer)
        ctx.send_to(
            buyer,
            replies.text(
                bt(
                    _(
                        "Barang untuk pesanan {code} sudah dibelikan! Rincian:\n"
                        "Subtotal: {subtotal}\nFee jastip: {fee}\nOngkir: {shipping}\n"
                        "Total: {total}\n"
                        "DP sudah dibayar: {dp}\n\n"
                        "Transfer pelunasan *tepat {amount}* ke {bank} {account} a.n. {holder} "
                        "sebelum {deadline}, lalu kirim foto buktinya di sini."
                    ),
                    code=order.code,
                    subtotal=bt.money(order.subtotal),
                    fee=bt.money(order.fee),
                    shipping=bt.money(order.shipping),
                    total=bt.money(order.total),
                    dp=bt.money(dp_paid),
                    amount=bt.money(order.amount_due),
                    bank=trip.bank_name or "-",
                    account=trip.bank_account_number or "-",
                    holder=trip.bank_account_name or "-",
                    deadline=bt.datetime(order.payment_deadline),
                )
            ),
        )
    audit(ctx, "trip.balance", trip, orders=len(orders))
    ctx.say(_("Tagihan pelunasan dikirim ke {n} pembeli."), n=len(orders))


async def cmd_recap(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """A spreadsheet (XLSX, or CSV on request) with one row per order item."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    if trip is None:
        return
    as_csv = len(args) > 1 and args[1].lower() == "csv"
    rows = await recap_rows(ctx, trip)
    if not rows:
        ctx.say(_("Tidak ada pesanan di {code}."), code=trip.code)
        return
    header = [ctx.t(h) for h in RECAP_HEADER]
    data, mime, ext = _csv(header, rows) if as_csv else _xlsx(header, rows, trip.code)
    key = f"recaps/{trip.code}-{secrets.token_hex(6)}.{ext}"
    if ctx.services.media is None:
        return
    await ctx.services.media.put(key, data, mime)
    audit(ctx, "trip.recap", trip, format=ext)
    payload = replies.document(
        key,
        f"rekap-{trip.code}.{ext}",
        ctx.t(_("Rekap {code}: {n} baris."), code=trip.code, n=len(rows)),
    )
    payload["mime_type"] = mime
    ctx.reply(payload)


RECAP_HEADER = (
    _("Pesanan"),
    _("Status"),
    _("Pembeli"),
    _("Produk"),
    _("Jumlah"),
    _("Harga"),
    _("Catatan"),
    _("Penerima"),
    _("HP penerima"),
    _("Alamat"),
)
_LIVE = (OrderStatus.CANCELLED.value, OrderStatus.EXPIRED.value)


async def recap_rows(ctx: Ctx, trip: Trip) -> list[list[Any]]:
    from flows.orders import status_text
    from storage.models import OrderItem

    result = await ctx.session.execute(
        select(Order, OrderItem, User)
        .join(OrderItem, OrderItem.order_id == Order.id)
        .join(User, User.id == Order.user_id)
        .where(Order.trip_id == trip.id, Order.status.not_in(_LIVE))
        .order_by(Order.id, OrderItem.id)
    )
    rows = []
    for order, item, buyer in result.all():
        address = ctx.services.cipher.decrypt_json(order.address_enc) if order.address_enc else {}
        rows.append(
            [
                order.code,
                status_text(ctx, order),
                buyer.display_name or buyer.profile_name or "",
                item.name,
                item.quantity,
                item.unit_price,
                item.note or "",
                address.get("recipient", ""),
                address.get("phone", ""),
                ", ".join(
                    x
                    for x in (address.get("street"), address.get("city"), address.get("postal"))
                    if x
                ),
            ]
        )
    return rows


def _xlsx(header: list[str], rows: list[list[Any]], title: str) -> tuple[bytes, str, str]:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    for column in sheet.columns:
        width = max(len(str(c.value or "")) for c in column)
        sheet.column_dimensions[column[0].column_letter].width = min(50, max(10, width + 2))
    buf = io.BytesIO()
    book.save(buf)
    mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return buf.getvalue(), mime, "xlsx"


def _csv(header: list[str], rows: list[list[Any]]) -> tuple[bytes, str, str]:
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    # Meta takes text/plain documents (not text/csv); the .csv name tells spreadsheets
    return buf.getvalue().encode("utf-8-sig"), "text/plain", "csv"


async def cmd_reply(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Answers a buyer's question by its reference."""
    from storage.models import Question

    if len(args) < 2:
        ctx.say(_("Format: /reply REF jawabanmu, contoh: /reply Q-AB12 Ada, ukuran M."))
        return
    question = (
        await ctx.session.execute(select(Question).where(Question.ref == args[0].upper()))
    ).scalar_one_or_none()
    trip = await ctx.session.get(Trip, question.trip_id) if question else None
    if question is None or trip is None or trip.jastiper_id != jastiper.id:
        ctx.say(_("Pertanyaan {ref} tidak ditemukan."), ref=args[0].upper()[:12])
        return
    buyer = await ctx.session.get(User, question.buyer_user_id)
    if buyer is None:
        return
    answer = " ".join(ctx.incoming.text.split(None, 2)[2:])[:1000]
    question.answered_at = ctx.now
    bt = ctx.translator_for(buyer)
    ctx.send_to(
        buyer,
        replies.text(
            bt(
                _("Jawaban jastiper untuk pertanyaan {ref}:\n{answer}"),
                ref=question.ref,
                answer=answer,
            )
        ),
    )
    audit(ctx, "question.reply", trip, ref=question.ref)
    ctx.say(_("Jawaban untuk {ref} sudah dikirim."), ref=question.ref)


async def on_question(ctx: Ctx) -> None:
    """TANYA <text>: a buyer asks the jastiper of their current trip."""

    text = " ".join(ctx.incoming.text.split()[1:])[:1000]
    if not text:
        ctx.say(_("Tulis pertanyaanmu setelah TANYA, contoh: TANYA ada ukuran M?"))
        return
    trip = await menu.current_trip(ctx)
    if trip is None:
        await menu.show_menu(ctx)
        return
    await relay_question(ctx, trip, text)


async def relay_question(ctx: Ctx, trip: Trip, text: str) -> None:
    """Passes a buyer's question to the trip's jastiper under a short reference."""
    from storage.models import Question

    ref = "Q-" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _c in range(4))
    ctx.session.add(Question(ref=ref, trip_id=trip.id, buyer_user_id=ctx.user.id, text=text))
    jastiper_row = await ctx.session.get(Jastiper, trip.jastiper_id)
    owner = await ctx.session.get(User, jastiper_row.user_id) if jastiper_row else None
    if owner is not None:
        jt = ctx.translator_for(owner)
        ctx.send_to(
            owner,
            replies.text(
                jt(
                    _(
                        "Pertanyaan {ref} dari {buyer} ({trip}):\n{text}\n\n"
                        "Balas: /reply {ref} jawabanmu"
                    ),
                    ref=ref,
                    buyer=ctx.user.display_name or ctx.user.profile_name or "-",
                    trip=trip.code,
                    text=text,
                )
            ),
        )
    ctx.say(
        _(
            "Pertanyaanmu sudah diteruskan ke jastiper (ref {ref}). Jawabannya akan "
            "muncul di sini."
        ),
        ref=ref,
    )


async def on_register(ctx: Ctx) -> None:
    """DAFTAR JASTIPER: asks to become a jastiper; an admin approves."""
    from storage.models import JastiperStatus

    existing = (
        await ctx.session.execute(select(Jastiper).where(Jastiper.user_id == ctx.user.id))
    ).scalar_one_or_none()
    if existing is not None and existing.status == JastiperStatus.APPROVED.value:
        ctx.say(_("Kamu sudah terdaftar sebagai jastiper. Ketik /help."))
        return
    if existing is None:
        name = ctx.user.display_name or ctx.user.profile_name or "Jastiper"
        ctx.session.add(
            Jastiper(user_id=ctx.user.id, name=name, status=JastiperStatus.PENDING.value)
        )
        audit(ctx, "jastiper.request")
    ctx.say(
        _(
            "Permintaanmu jadi jastiper sudah kami terima. Admin akan memeriksanya dan "
            "mengabarimu di sini."
        )
    )


COMMANDS.update({"/balance": cmd_balance, "/recap": cmd_recap, "/reply": cmd_reply})


async def cmd_broadcast(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """Estimates a broadcast (reach, free inside the window, paid, cost), then asks."""
    from bot import sends
    from flows.payloads import BroadcastTap
    from storage.models import Broadcast
    from storage.repo import broadcasts, messaging

    if args and args[0].lower() == "status":
        await _broadcast_status(ctx, jastiper)
        return
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    if trip is None:
        return
    text = " ".join(ctx.incoming.text.split(None, 2)[2:]).strip()
    segment = "all"
    if text.startswith("#"):  # /broadcast DEMO #unpaid Jangan lupa bayar ya
        first, _sep, rest = text.partition(" ")
        if first[1:].lower() not in broadcasts.SEGMENTS:
            ctx.say(_("Segmen yang ada: #all, #ordered, #noorder, #unpaid, #active."))
            return
        segment, text = first[1:].lower(), rest.strip()
    if not text:
        ctx.say(
            _("Tulis pesannya setelah kode trip, contoh: /broadcast {code} Produk baru!"),
            code=trip.code,
        )
        return
    templates = await sends.Templates.load(ctx.session, "broadcast")
    category = templates.category
    users = await broadcasts.subscribed_recipients(
        ctx.session, trip.id, segment, marketing=category == "marketing"
    )
    table = await messaging.rates(ctx.session, default=ctx.services.settings.cost_estimator_rate)
    est = broadcasts.estimate(
        users, rate=table[category], now=ctx.now, paid_possible=bool(templates)
    )
    row = Broadcast(
        trip_id=trip.id,
        created_by=ctx.user.id,
        text=text[:1000],
        segment=segment,
        status="draft",
        category=category,
        estimated_recipients=est.recipients,
        estimated_free=est.free,
        estimated_paid=est.paid,
        estimated_cost=est.cost,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    audit(ctx, "broadcast.estimate", trip, broadcast=row.id, recipients=est.recipients)
    choices = [(ctx.t(_("Kirim")), BroadcastTap("send", row.id))]
    if est.paid:
        choices.append((ctx.t(_("Gratis saja")), BroadcastTap("free", row.id)))
    choices.append((ctx.t(_("Batal")), BroadcastTap("cancel", row.id)))
    body = ctx.t(
        _(
            "Broadcast ke *{code}*:\n\u201c{text}\u201d\n\n"
            "Penerima: {n}\nGratis (dalam 24 jam): {free}\nBerbayar: {paid}\n"
            "Perkiraan biaya: {cost}"
        ),
        code=trip.code,
        text=row.text,
        n=est.recipients,
        free=est.free,
        paid=est.paid,
        cost=ctx.t.money(est.cost),
    )
    if est.skipped:
        body += "\n" + ctx.t(
            _("Tidak terkirim (di luar 24 jam, belum ada template): {n}"), n=est.skipped
        )
    if est.paid:
        body += "\n\n" + ctx.t(
            _("*Gratis saja* hanya mengirim ke {free} pembeli yang masih dalam 24 jam."),
            free=est.free,
        )
    ctx.reply(replies.buttons(body, choices))


async def _broadcast_status(ctx: Ctx, jastiper: Jastiper) -> None:
    """``/broadcast status``: the latest broadcasts with their delivery counts."""
    from storage.models import Broadcast
    from storage.repo import broadcasts

    rows = (
        await ctx.session.execute(
            select(Broadcast, Trip)
            .join(Trip, Trip.id == Broadcast.trip_id)
            .where(Trip.jastiper_id == jastiper.id, Broadcast.status != "draft")
            .order_by(Broadcast.id.desc())
            .limit(3)
        )
    ).all()
    if not rows:
        ctx.say(_("Belum ada broadcast yang dikirim."))
        return
    lines = []
    for broadcast, trip in rows:
        tally = await broadcasts.counts(ctx.session, broadcast.id)
        total = sum(tally.values())
        settled = total - tally.get("pending", 0) - tally.get("queued", 0)
        lines.append(
            ctx.t(
                _(
                    "#{id} {code} {kind}, {status} {progress}%: {queued} antre, {sent} "
                    "terkirim, {delivered} diterima, {read} dibaca, {failed} gagal, "
                    "{skipped} dilewati; biaya {cost}"
                ),
                id=broadcast.id,
                code=trip.code,
                kind=ctx.t(BROADCAST_KINDS.get(broadcast.kind, BROADCAST_KINDS["manual"])),
                status=ctx.t(BROADCAST_STATES.get(broadcast.status, BROADCAST_STATES["queued"])),
                progress=100 * settled // total if total else 0,
                queued=tally.get("pending", 0) + tally.get("queued", 0),
                sent=tally.get("sent", 0),
                delivered=tally.get("delivered", 0),
                read=tally.get("read", 0),
                failed=tally.get("failed", 0),
                skipped=tally.get("skipped", 0),
                cost=ctx.t.money(await broadcasts.metered_cost(ctx.session, broadcast.id)),
            )
        )
        for code, n in await broadcasts.failure_reasons(ctx.session, broadcast.id):
            reason = FAILURE_REASONS.get(code) if code is not None else None
            lines.append(
                f"  · {n}× "
                + (ctx.t(reason) if reason else ctx.t(_("kode {code}"), code=code or "?"))
            )
    ctx.say("\n".join(lines))


BROADCAST_KINDS = {
    "manual": _("broadcast"),
    "products": _("produk baru"),
    "summary": _("ringkasan"),
}
BROADCAST_STATES = {
    "queued": _("antre"),
    "dispatched": _("antre"),
    "sending": _("mengirim"),
    "done": _("selesai"),
    "cancelled": _("batal"),
}
# Meta's codes a jastiper meets most, in words
FAILURE_REASONS = {
    131026: _("nomor tidak bisa menerima pesan WhatsApp"),
    131047: _("di luar 24 jam, tanpa template"),
    131050: _("pembeli mematikan pesan promosi"),
    131049: _("dibatasi WhatsApp agar pembeli tidak kebanyakan promosi"),
    130472: _("nomor pembeli sedang dalam eksperimen WhatsApp"),
}


async def on_broadcast_tap(ctx: Ctx) -> None:
    """Confirms (queues) or cancels a broadcast draft; only its own jastiper can."""
    from flows.payloads import BroadcastTap
    from storage.models import Broadcast

    tap = ctx.incoming.tap
    assert isinstance(tap, BroadcastTap)
    jastiper = await is_jastiper(ctx)
    row = await ctx.session.get(Broadcast, tap.broadcast_id)
    trip = await ctx.session.get(Trip, row.trip_id) if row else None
    if jastiper is None or row is None or trip is None or trip.jastiper_id != jastiper.id:
        await menu.not_understood(ctx)
        return
    if row.status != "draft":
        ctx.say(_("Broadcast ini sudah diproses."))
        return
    if tap.action in ("send", "free"):
        row.status = "queued"
        row.allow_paid = tap.action == "send"
        audit(ctx, "broadcast.confirm", trip, broadcast=row.id, paid=row.allow_paid)
        ctx.say(
            _("Broadcast masuk antrean untuk {n} penerima. Kabarnya menyusul di sini."),
            n=row.estimated_recipients if row.allow_paid else row.estimated_free,
        )
    else:
        row.status = "cancelled"
        audit(ctx, "broadcast.cancel", trip, broadcast=row.id)
        ctx.say(_("Broadcast dibatalkan."))


COMMANDS["/broadcast"] = cmd_broadcast

SUMMARY_WORDS = {
    "daily": "daily",
    "harian": "daily",
    "weekly": "weekly",
    "mingguan": "weekly",
    "off": "off",
    "mati": "off",
}


async def cmd_summary(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """How often the trip's buyers get the automatic summary: daily, weekly or never."""
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    if trip is None:
        return
    every = SUMMARY_WORDS.get(args[1].lower()) if len(args) > 1 else None
    if every is None:
        ctx.say(
            _(
                "Ringkasan {code} sekarang: {every}. Ubah dengan /summary {code} "
                "harian, mingguan, atau off."
            ),
            code=trip.code,
            every=_summary_label(ctx, trip.summary_every),
        )
        return
    trip.summary_every = every
    audit(ctx, "trip.summary", trip, every=every)
    ctx.say(
        _("Ringkasan {code}: {every}. Dikirim pukul 19.00 WIB ke pembeli yang berlangganan."),
        code=trip.code,
        every=_summary_label(ctx, every),
    )


def _summary_label(ctx: Ctx, every: str) -> str:
    labels = {
        "daily": _("harian"),
        "weekly": _("mingguan (Minggu)"),
        "off": _("tidak dikirim"),
    }
    return ctx.t(labels.get(every, labels["off"]))


COMMANDS["/summary"] = cmd_summary

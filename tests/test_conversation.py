"""The conversation, polished from real use (issue #25): a jastiper is answered as a
jastiper, the trip a product goes to is never guessed, every list reaches every item,
people's own words are understood, and texts say what happened. Dialogues on both
databases, Indonesian and English where text is involved."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from bot import jobs, simulate
from bot.keys import MEDIA
from flows.jastiper.trips import parse_date
from storage.demo import DEMO_PHONE
from storage.models import Order, OrderStatus, Product, Trip, utcnow
from tests.conftest import Harness, _text_of, user_named
from tests.journeys import (
    CSV,
    bca,
    bought,
    english,
    joined,
    order_one,
    photo,
    second_trip,
    tina,
    told,
)


async def document(h: Harness, who: str, data: bytes, mime: str, filename: str) -> list[str]:
    media = h.fake.add_media(data, mime, filename=filename)
    sent = await h.send(
        simulate.media(who, "document", media, mime, filename=filename, name="Tina")
    )
    return [_text_of(m) for m in sent]


async def products_in(h: Harness, code: str) -> list[str]:
    async with h.db.read() as session:
        return list(
            (
                await session.execute(
                    select(Product.name)
                    .join(Trip, Trip.id == Product.trip_id)
                    .where(Trip.code == code)
                )
            ).scalars()
        )


# --- 2. a jastiper is never answered as a buyer ---------------------------------------


async def test_text_and_photos_in_the_product_wizard_stay_in_the_wizard(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, "/add")
    (hint,) = await tina(h, "bentar ya, fotonya nyusul")
    assert "Aku sedang menunggu foto produknya" in hint and "/cancel" in hint
    assert "Katalog" not in str(h.last_choices(DEMO_PHONE))  # not the buyer menu
    (asked,) = await photo(h, DEMO_PHONE)
    assert asked == "Nama produknya?"
    # a second photo at the name step is no payment proof
    (again,) = await photo(h, DEMO_PHONE)
    assert "menunggu nama produknya" in again and "pembayaran" not in again
    await tina(h, "Pocky Matcha")
    await tina(h, "25rb")
    (added,) = await tina(h, "Tanpa batas")  # the button's label typed
    assert "*Pocky Matcha* — Rp 25.000, stok tanpa batas" in added
    assert "Pocky Matcha" in await products_in(h, "DEMO")


async def test_a_jastipers_menu_is_their_own(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Kit Kat Matcha", "1")
    await photo(h, buyer)  # a transfer proof waits for Tina
    (menu,) = await tina(h, "MENU")
    assert "Menu jastiper" in menu and "Bukti transfer menunggu: 1" in menu
    assert "Pesanan hari ini: 1" in menu
    titles = [t for t, _id in h.last_choices(DEMO_PHONE)]
    assert "DEMO · Jastip Tokyo Demo" in titles and "Bukti menunggu (1)" in titles
    (waiting,) = await h.tap_title(DEMO_PHONE, "Bukti menunggu (1)")
    async with h.db.read() as session:
        code = (await session.execute(select(Order.code))).scalar_one()
    assert code in waiting
    await tina(h, "MENU")
    (today,) = await h.tap_title(DEMO_PHONE, "Pesanan hari ini (1)")
    assert code in today
    await tina(h, "MENU")
    (trip,) = await h.tap_title(DEMO_PHONE, "DEMO · Jastip Tokyo Demo")
    assert "Rekening:" in trip
    # a row of a menu sent before each row had its own action still answers
    (old_row,) = await h.tap(DEMO_PHONE, "jt:cmd:proofs", "Bukti menunggu (1)", name="Tina")
    assert code in old_row
    # the buyer's MENU is unchanged
    (buyer_menu,) = await h.say(buyer, "MENU")
    assert "Mau lihat apa?" in buyer_menu
    await english(h, DEMO_PHONE)
    (menu_en,) = await tina(h, "MENU")
    assert "Jastiper menu" in menu_en and "Proofs waiting: 1" in menu_en
    (unknown,) = await tina(h, "apa kabar")
    assert "Type MENU for your jastiper menu" in unknown


async def test_a_statement_sent_without_its_caption_is_offered_for_matching(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    sari, _code, amount = await bought(h, "Sari")
    (offer,) = await document(
        h, DEMO_PHONE, bca((amount, f"TRSF E-BANKING CR {amount}.00 SARI", "CR")), CSV, "m.csv"
    )
    assert "terbaca sebagai mutasi rekening: 1 transfer masuk" in offer
    assert "Aku hanya bisa menerima foto" not in offer
    assert [t for t, _id in h.last_choices(DEMO_PHONE)] == ["Ya, cocokkan", "Bukan mutasi"]
    async with h.db.read() as session:
        assert (await session.execute(select(Order.status))).scalar_one() == "awaiting_payment"
    media = h.app[MEDIA]
    assert len(await media.listing("exports/statements")) == 1  # kept for the tap
    (summary,) = await h.tap_title(DEMO_PHONE, "Ya, cocokkan")
    assert "Dikonfirmasi (1)" in summary
    assert "sudah dikonfirmasi jastiper" in told(h, sari)[-1]
    assert await media.listing("exports/statements") == []  # read, then not kept
    # declined: nothing matched, and the statement is not kept either
    await document(h, DEMO_PHONE, bca((50_000, "RINA", "CR")), CSV, "n.csv")
    (no,) = await h.tap_title(DEMO_PHONE, "Bukan mutasi")
    assert "tidak dicocokkan" in no
    assert await media.listing("exports/statements") == []
    # a kept file gone before the tap (a first try deleted it, then did not commit)
    await document(h, DEMO_PHONE, bca((50_000, "RINA", "CR")), CSV, "o.csv")
    for key, _at in await media.listing("exports/statements"):
        await media.delete(key)
    (gone,) = await h.tap_title(DEMO_PHONE, "Ya, cocokkan")
    assert "sudah tidak tersimpan" in gone and "/mutasi" in gone
    # a picture without a caption is explained, never taken for a payment proof
    (explained,) = await photo(h, DEMO_PHONE)
    assert "/add nama | harga | stok" in explained and "/mutasi" in explained
    # a buyer's spreadsheet is never taken as a statement; Sari has paid, so it is not
    # even downloaded (issue #21: no use for it) and she is told why
    (refused,) = await document(h, sari, b"a,b\n1,2\n", CSV, "x.csv")
    assert "belum punya pesanan yang menunggu pembayaran" in refused


# --- 1. the trip is never guessed ---------------------------------------------------------


async def test_a_new_trip_comes_first_when_add_asks_which_trip(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, "/products DEMO")  # DEMO is the trip last used
    await tina(h, "/trip new")
    await tina(h, "Jastip Bangkok")
    await tina(h, "Bangkok")
    (bad,) = await tina(h, "kapan-kapan")
    assert "20 Desember" in bad
    await tina(h, "20 Desember")
    await tina(h, "Lunas")  # the button's label typed
    await tina(h, "Tanpa fee")
    await tina(h, "Pakai rekening ini")
    async with h.db.read() as session:
        trip = (await session.execute(select(Trip).where(Trip.title == "Jastip Bangkok"))).one()[0]
    assert trip.closes_on is not None and (trip.closes_on.month, trip.closes_on.day) == (12, 20)
    (asked,) = await photo(h, DEMO_PHONE, "/add Mama Noodles | 15rb | 40")
    assert "Tambahkan *Mama Noodles* ke trip yang mana?" in asked
    choices = h.last_choices(DEMO_PHONE)
    assert choices[0] == (f"{trip.code} · Jastip Bangkok", f"jt:addto:{trip.code}")
    assert len(choices) == 2
    assert await products_in(h, trip.code) == []  # kept, not lost, while asking
    (added,) = await h.tap_title(DEMO_PHONE, f"{trip.code} · Jastip Bangkok")
    assert f"ditambahkan ke {trip.code} (Jastip Bangkok): *Mama Noodles*" in added
    assert await products_in(h, trip.code) == ["Mama Noodles"]
    # the wizard asks too; a trip named with /add CODE is not asked
    await tina(h, "/add")
    await photo(h, DEMO_PHONE)
    await tina(h, "Pocky")
    await tina(h, "20rb")
    (which,) = await tina(h, "5")
    assert "ke trip yang mana?" in which
    (typed,) = await tina(h, "demo")  # the trip's code typed instead of tapped
    assert "ditambahkan ke DEMO (Jastip Tokyo Demo): *Pocky*" in typed
    await tina(h, f"/add {trip.code}")
    await photo(h, DEMO_PHONE)
    await tina(h, "Thai Tea")
    await tina(h, "30rb")
    (direct,) = await tina(h, "10")
    assert f"ditambahkan ke {trip.code} (Jastip Bangkok): *Thai Tea*" in direct


async def test_add_asks_which_trip_in_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await second_trip(h)
    await english(h, DEMO_PHONE)
    await tina(h, "/trip SEOUL")
    await photo(h, DEMO_PHONE, "/add Honey Butter Chip | 45rb")
    rows = h.last_choices(DEMO_PHONE)
    assert rows[0] == ("SEOUL · Jastip Seoul", "jt:addto:SEOUL")
    sent = h.fake.sent_to(DEMO_PHONE)[-1]
    assert "used just now" in str(sent["interactive"]["action"]["sections"][0]["rows"][0])
    (added,) = await h.tap_title(DEMO_PHONE, "DEMO · Jastip Tokyo Demo")
    assert "added to DEMO (Jastip Tokyo Demo): *Honey Butter Chip*" in added


# --- 3. every list reaches every item -----------------------------------------------------


async def many_orders(h: Harness, buyer_name: str, n: int) -> list[str]:
    """``n`` orders of the demo trip for the buyer, oldest first (their codes)."""
    codes = [f"JP-T{i:04d}" for i in range(n)]
    async with h.db.transaction() as session:
        user_id = await user_named(session, buyer_name)
        trip_id = (await session.execute(select(Trip.id))).scalar_one()
        for i, code in enumerate(codes):
            session.add(
                Order(
                    code=code,
                    trip_id=trip_id,
                    user_id=user_id,
                    status="awaiting_payment",
                    subtotal=10_000 + i,
                    total=10_000 + i,
                    amount_due=10_000 + i,
                    jastiper_notified_at=utcnow(),
                )
            )
    return codes


async def test_pesanan_pages_reach_every_order(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    codes = await many_orders(h, "Sari", 12)
    await h.say(buyer, "PESANAN")
    first = [t for t, _id in h.last_choices(buyer)]
    assert len(first) == 9 and first[-1] == "Berikutnya ▶"
    (second,) = await h.tap_title(buyer, "Berikutnya ▶")
    assert "Halaman 2" in second
    rest = [t for t, _id in h.last_choices(buyer)]
    assert rest[-1] == "◀ Sebelumnya" and len(rest) == 5
    seen = {t.split(" · ")[0] for t in first + rest}
    assert set(codes) <= seen
    await english(h, buyer)
    await h.say(buyer, "ORDERS")
    assert h.last_choices(buyer)[-1][0] == "Next ▶"


async def test_jastiper_lists_page_and_name_buyers_and_amounts(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await joined(h, "Sari")
    codes = await many_orders(h, "Sari", 12)
    (page1,) = await tina(h, "/orders DEMO")
    assert "JP-T0011 · Sari · Rp 10.011 · Menunggu pembayaran" in page1
    assert "JP-T0001" not in page1
    (page2,) = await h.tap_title(DEMO_PHONE, "Berikutnya ▶")
    assert all(code in page2 for code in codes[:2])
    assert [t for t, _id in h.last_choices(DEMO_PHONE)] == ["◀ Sebelumnya"]
    # /products: sold out in words, and pages past ten
    async with h.db.transaction() as session:
        await session.execute(update(Product).where(Product.position == 2).values(stock=0))
    (listing,) = await tina(h, "/products DEMO")
    assert "#2 Kit Kat Matcha — Rp 85.000 · habis" in listing and "Halaman 1/2" in listing
    (more,) = await h.tap_title(DEMO_PHONE, "Berikutnya ▶")
    assert "#11 " in more and "#12 " in more
    # /trips: three a page
    for i in range(3):
        await second_trip(h, f"TRIP{i}", f"Trip {i}")
    (trips,) = await tina(h, "/trips")
    assert "Halaman 1/2" in trips
    (trips2,) = await h.tap_title(DEMO_PHONE, "Berikutnya ▶")
    assert "Halaman 2/2" in trips2


async def test_long_product_names_keep_the_tail_that_tells_them_apart(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    for size in ("60 ml", "20 ml"):
        await photo(
            h, DEMO_PHONE, f"/add Anessa Perfect UV Sunscreen Skincare Milk {size} | 300rb"
        )
    buyer = await joined(h)
    await h.say(buyer, "CARI anessa")
    titles = [t for t, _id in h.last_choices(buyer)]
    assert len(titles) == 2 and len(set(titles)) == 2
    assert all(len(t) <= 24 for t in titles)
    assert titles[0].endswith("60 ml") and titles[1].endswith("20 ml")


# --- 4. people's words ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("20 Desember", dt.date(2026, 12, 20)),
        ("20 Des 2026", dt.date(2026, 12, 20)),
        ("20 des", dt.date(2026, 12, 20)),
        ("Dec 20", dt.date(2026, 12, 20)),
        ("December 20, 2026", dt.date(2026, 12, 20)),
        ("20th December", dt.date(2026, 12, 20)),
        ("besok", dt.date(2026, 11, 30)),
        ("Tomorrow", dt.date(2026, 11, 30)),
        ("lusa", dt.date(2026, 12, 1)),
        ("5 Januari", dt.date(2027, 1, 5)),  # the next one
        ("1 Mei 2027", dt.date(2027, 5, 1)),
    ],
)
def test_dates_in_words(text: str, day: dt.date) -> None:
    assert parse_date(text, dt.date(2026, 11, 29)) == day


@pytest.mark.parametrize("text", ["31 Februari", "kapan-kapan", "20 Smarch", "Desember"])
def test_dates_that_are_not(text: str) -> None:
    assert parse_date(text, dt.date(2026, 11, 29)) is None


async def test_order_filters_in_the_chats_language(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Shiroi Koibito 12", "1")
    async with h.db.read() as session:
        code = (await session.execute(select(Order.code))).scalar_one()
    assert code in (await tina(h, "/orders DEMO belum bayar"))[0]
    assert "Tidak ada pesanan" in (await tina(h, "/orders DEMO lunas"))[0]
    await tina(h, f"/paid {code}")
    assert code in (await tina(h, "/orders DEMO lunas"))[0]
    assert "Tidak ada pesanan" in (await tina(h, "/orders DEMO dikirim"))[0]
    (unknown,) = await tina(h, "/orders DEMO kemarin")
    assert "Filter yang ada: belum bayar, bukti, lunas, dikirim." in unknown
    await english(h, DEMO_PHONE)
    assert code in (await tina(h, "/orders DEMO paid"))[0]
    assert "Filters: unpaid, proof, paid, shipped." in (await tina(h, "/orders DEMO x"))[0]


async def test_typed_skip_and_a_quantity_limit_that_names_the_stock(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        await session.execute(update(Product).where(Product.position == 2).values(stock=5))
    buyer = await joined(h)
    await h.say(buyer, "CARI kit kat matcha")
    await h.tap_title(buyer, "Kit Kat Matcha")
    await h.tap_title(buyer, "Pesan")
    (zero,) = await h.say(buyer, "0")
    assert "antara 1 dan 5" in zero and "20" not in zero
    (nine,) = await h.say(buyer, "9")
    assert "antara 1 dan 5" in nine
    await h.say(buyer, "2")
    (cart,) = await h.say(buyer, "Lewati")
    assert "Lewati" not in cart and "Kit Kat Matcha" in cart
    # in English the label is Skip
    await english(h, buyer)
    await h.say(buyer, "SEARCH shiroi")
    await h.tap_title(buyer, "Shiroi Koibito 12")
    await h.tap_title(buyer, "Order")
    await h.say(buyer, "1")
    (cart_en,) = await h.say(buyer, "*Skip*")
    assert "Skip" not in cart_en and "Shiroi Koibito 12" in cart_en


# --- 5. texts that say what happened ------------------------------------------------------


async def test_status_moves_say_old_and_new_and_the_trip_shows_its_setup(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Shiroi Koibito 12", "1")
    async with h.db.read() as session:
        code = (await session.execute(select(Order.code))).scalar_one()
    (paid,) = await tina(h, f"/paid {code}")
    assert paid == f"Pesanan {code}: Menunggu pembayaran → Lunas. Pembeli sudah dikabari."
    (bought_,) = await tina(h, f"/bought {code}")
    assert "Lunas → Sudah dibelikan" in bought_
    (shipped,) = await tina(h, f"/ship {code} JNE777")
    assert "Sudah dibelikan → Dikirim" in shipped and "JNE777" in shipped
    await english(h, DEMO_PHONE)
    (done,) = await tina(h, f"/done {code}")
    assert f"Order {code}:" in done and "The buyer has been told." in done
    (trip,) = await tina(h, "/trip DEMO")
    assert "Payment:" in trip and "Fee:" in trip and "Account:" in trip


async def test_help_is_short_and_grouped(harness: Harness) -> None:
    from flows.jastiper import COMMANDS

    h = harness
    await h.seed_demo()
    (help_text,) = await tina(h, "/help")
    assert len(help_text.splitlines()) <= 4
    message = h.fake.sent_to(DEMO_PHONE)[-1]
    sections = message["interactive"]["action"]["sections"]
    assert [s["title"] for s in sections] == ["Trip", "Produk", "Pesanan", "Uang", "Broadcast"]
    details = []
    for title in ("Trip", "Produk", "Pesanan", "Uang", "Broadcast"):
        await tina(h, "/help")
        details += await h.tap_title(DEMO_PHONE, title)
    every = "\n".join(details)
    hidden = {"/bantuan", "/batal", "/shipping", "/statement", "/help"}  # aliases
    assert [c for c in COMMANDS if c not in hidden and c not in every] == []
    (bantuan,) = await tina(h, "BANTUAN")  # the word gives the same list
    assert "Perintah jastiper" in bantuan
    await english(h, DEMO_PHONE)
    await tina(h, "/help")
    (orders_en,) = await h.tap_title(DEMO_PHONE, "Orders")
    assert "/orders DEMO [unpaid|proof|paid|shipped]" in orders_en


async def test_the_buyers_help_is_written_from_the_words_table(harness: Harness) -> None:
    """Given the buyer words' table, when a buyer sends BANTUAN or taps *Bantuan*, then
    JOIN and every word with a help line are listed once each, with the menu's buttons;
    in English the words are the English twins."""
    from flows.words import WORDS

    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    (help_text,) = await h.say(buyer, "BANTUAN")
    lines = help_text.splitlines()
    assert lines[:2] == ["Kata yang bisa kamu kirim:", "• JOIN <kode> — gabung ke trip jastip"]
    listed = {f"• {word.line}" for word in WORDS if word.line}  # Indonesian: the msgid
    assert listed <= set(lines) and len(lines) == len(listed) + 3
    assert lines[-1] == "Selebihnya cukup ketuk tombol."
    assert [t for t, _id in h.last_choices(buyer)] == ["Katalog", "Pesanan saya", "Bantuan"]
    assert await h.tap_title(buyer, "Bantuan") == [help_text]
    await english(h, buyer)
    (help_en,) = await h.say(buyer, "HELP")
    assert "• CATALOG — see the products" in help_en.splitlines()
    assert "• STOP / START — stop / resume trip updates" in help_en.splitlines()


async def test_broadcast_usage_and_the_answer_quotes_the_question(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    (usage,) = await tina(h, "/broadcast")
    assert "Contoh: /broadcast DEMO" in usage and "/trip" not in usage
    buyer = await joined(h)
    (ack,) = await h.say(buyer, "TANYA ada ukuran M?")
    ref = ack.split("ref ")[1].split(")")[0]
    await tina(h, f"/reply {ref} Ada kok.")
    answer = h.fake.texts_to(buyer)[-1]
    assert "\u201cada ukuran M?\u201d" in answer and "Ada kok." in answer


async def test_the_digest_counts_only_new_orders(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    for product in ("Kit Kat Matcha", "Shiroi Koibito 12", "Calbee Jagabee"):
        await order_one(h, buyer, product, "1")
    async with h.db.transaction() as session:
        first, second, _third = (await session.execute(select(Order).order_by(Order.id))).scalars()
        first.status = OrderStatus.CANCELLED.value
        second.status = OrderStatus.DONE.value
        await session.execute(update(Order).values(created_at=utcnow() - dt.timedelta(minutes=2)))
    before = len(h.fake.sent_to(DEMO_PHONE))
    assert await jobs.notify_new_orders(h.db) == 1
    await h.settle()
    (notice,) = h.fake.texts_to(DEMO_PHONE)[before:]
    assert notice.startswith("1 pesanan baru:")
    async with h.db.read() as session:
        unannounced = await session.scalar(
            select(func.count(Order.id)).where(Order.jastiper_notified_at.is_(None))
        )
    assert unannounced == 0


async def test_the_trip_qr_is_sent_as_a_png(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, "/trip new")
    for answer in ("Jastip Osaka", "Osaka", "besok"):
        await tina(h, answer)
    await h.tap_title(DEMO_PHONE, "Lunas")
    await h.tap_title(DEMO_PHONE, "Tanpa fee")
    await h.tap_title(DEMO_PHONE, "Pakai rekening ini")
    qr = h.fake.sent_to(DEMO_PHONE)[-1]
    stored = h.fake.media[qr["image"]["id"]]
    assert stored.data[:4] == b"\x89PNG" and stored.mime_type == "image/png"

"""Jastiper commands as conversations, with wrong input for each."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot import simulate
from flows.jastiper.trips import parse_date
from services.products import parse_price
from storage.demo import DEMO_PHONE
from storage.models import AuditLog, InboundUpdate, Order, Product, Trip
from storage.repo import messaging
from tests.conftest import Harness, phone, user_named
from tests.journeys import joined, order_one, tina


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), "purple").save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("85000", 85_000),
        ("85.000", 85_000),
        ("85rb", 85_000),
        ("Rp 85.000", 85_000),
        ("rp85.000", 85_000),
        ("1,5jt", 1_500_000),
        ("1.250.000", 1_250_000),
        ("90k", 90_000),
    ],
)
def test_prices_as_jastipers_type_them(text: str, amount: int) -> None:
    assert parse_price(text) == amount


@pytest.mark.parametrize("text", ["", "abc", "-5000", "0", "85 ribu rupiah", "12.34.5"])
def test_prices_that_are_not(text: str) -> None:
    assert parse_price(text) is None


def test_closing_dates() -> None:
    import datetime as dt

    today = dt.date(2026, 11, 29)
    assert parse_date("20-12-2026", today) == dt.date(2026, 12, 20)
    assert parse_date("2026-12-20", today) == dt.date(2026, 12, 20)
    assert parse_date("5/1", today) == dt.date(2027, 1, 5)
    assert parse_date("31-02-2026", today) is None


async def test_help_is_for_jastipers_only(harness: Harness) -> None:
    await harness.seed_demo()
    (help_text,) = await tina(harness, "/help")
    assert "/trip new" in help_text and "/ship" in help_text
    buyer = phone()
    (answer,) = await harness.say(buyer, "/close DEMO")
    assert "belum paham" in answer
    async with harness.db.read() as session:
        assert (await session.execute(select(Trip.status))).scalar_one() == "open"


async def test_a_new_trip_through_the_wizard(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, "/trip new")
    (bad,) = await tina(h, "x")
    assert "3 sampai 100" in bad
    await tina(h, "Jastip Seoul Januari")
    await tina(h, "Seoul, Korea")
    (past,) = await tina(h, "01-01-2020")
    assert "jangan tanggal lampau" in past
    await tina(h, "20-01-2099")
    await h.tap_title(DEMO_PHONE, "DP")
    (dp_bad,) = await tina(h, "95")
    assert "10 sampai 90" in dp_bad
    await tina(h, "50")
    (fee_bad,) = await tina(h, "banyak")
    assert "fee per barang" in fee_bad
    await tina(h, "5%")
    await h.tap_title(DEMO_PHONE, "Pakai rekening ini")
    sent = h.fake.sent_to(DEMO_PHONE)
    text, qr = sent[-2], sent[-1]
    body = text["text"]["body"]
    assert "Trip *Jastip Seoul Januari* dibuka!" in body
    assert "https://wa.me/" in body and "text=JOIN%20SEOU" in body
    assert qr["type"] == "image" and h.fake.media[qr["image"]["id"]].data[:4] == b"\x89PNG"
    async with h.db.read() as session:
        trip = (await session.execute(select(Trip).where(Trip.title.like("%Seoul%")))).scalar_one()
        assert (trip.payment_type, trip.dp_percent, trip.fee_percent) == ("dp", 50, 5)
        assert trip.bank_account_number == "1234567890"
        actions = (await session.execute(select(AuditLog.action))).scalars().all()
    assert "trip.create" in actions
    # a buyer can join it at once
    (welcome,) = await h.say(phone(), f"JOIN {trip.code}")
    assert "Jastip Seoul Januari" in welcome


async def test_a_captioned_photo_adds_a_product_buyers_find(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    media = h.fake.add_media(jpeg(), "image/jpeg")
    sent = await h.send(
        simulate.media(
            DEMO_PHONE,
            "image",
            media,
            "image/jpeg",
            name="Tina",
            caption="/add Matcha Kit Kat | 85rb | 20",
        )
    )
    assert (
        "Produk #13 ditambahkan ke DEMO (Jastip Tokyo Demo): *Matcha Kit Kat* — Rp 85.000, "
        "stok 20" in sent[0]["text"]["body"]
    )
    buyer = await joined(h)
    (found,) = await h.say(buyer, "CARI matcha kit")
    assert "Matcha Kit Kat" in [t for t, _ in h.last_choices(buyer)]
    assert "Hasil pencarian" in found
    # a buyer sending the same captioned photo adds nothing
    other = h.fake.add_media(jpeg(), "image/jpeg")
    await h.send(
        simulate.media(
            buyer, "image", other, "image/jpeg", caption="/add Matcha Kit Kat | 85rb | 20"
        )
    )
    async with h.db.read() as session:
        count = (
            await session.execute(
                select(func.count(Product.id)).where(Product.name == "Matcha Kit Kat")
            )
        ).scalar_one()
    assert count == 1
    # bad price, negative stock: clear answers, nothing added
    for caption, expected in (
        ("/add Pocky | murah | 5", "tidak bisa dibaca"),
        ("/add Pocky | 20rb | -3", "Stok harus angka"),
        ("/add Pocky tanpa harga", "Format: foto dengan caption"),
    ):
        sent = await h.send(
            simulate.media(
                DEMO_PHONE,
                "image",
                h.fake.add_media(jpeg(), "image/jpeg"),
                "image/jpeg",
                name="Tina",
                caption=caption,
            )
        )
        assert expected in sent[0]["text"]["body"]
    async with h.db.read() as session:
        assert (await session.execute(select(func.count(Product.id)))).scalar_one() == 13


async def test_products_stock_price_hide_and_wrong_input(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    (listing,) = await tina(h, "/products DEMO")
    assert "#2 Kit Kat Matcha — Rp 85.000 · stok 30" in listing
    assert "Stok *Kit Kat Matcha* sekarang 5." in (await tina(h, "/stock 2 5"))[0]
    assert "Rp 90.000" in (await tina(h, "/price 2 90rb"))[0]
    assert "tidak ada di DEMO" in (await tina(h, "/stock 99 5"))[0]
    assert "Stok harus angka" in (await tina(h, "/stock 2 -1"))[0]
    assert "tidak bisa dibaca" in (await tina(h, "/price 2 abc"))[0]
    assert "disembunyikan" in (await tina(h, "/hide 2"))[0]
    buyer = await joined(h)
    await h.say(buyer, "KATALOG")
    assert "Kit Kat Matcha" not in [t for t, _ in h.last_choices(buyer)]
    async with h.db.read() as session:
        kitkat = (await session.execute(select(Product).where(Product.position == 2))).scalar_one()
    assert (kitkat.stock, kitkat.price, kitkat.hidden) == (5, 90_000, True)


async def test_only_a_trips_own_jastiper_can_touch_it(harness: Harness) -> None:
    from bot.accounts import add_jastiper

    h = harness
    await h.seed_demo()
    rival = "6281100000002"
    await add_jastiper(h.settings, phone=rival, name="Rina")
    (answer,) = await h.say(rival, "/close DEMO", name="Rina")
    assert "tidak ada di daftar trip-mu" in answer
    (unknown,) = await tina(h, "/close NOPE")
    assert "tidak ada di daftar trip-mu" in unknown
    async with h.db.read() as session:
        assert (await session.execute(select(Trip.status))).scalar_one() == "open"


async def test_close_and_open_a_trip(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    assert "ditutup" in (await tina(h, "/close DEMO"))[0]
    (closed,) = await h.say(buyer, "JOIN DEMO")
    assert "sudah ditutup" in closed
    assert "dibuka lagi" in (await tina(h, "/open DEMO"))[0]
    (trips,) = await tina(h, "/trips")
    assert "*Jastip Tokyo Demo* (DEMO) — buka" in trips and "Peserta: 1" in trips


async def test_orders_move_on_and_the_buyer_is_told(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Shiroi Koibito 12", "1")
    async with h.db.read() as session:
        code = (await session.execute(select(Order.code))).scalar_one()
    (unpaid,) = await tina(h, "/orders DEMO unpaid")
    assert code in unpaid
    assert "Filter yang ada" in (await tina(h, "/orders DEMO kemarin"))[0]
    (detail,) = await tina(h, f"/order {code}")
    assert "Pembeli: Sari" in detail and "Jakarta Selatan 12120" in detail
    assert "belum bisa diubah" in (await tina(h, f"/done {code}"))[0]
    assert "Pesanan JP-NOPE1 tidak ditemukan" in (await tina(h, "/paid JP-NOPE1"))[0]
    for command, buyer_sees in (
        (f"/paid {code}", "sudah dikonfirmasi"),
        (f"/bought {code}", "sudah dibelikan"),
        (f"/ship {code} JNE12345", "Nomor resi: JNE12345"),
        (f"/done {code}", "selesai"),
    ):
        await tina(h, command)
        assert buyer_sees in h.fake.texts_to(buyer)[-1]
    # the same words as the panel's (the rule is the order service's)
    assert "Isi nomor resi untuk status Dikirim" in (await tina(h, f"/ship {code}"))[0]
    async with h.db.read() as session:
        order = (await session.execute(select(Order))).scalar_one()
        actions = set((await session.execute(select(AuditLog.action))).scalars())
    assert order.status == "done" and order.tracking_number == "JNE12345"
    assert {"order.paid", "order.bought", "order.shipped", "order.done"} <= actions


async def test_jastiper_commands_in_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    (help_text,) = await tina(h, "/help")
    assert "*Jastiper commands*" in help_text
    assert "is not one of your trips" in (await tina(h, "/trip NOPE"))[0]
    assert "Unknown command /fly" in (await tina(h, "/fly"))[0]


async def test_recap_spreadsheet_has_one_row_per_item(harness: Harness) -> None:
    from openpyxl import load_workbook

    from bot.keys import MEDIA

    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Calbee Jagabee", "2")
    await tina(h, "/recap DEMO")
    doc = h.fake.sent_to(DEMO_PHONE)[-1]
    assert doc["type"] == "document" and doc["document"]["filename"] == "rekap-DEMO.xlsx"
    book = load_workbook(io.BytesIO(h.fake.media[doc["document"]["id"]].data))
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0][:6] == ("Pesanan", "Tanggal pesan", "Status", "Pembeli", "Produk", "Jumlah")
    assert rows[1][3:7] == ("Sari", "Calbee Jagabee", 2, 65_000)
    assert rows[1][9] == "Sari Wulandari" and "Jakarta Selatan" in rows[1][11]
    await tina(h, "/recap DEMO csv")
    csv_doc = h.fake.sent_to(DEMO_PHONE)[-1]
    text = h.fake.media[csv_doc["document"]["id"]].data.decode("utf-8-sig")
    assert text.splitlines()[1].split(";")[4:6] == ["Calbee Jagabee", "2"]
    assert h.app[MEDIA] is not None


async def test_questions_are_relayed_without_numbers(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    (ack,) = await h.say(buyer, "TANYA ada ukuran M?")
    ref = ack.split("ref ")[1].split(")")[0]
    relayed = h.fake.texts_to(DEMO_PHONE)[-1]
    assert "ada ukuran M?" in relayed and f"/reply {ref}" in relayed and buyer not in relayed
    await tina(h, f"/reply {ref} Ada, ukuran M tersedia.")
    answer = h.fake.texts_to(buyer)[-1]
    assert "Ada, ukuran M tersedia." in answer and DEMO_PHONE not in answer
    assert "tidak ditemukan" in (await tina(h, "/reply Q-ZZZZ halo"))[0]
    (usage,) = await h.say(buyer, "TANYA")
    assert "Tulis pertanyaanmu" in usage


async def test_the_balance_of_a_dp_trip_is_billed_with_its_breakdown(harness: Harness) -> None:
    from sqlalchemy import update

    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(payment_type="dp", dp_percent=50))
    buyer = await joined(h)
    await order_one(h, buyer, "Royce Nama Chocolate", "1")  # 250.000 + 10.000 fee
    await h.send(
        simulate.media(buyer, "image", h.fake.add_media(jpeg(), "image/jpeg"), "image/jpeg")
    )
    approve = h.fake.sent_to(DEMO_PHONE)[-1]["interactive"]["action"]["buttons"][0]["reply"]
    await h.tap(DEMO_PHONE, approve["id"], "Setujui", name="Tina")
    (done,) = await tina(h, "/balance DEMO")
    assert "dikirim ke 1 pembeli" in done
    bill = h.fake.texts_to(buyer)[-1]
    assert "Total: Rp 260.000" in bill and "DP sudah dibayar: Rp 130.000" in bill
    async with h.db.read() as session:
        order = (await session.execute(select(Order))).scalar_one()
    assert order.status == "awaiting_balance" and 130_001 <= order.amount_due <= 130_499
    assert "bukan trip DP" not in done


async def test_daftar_jastiper_waits_for_an_admin(harness: Harness) -> None:
    from bot.accounts import add_jastiper
    from storage.models import Jastiper

    h = harness
    await h.seed_demo()
    hopeful = phone()
    (ack,) = await h.say(hopeful, "DAFTAR JASTIPER", name="Rina")
    assert "Admin akan memeriksanya" in ack
    (not_yet,) = await h.say(hopeful, "/help")
    assert "belum paham" in not_yet
    await add_jastiper(h.settings, phone=hopeful, name="Rina")
    # the applicant is told (as when an admin approves in the panel), then /help works
    told, help_text = await h.say(hopeful, "/help")
    assert "sudah disetujui admin" in told
    assert "/trip new" in help_text
    async with h.db.read() as session:
        statuses = (await session.execute(select(Jastiper.status))).scalars().all()
    assert sorted(statuses) == ["approved", "approved"]


async def test_migrations_and_models_agree(harness: Harness) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base

    async with harness.db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
        )
    assert diff == []


async def test_a_burst_of_new_orders_is_one_notice(harness: Harness) -> None:
    import datetime as dt

    from sqlalchemy import update

    from bot import jobs
    from storage.models import utcnow

    h = harness
    await h.seed_demo()
    buyers = [await joined(h, name) for name in ("Sari", "Budi", "Rina")]
    for buyer in buyers:
        await order_one(h, buyer, "Kit Kat Matcha", "1")
    before = len(h.fake.sent_to(DEMO_PHONE))
    assert await jobs.notify_new_orders(h.db) == 0  # still gathering the burst
    async with h.db.transaction() as session:
        await session.execute(update(Order).values(created_at=utcnow() - dt.timedelta(minutes=2)))
    assert await jobs.notify_new_orders(h.db) == 1
    assert await jobs.notify_new_orders(h.db) == 0  # never twice
    await h.settle()
    notices = h.fake.texts_to(DEMO_PHONE)[before:]
    assert len(notices) == 1 and notices[0].startswith("3 pesanan baru:")
    async with h.db.read() as session:
        codes = (await session.execute(select(Order.code))).scalars().all()
    assert all(code in notices[0] for code in codes)


async def test_broadcast_estimate_then_confirm(harness: Harness) -> None:
    import datetime as dt

    from sqlalchemy import update

    from storage.models import Broadcast, User, utcnow

    h = harness
    await h.seed_demo()
    buyers = [await joined(h, f"B{i}") for i in range(4)]
    await h.say(buyers[0], "STOP")
    async with h.db.transaction() as session:  # one buyer last wrote two days ago
        await session.execute(
            update(User)
            .where(User.id == await user_named(session, "B1"))
            .values(last_inbound_at=utcnow() - dt.timedelta(days=2))
        )
    (usage,) = await tina(h, "/broadcast DEMO")
    assert "Tulis pesannya" in usage
    (estimate,) = await tina(h, "/broadcast DEMO Matcha Kit Kat sudah datang!")
    assert "Penerima: 3" in estimate and "Gratis (dalam 24 jam): 2" in estimate
    # no approved template yet: the one outside the window cannot be reached, at no cost
    assert "Berbayar: 0" in estimate and "Perkiraan biaya: Rp 0" in estimate
    assert "belum ada template): 1" in estimate
    assert [t for t, _ in h.last_choices(DEMO_PHONE)] == ["Kirim", "Batal"]
    await h.tap_title(DEMO_PHONE, "Batal")
    async with h.db.transaction() as session:  # the operator adds a template and a price
        await messaging.set_template(
            session,
            "broadcast",
            locale="id",
            name="jastipin_broadcast",
            language="id",
            category="marketing",
        )
        await messaging.set_rate(session, "marketing", 650)
    (estimate,) = await tina(h, "/broadcast DEMO Matcha Kit Kat sudah datang!")
    assert "Berbayar: 1" in estimate and "Perkiraan biaya: Rp 650" in estimate
    assert "Gratis saja" in estimate
    assert [t for t, _ in h.last_choices(DEMO_PHONE)] == ["Kirim", "Gratis saja", "Batal"]
    # a buyer tapping a copied id changes nothing
    send_id = h.last_choices(DEMO_PHONE)[0][1]
    await h.tap(buyers[1], send_id, "Kirim")
    async with h.db.read() as session:
        statuses = (await session.execute(select(Broadcast.status).order_by(Broadcast.id))).all()
        assert [s for (s,) in statuses] == ["cancelled", "draft"]
    (queued,) = await h.tap_title(DEMO_PHONE, "Kirim")
    assert "antrean untuk 3 penerima" in queued
    (again,) = await h.tap(DEMO_PHONE, send_id, "Kirim", name="Tina")
    assert "sudah diproses" in again
    async with h.db.read() as session:
        row = (await session.execute(select(Broadcast).order_by(Broadcast.id.desc()))).scalars()
        latest = next(iter(row))
        assert (latest.status, latest.allow_paid, latest.estimated_cost) == ("queued", True, 650)


async def test_with_two_open_trips_the_jastiper_picks_where_a_product_goes(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        demo = (await session.execute(select(Trip))).scalar_one()
        session.add(
            Trip(
                jastiper_id=demo.jastiper_id,
                code="SEOUL",
                title="Jastip Seoul",
                destination="Seoul",
                status="open",
            )
        )
    sent = await h.send(
        simulate.media(
            DEMO_PHONE,
            "image",
            h.fake.add_media(jpeg(), "image/jpeg"),
            "image/jpeg",
            name="Tina",
            caption="/add Honey Butter Chip | 45rb",
        )
    )
    assert "ke trip yang mana" in sent[0]["interactive"]["body"]["text"]
    (added,) = await h.tap_title(DEMO_PHONE, "SEOUL · Jastip Seoul")
    assert (
        "Produk #1 ditambahkan ke SEOUL (Jastip Seoul): *Honey Butter Chip* — Rp 45.000, "
        "stok tanpa batas" in added
    )


async def test_the_product_wizard_after_add(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    (ask_photo,) = await tina(h, "/add")
    assert "Kirim foto produknya" in ask_photo
    sent = await h.send(
        simulate.media(
            DEMO_PHONE, "image", h.fake.add_media(jpeg(), "image/jpeg"), "image/jpeg", name="Tina"
        )
    )
    assert sent[0]["text"]["body"] == "Nama produknya?"
    await tina(h, "Pocky Matcha")
    (bad,) = await tina(h, "murah")
    assert "tidak bisa dibaca" in bad
    await tina(h, "Rp 25.000")
    (added,) = await h.tap_title(DEMO_PHONE, "Tanpa batas")
    assert "*Pocky Matcha* — Rp 25.000, stok tanpa batas" in added
    # a photo captioned just /add asks the rest, too
    sent = await h.send(
        simulate.media(
            DEMO_PHONE,
            "image",
            h.fake.add_media(jpeg(), "image/jpeg"),
            "image/jpeg",
            name="Tina",
            caption="/add",
        )
    )
    assert sent[0]["text"]["body"] == "Nama produknya?"
    await tina(h, "Hello Panda")
    await tina(h, "15rb")
    (added,) = await tina(h, "12")
    assert "*Hello Panda* — Rp 15.000, stok 12" in added
    async with h.db.read() as session:
        image_keys = (
            (
                await session.execute(
                    select(Product.image_key).where(
                        Product.name.in_(["Pocky Matcha", "Hello Panda"])
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(image_keys) == 2 and all(image_keys)


async def test_a_services_no_that_no_handler_caught_is_still_answered(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chat's one door for a DomainError (bot/dispatcher.py): a handler that lets a
    service's refusal through still answers in the user's language, and the unit is
    done, not retried until parked."""
    from flows.jastiper import COMMANDS
    from locales import _
    from services.errors import NotFound

    async def refused(ctx: Any, jastiper: Any, args: list[str]) -> None:
        raise NotFound(_("Trip {code} tidak ditemukan."), code="NOPE")

    monkeypatch.setitem(COMMANDS, "/ongkir", refused)
    h = harness
    await h.seed_demo()
    assert await tina(h, "/ongkir NOPE 1000") == ["Trip NOPE tidak ditemukan."]
    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    assert await tina(h, "/ongkir NOPE 1000") == ["Trip NOPE was not found."]
    async with h.db.read() as session:
        statuses = (await session.execute(select(InboundUpdate.status))).scalars().all()
    assert set(statuses) == {"done"}

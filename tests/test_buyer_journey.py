"""A buyer's whole journey, tapped through as a person would, plus the stock race and
hostile uploads."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import func, select, update

from bot import simulate
from bot.keys import MEDIA
from services import orders as orders_service
from services.errors import OutOfStock
from storage.demo import DEMO_PHONE
from storage.models import Order, PaymentProof, Product, Trip, User, utcnow
from tests.conftest import Harness, phone
from tests.journeys import SARI_ADDRESS, joined, jpeg, order_one


async def test_join_browse_order_pay_and_get_confirmed(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)

    # the catalogue pages across all 12 products, within Meta's list limits
    (page1,) = await h.say(buyer, "KATALOG")
    assert "halaman 1/2" in page1
    titles = [t for t, _ in h.last_choices(buyer)]
    assert len(titles) <= 10 and titles[-1] == "Berikutnya ▶"
    await h.tap_title(buyer, "Berikutnya ▶")
    titles2 = [t for t, _ in h.last_choices(buyer)]
    assert titles2[-1] == "◀ Sebelumnya"
    products = [t for t in titles + titles2 if "▶" not in t and "◀" not in t]
    assert len(products) == 12
    rows = h.fake.sent_to(buyer)[-1]["interactive"]["action"]["sections"][0]["rows"]
    assert any("habis" in r.get("description", "") for r in rows)  # the sold-out tumbler

    # product → quantity (typed, too much first) → note → cart
    await h.tap_title(buyer, "◀ Sebelumnya")
    (detail,) = await h.tap_title(buyer, "Kit Kat Matcha")
    assert "Rp 85.000" in detail and "Stok: 30" in detail
    await h.tap_title(buyer, "Pesan")
    (too_many,) = await h.say(buyer, "99")
    assert "antara 1 dan 20" in too_many
    (note_q,) = await h.say(buyer, "2")
    assert "catatan" in note_q
    (cart,) = await h.say(buyer, "yang rasa original kalau ada")
    assert "2× Kit Kat Matcha — Rp 170.000" in cart and "Subtotal: Rp 170.000" in cart

    # checkout: the address is asked once, checked, shown back
    (recipient_q,) = await h.tap_title(buyer, "Checkout")
    assert "penerima" in recipient_q
    await h.say(buyer, "Sari Wulandari")
    (bad_phone,) = await h.say(buyer, "telepon saya")
    assert "kurang pas" in bad_phone
    await h.say(buyer, "0812-3456-7890")
    await h.say(buyer, "Jl. Melati No. 5, RT 01/RW 02, Kebayoran Baru")
    await h.say(buyer, "Jakarta Selatan")
    (shown,) = await h.say(buyer, "12120")
    assert "Sari Wulandari (081234567890)" in shown and "Jakarta Selatan 12120" in shown
    (summary,) = await h.tap_title(buyer, "Benar")
    assert "Fee jastip: Rp 20.000" in summary and "*Total: Rp 190.000*" in summary

    # confirm: order, reserved stock, exact unique amount to the jastiper's account
    (instructions,) = await h.tap_title(buyer, "Konfirmasi")
    assert "Pesanan *JP-" in instructions and "BCA 1234567890" in instructions
    async with h.db.read() as session:
        order = (await session.execute(select(Order))).scalar_one()
        kitkat = (
            await session.execute(select(Product).where(Product.name == "Kit Kat Matcha"))
        ).scalar_one()
    assert kitkat.stock == 28
    assert 190_001 <= order.amount_due <= 190_499
    assert f"Rp {order.amount_due:,}".replace(",", ".") in instructions

    # the proof photo: downloaded, cleaned, stored, attached; the jastiper is asked
    media_id = h.fake.add_media(jpeg(), "image/jpeg")
    sent = await h.send(simulate.media(buyer, "image", media_id, "image/jpeg"))
    assert "sudah kami terima" in sent[0]["text"]["body"]
    to_tina = h.fake.sent_to(DEMO_PHONE)
    assert to_tina[-2]["type"] == "image" and order.code in to_tina[-2]["image"]["caption"]
    assert [b["reply"]["title"] for b in to_tina[-1]["interactive"]["action"]["buttons"]] == [
        "Setujui",
        "Tolak",
    ]

    # the jastiper approves from the notification; the buyer is told
    approve_id = to_tina[-1]["interactive"]["action"]["buttons"][0]["reply"]["id"]
    before = len(h.fake.sent_to(buyer))
    await h.tap(DEMO_PHONE, approve_id, "Setujui", name="Tina")
    assert "sudah dikonfirmasi" in h.fake.texts_to(buyer)[before]

    # PESANAN shows it paid; STOP still works
    await h.say(buyer, "PESANAN")
    (row_title, _), *_ = h.last_choices(buyer)
    assert row_title.startswith(order.code)
    (details,) = await h.tap_title(buyer, row_title)
    assert "Lunas" in details and ": disetujui" in details
    (stopped,) = await h.say(buyer, "STOP")
    assert "tidak akan menerima info" in stopped
    assert h.fake.rejected == [], "Meta would have rejected a send"


async def test_a_rejected_proof_returns_the_order_and_a_new_one_is_accepted(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Tokyo Banana 8 pcs", "1")
    await h.send(
        simulate.media(buyer, "image", h.fake.add_media(jpeg("blue"), "image/jpeg"), "image/jpeg")
    )
    reject_id = h.fake.sent_to(DEMO_PHONE)[-1]["interactive"]["action"]["buttons"][1]["reply"][
        "id"
    ]
    await h.tap(DEMO_PHONE, reject_id, "Tolak", name="Tina")
    why = h.fake.sent_to(DEMO_PHONE)[-1]["interactive"]["action"]["buttons"]
    assert [b["reply"]["title"] for b in why] == [
        "Nominal tidak sesuai",
        "Bukti tidak jelas",
        "Dana belum masuk",
    ]
    await h.tap(DEMO_PHONE, why[0]["reply"]["id"], "Nominal tidak sesuai", name="Tina")
    assert "ditolak jastiper: Nominal tidak sesuai" in h.fake.texts_to(buyer)[-1]
    # a second tap on the old buttons changes nothing
    await h.tap(DEMO_PHONE, reject_id, "Tolak", name="Tina")
    assert "sudah diproses" in h.fake.texts_to(DEMO_PHONE)[-1]
    sent = await h.send(
        simulate.media(buyer, "image", h.fake.add_media(jpeg("green"), "image/jpeg"), "image/jpeg")
    )
    assert "sudah kami terima" in sent[0]["text"]["body"]
    async with h.db.read() as session:
        proofs = (await session.execute(select(PaymentProof))).scalars().all()
        order = (await session.execute(select(Order))).scalar_one()
    assert sorted(p.status for p in proofs) == ["rejected", "submitted"]
    assert order.status == "proof_submitted"


async def test_the_address_shown_back_can_be_typed_again(harness: Harness) -> None:
    """Given the address shown back at checkout, when the buyer taps *Ubah*, then it is
    asked again field by field and the summary sends to the new one; its buttons tapped
    again once the step is over show the cart, and change nothing."""
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await h.say(buyer, "CARI Tokyo Banana")
    await h.tap_title(buyer, "Tokyo Banana 8 pcs")
    await h.tap_title(buyer, "Pesan")
    await h.tap_title(buyer, "1")
    await h.tap_title(buyer, "Lewati")
    await h.tap_title(buyer, "Checkout")
    for answer in SARI_ADDRESS:
        await h.say(buyer, answer)
    shown = dict(h.last_choices(buyer))
    (asked,) = await h.tap(buyer, shown["Ubah"], "Ubah")
    assert "Siapa nama penerimanya?" in asked
    for answer in ("Dewi Lestari", *SARI_ADDRESS[1:]):
        await h.say(buyer, answer)
    (summary,) = await h.tap_title(buyer, "Benar")
    assert "Kirim ke: Dewi Lestari" in summary and "*Total:" in summary
    for title in ("Ubah", "Benar"):  # the first address's buttons, tapped late
        (cart,) = await h.tap(buyer, shown[title], title)
        assert "Subtotal" in cart and "Dewi" not in cart
    async with h.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(Order))).scalar() == 0


async def test_the_same_image_on_two_orders_is_flagged_to_the_jastiper(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    first, second = await joined(h, "Sari"), await joined(h, "Budi")
    for buyer in (first, second):
        await order_one(h, buyer, "Calbee Jagabee", "1")
        await h.send(
            simulate.media(
                buyer, "image", h.fake.add_media(jpeg("red"), "image/jpeg"), "image/jpeg"
            )
        )
    captions = [m["image"]["caption"] for m in h.fake.sent_to(DEMO_PHONE) if m["type"] == "image"]
    assert "⚠️" not in captions[0] and "⚠️" in captions[1]


async def test_hostile_uploads_are_refused_and_nothing_is_stored(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Daiso Storage Box", "1")
    html = b"<html><script>alert(1)</script></html>"
    cases = [
        (html, "image/jpeg", "hanya bisa menerima foto"),
        (b"\xff\xd8\xff" + b"x" * (6 * 1024 * 1024), "image/jpeg", "terlalu besar"),
        (jpeg()[:200], "image/jpeg", "rusak"),
    ]
    for data, mime, expected in cases:
        media_id = h.fake.add_media(data, mime)
        sent = await h.send(simulate.media(buyer, "image", media_id, mime))
        assert expected in sent[0]["text"]["body"]
    media_root = h.settings.media_dir
    stored = [p for p in media_root.rglob("*") if p.is_file() and p.name != ".health"]
    assert stored == []
    async with h.db.read() as session:
        assert (await session.execute(select(func.count(PaymentProof.id)))).scalar_one() == 0


async def test_cancel_an_unpaid_order_gives_the_stock_back(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Royce Nama Chocolate", "3")
    await h.say(buyer, "PESANAN")
    (row_title, _), *_ = h.last_choices(buyer)
    await h.tap_title(buyer, row_title)
    await h.tap_title(buyer, "Batalkan")
    (cancelled,) = await h.tap_title(buyer, "Ya, batalkan")
    assert "dibatalkan" in cancelled
    async with h.db.read() as session:
        royce = (
            await session.execute(select(Product).where(Product.name.like("Royce%")))
        ).scalar_one()
    assert royce.stock == 10


async def test_unpaid_orders_expire_and_return_stock(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Hada Labo Gokujyun", "2")
    async with h.db.transaction() as session:
        await session.execute(
            update(Order).values(payment_deadline=utcnow() - dt.timedelta(minutes=1))
        )
        expired = await orders_service.expire_due(session, utcnow())
        again = await orders_service.expire_due(session, utcnow())
    assert len(expired) == 1 and again == []
    async with h.db.read() as session:
        hada = (
            await session.execute(select(Product).where(Product.name.like("Hada%")))
        ).scalar_one()
    assert hada.stock == 18


async def test_fifty_buyers_racing_for_the_last_units_never_oversell(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        await session.execute(update(Product).where(Product.name.like("Pokemon%")).values(stock=3))
        trip = (await session.execute(select(Trip))).scalar_one()
        pikachu = (
            await session.execute(select(Product).where(Product.name.like("Pokemon%")))
        ).scalar_one()
        buyers = []
        from storage.repo.users import upsert_user

        for _ in range(50):
            buyers.append((await upsert_user(session, h.cipher, bsuid=None, wa_id=phone())).id)

    async def attempt(user_id: int) -> bool:
        try:
            async with h.db.transaction() as session:
                product = await session.get(Product, pikachu.id)
                buyer = await session.get(User, user_id)
                assert product is not None and buyer is not None
                await orders_service.place_order(
                    session,
                    trip=trip,
                    buyer=buyer,
                    lines=[orders_service.Line(product, 1)],
                    address_enc=None,
                    now=utcnow(),
                )
            return True
        except OutOfStock:
            return False

    results = await asyncio.gather(*(attempt(u) for u in buyers))
    assert sum(results) == 3
    async with h.db.read() as session:
        left = await session.execute(select(Product.stock).where(Product.id == pikachu.id))
        assert left.scalar_one() == 0
        assert (await session.execute(select(func.count(Order.id)))).scalar_one() == 3


async def test_the_scheduler_job_expires_and_tells_the_buyer_once(harness: Harness) -> None:
    from bot import jobs

    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Biore UV Aqua Rich", "1")
    async with h.db.transaction() as session:
        await session.execute(
            update(Order).values(payment_deadline=utcnow() - dt.timedelta(minutes=1))
        )
    assert await jobs.expire_unpaid_orders(h.db) == 1
    assert await jobs.expire_unpaid_orders(h.db) == 0  # a second scheduler does nothing
    await h.settle()
    expired = [t for t in h.fake.texts_to(buyer) if "dibatalkan otomatis" in t]
    assert len(expired) == 1
    await h.say(buyer, "PESANAN")
    assert (
        "Kedaluwarsa"
        in h.fake.sent_to(buyer)[-1]["interactive"]["action"]["sections"][0]["rows"][0][
            "description"
        ]
    )


async def test_the_whole_order_in_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = phone()
    await h.say(buyer, "LANGUAGE", name="Sari")
    await h.tap_title(buyer, "English")
    await h.say(buyer, "JOIN DEMO")
    await h.tap_title(buyer, "Use Sari")
    await h.tap_title(buyer, "Yes, keep me posted")
    (found,) = await h.say(buyer, "SEARCH tokyo banana")
    assert "Search results" in found
    (detail,) = await h.tap_title(buyer, "Tokyo Banana 8 pcs")
    assert "In stock: 20" in detail
    await h.tap_title(buyer, "Order")
    await h.tap_title(buyer, "1")
    (cart,) = await h.tap_title(buyer, "Skip")
    assert "Added to your cart" in cart
    (asked,) = await h.tap_title(buyer, "Checkout")
    assert "Who is the recipient" in asked
    await h.say(buyer, "Sari")
    await h.say(buyer, "081234567890")
    await h.say(buyer, "Jl. Melati No. 5, Kebayoran Baru")
    await h.say(buyer, "Jakarta")
    (postal,) = await h.say(buyer, "123")
    assert "5 digits" in postal
    await h.say(buyer, "12120")
    (summary,) = await h.tap_title(buyer, "Yes, correct")
    assert "*Order summary*" in summary and "Jastip fee: Rp 10.000" in summary
    (done,) = await h.tap_title(buyer, "Confirm")
    assert "Order *JP-" in done and "Transfer *exactly Rp 155." in done
    assert h.fake.rejected == []


async def test_a_day_old_conversation_starts_over_without_losing_orders(harness: Harness) -> None:
    from storage.models import Conversation

    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Muji Gel Pen Set", "1")
    await h.say(buyer, "KATALOG")
    await h.tap_title(buyer, "Kit Kat Matcha")
    await h.tap_title(buyer, "Pesan")  # now asked for a quantity
    async with h.db.transaction() as session:
        await session.execute(
            update(Conversation).values(updated_at=utcnow() - dt.timedelta(days=2))
        )
    (answer,) = await h.say(buyer, "2")
    assert "belum paham" in answer  # not taken as a quantity any more
    await h.say(buyer, "PESANAN")
    assert len(h.last_choices(buyer)) == 1


async def test_a_buyer_in_two_trips_switches_and_carts_never_mix(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        demo = (await session.execute(select(Trip))).scalar_one()
        other = Trip(
            jastiper_id=demo.jastiper_id,
            code="SEOUL",
            title="Jastip Seoul",
            destination="Seoul",
            status="open",
        )
        session.add(other)
        await session.flush()
        session.add(
            Product(trip_id=other.id, position=1, name="Tteokbokki Kit", price=50_000, stock=5)
        )
    buyer = await joined(h)
    await h.say(buyer, "KATALOG")
    await h.tap_title(buyer, "Kit Kat Matcha")
    await h.tap_title(buyer, "Pesan")
    await h.tap_title(buyer, "1")
    await h.tap_title(buyer, "Lewati")  # a Kit Kat waits in the DEMO cart
    await h.say(buyer, "JOIN SEOUL")
    (menu_text,) = await h.say(buyer, "MENU")
    assert "Menu *Jastip Seoul*" in menu_text
    assert "Jastip Tokyo Demo" in [t for t, _ in h.last_choices(buyer)]
    (cart,) = await h.say(buyer, "KERANJANG")
    assert "Kit Kat" not in cart  # the other trip's product never reaches this trip's order
    await h.say(buyer, "MENU")
    await h.tap_title(buyer, "Jastip Tokyo Demo")
    (catalogue,) = await h.say(buyer, "KATALOG")
    assert "Jastip Tokyo Demo" in catalogue


async def test_the_balance_of_a_dp_order_is_proved_and_approved_the_same_way(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(payment_type="dp", dp_percent=50))
    buyer = await joined(h)
    done = await order_one(h, buyer, "Uniqlo Heattech Tee", "1")
    assert "Pesanan *JP-" in done
    for expected_status in ("dp_paid", "paid"):
        await h.send(
            simulate.media(buyer, "image", h.fake.add_media(jpeg(), "image/jpeg"), "image/jpeg")
        )
        approve = h.fake.sent_to(DEMO_PHONE)[-1]["interactive"]["action"]["buttons"][0]
        await h.tap(DEMO_PHONE, approve["reply"]["id"], "Setujui", name="Tina")
        async with h.db.transaction() as session:
            order = (await session.execute(select(Order))).scalar_one()
            assert order.status == expected_status
            if expected_status == "dp_paid":  # the jastiper asks for the balance (#4)
                order.status = "awaiting_balance"
    async with h.db.read() as session:
        kinds = sorted((await session.execute(select(PaymentProof.kind))).scalars())
    assert kinds == ["balance", "full"]


async def test_a_product_photo_is_sent_through_the_graph_api(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await h.app[MEDIA].put("products/kitkat.jpg", jpeg("green"), "image/jpeg")
    async with h.db.transaction() as session:
        await session.execute(
            update(Product)
            .where(Product.name == "Kit Kat Matcha")
            .values(image_key="products/kitkat.jpg")
        )
    buyer = await joined(h)
    await h.say(buyer, "KATALOG")
    await h.tap_title(buyer, "Kit Kat Matcha")
    shown = h.fake.sent_to(buyer)[-1]
    # one message: the photo as the header of the product's text and its buttons
    interactive = shown["interactive"]
    assert shown["type"] == "interactive" and interactive["type"] == "button"
    photo_id = interactive["header"]["image"]["id"]
    assert h.fake.media[photo_id].data[:3] == b"\xff\xd8\xff"
    assert "Kit Kat Matcha" in interactive["body"]["text"]
    assert "Rp 85.000" in interactive["body"]["text"]
    assert [b["reply"]["title"] for b in interactive["action"]["buttons"]] == ["Pesan", "Kembali"]
    # the next buyer to open it gets the same upload: the photo went up once
    uploads = len(h.fake.media)
    other = await joined(h, "Budi")
    await h.say(other, "KATALOG")
    await h.tap_title(other, "Kit Kat Matcha")
    again = h.fake.sent_to(other)[-1]
    assert again["interactive"]["header"]["image"]["id"] == photo_id
    assert len(h.fake.media) == uploads


async def test_a_typed_rejection_reason_and_a_question_from_an_order(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Tokyo Banana 8 pcs", "1")
    await h.send(
        simulate.media(buyer, "image", h.fake.add_media(jpeg("olive"), "image/jpeg"), "image/jpeg")
    )
    await h.tap_title(DEMO_PHONE, "Tolak")
    await h.say(DEMO_PHONE, "Nama pengirim beda dengan pesanan", name="Tina")
    assert "ditolak jastiper: Nama pengirim beda dengan pesanan" in h.fake.texts_to(buyer)[-1]
    await h.say(buyer, "PESANAN")
    (row_title, _), *_ = h.last_choices(buyer)
    await h.tap_title(buyer, row_title)
    (prompt,) = await h.tap_title(buyer, "Tanya jastiper")
    assert "tentang pesanan JP-" in prompt
    (ack,) = await h.say(buyer, "Boleh transfer besok?")
    assert "sudah diteruskan" in ack
    relayed = h.fake.texts_to(DEMO_PHONE)[-1]
    assert "Boleh transfer besok?" in relayed and row_title.split(" ")[0] in relayed


async def test_cancel_racing_expiry_returns_the_stock_once(harness: Harness) -> None:
    """Given an unpaid order past its deadline, when the buyer cancels while the expiry job
    runs, then exactly one of them moves it and the stock comes back once."""
    from services.errors import InvalidMove
    from storage.repo.orders import get_order

    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Hada Labo Gokujyun", "2")
    async with h.db.transaction() as session:
        await session.execute(
            update(Order).values(payment_deadline=utcnow() - dt.timedelta(minutes=1))
        )

    async def cancel() -> str:
        try:
            async with h.db.transaction() as session:
                code = (await session.execute(select(Order.code))).scalar_one()
                await orders_service.cancel(session, await get_order(session, code))
            return "cancelled"
        except InvalidMove:
            return "refused"

    async def expire() -> int:
        async with h.db.transaction() as session:
            return len(await orders_service.expire_due(session, utcnow()))

    outcome = await asyncio.gather(cancel(), expire())
    assert outcome in (["cancelled", 0], ["refused", 1])
    async with h.db.read() as session:
        hada = (
            await session.execute(select(Product).where(Product.name.like("Hada%")))
        ).scalar_one()
        status = (await session.execute(select(Order.status))).scalar_one()
    assert hada.stock == 18, "the two units came back exactly once"
    assert status == ("cancelled" if outcome[0] == "cancelled" else "expired")

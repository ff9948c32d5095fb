"""Money a jastiper handles after orders are placed (issue #14): shipping (``/ongkir``),
items not found (``/refund``) and the refund returned (``/refunded``), as conversations
on both databases, with wrong input answered and nothing changed."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select, update

from bot import simulate
from services.money import check_amount
from storage.demo import DEMO_PHONE
from storage.models import AuditLog, OrderItem, Trip
from tests.conftest import Harness
from tests.journeys import (
    CALBEE,
    ROYCE,
    exact,
    joined,
    jpeg,
    order_code,
    pay,
    the_order,
    tina,
)


async def audit_actions(h: Harness) -> list[str]:
    async with h.db.read() as session:
        return list((await session.execute(select(AuditLog.action))).scalars())


def test_shipping_amounts_as_jastipers_type_them() -> None:
    assert check_amount("25000") == 25_000
    assert check_amount("25.000") == 25_000
    assert check_amount("25rb") == 25_000
    assert check_amount("Rp 25.000") == 25_000


async def test_ongkir_reaches_the_buyer_who_pays_the_new_amount(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, "/products DEMO")
    assert "sekarang 1" in (await tina(h, "/stock 3 1"))[0]  # Royce at one unit
    buyer = await joined(h)
    code = await order_code(h, buyer, ROYCE, "1")
    (reply,) = await tina(h, f"/ongkir {code} 25000")
    told = h.fake.texts_to(buyer)[-1]
    order = await the_order(h, code)
    assert (order.shipping, order.total, order.status) == (25_000, 285_000, "awaiting_payment")
    assert order.amount_due == 285_000 + order.unique_cents
    due = "Rp " + f"{order.amount_due:,}".replace(",", ".")
    # one amount: the total told is the exact transfer, unique digits in
    assert f"Ongkir {code}: Rp 25.000. Total sekarang {due}" in reply
    assert "Rp 25.000" in told and f"Total sekarang {due}" in told and exact(told) == due
    # the same command again changes nothing and tells nobody
    before = len(h.fake.texts_to(buyer))
    (again,) = await tina(h, f"/ongkir {code} 25rb")
    assert "tidak ada yang berubah" in again and len(h.fake.texts_to(buyer)) == before
    # the buyer pays the new amount with a proof; the jastiper approves
    caption = await pay(h, buyer)
    assert exact(told) in caption.replace("seharusnya", "tepat")
    assert "sudah dikonfirmasi" in h.fake.texts_to(buyer)[-1]
    order = await the_order(h, code)
    assert order.status == "paid" and order.total == 285_000
    assert "order.shipping" in await audit_actions(h)


async def test_ongkir_after_payment_is_a_new_bill_paid_the_same_way(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    code = await order_code(h, buyer, ROYCE, "1")
    await pay(h, buyer)
    await tina(h, f"/bought {code}")
    await tina(h, f"/ongkir {code} 30rb")
    told = h.fake.texts_to(buyer)[-1]
    order = await the_order(h, code)
    assert order.status == "awaiting_balance" and order.total == 290_000
    assert 30_001 <= order.amount_due <= 30_499  # only the shipping, with a unique amount
    assert exact(told) == "Rp " + f"{order.amount_due:,}".replace(",", ".")
    caption = await pay(h, buyer)
    assert exact(told).replace("Rp ", "") in caption
    order = await the_order(h, code)
    assert order.status == "paid"
    await tina(h, f"/ship {code} JNE123")
    assert (await the_order(h, code)).status == "shipped"
    # shipped: the total cannot change any more
    (late,) = await tina(h, f"/ongkir {code} 40000")
    assert "tidak bisa diubah lagi" in late
    assert (await the_order(h, code)).shipping == 30_000


async def test_a_trip_wide_flat_ongkir_only_for_orders_without_one(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    first = await joined(h, "Sari")
    second = await joined(h, "Dewi")
    code_a = await order_code(h, first, CALBEE, "1")
    code_b = await order_code(h, second, CALBEE, "1")
    await tina(h, f"/ongkir {code_a} 30000")
    (reply,) = await tina(h, "/ongkir DEMO 20rb")
    assert "di 1 pesanan DEMO" in reply and "Dilewati: 1" in reply
    assert (await the_order(h, code_a)).shipping == 30_000
    assert (await the_order(h, code_b)).shipping == 20_000
    assert "Rp 20.000" in h.fake.texts_to(second)[-1]
    assert "Rp 20.000" not in h.fake.texts_to(first)[-1]


async def test_an_item_not_found_on_a_paid_order_is_owed_until_refunded(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    code = await order_code(h, buyer, CALBEE, "2")  # 2 × 65.000 + 2 × 10.000 fee
    await pay(h, buyer)
    (detail,) = await tina(h, f"/order {code}")
    assert f"1. 2× {CALBEE}" in detail
    (too_many,) = await tina(h, f"/refund {code} 1 3")
    assert "1 sampai 2" in too_many
    (no_item,) = await tina(h, f"/refund {code} 4")
    assert "tidak punya barang nomor 4" in no_item
    assert (await the_order(h, code)).total == 150_000  # nothing changed
    (reply,) = await tina(h, f"/refund {code} 1 1 stok habis")
    paid = (await the_order(h, code)).paid  # 150.000 and the unique digits
    left = "Rp " + f"{paid - 75_000:,}".replace(",", ".")
    assert f"Total turun Rp 75.000 menjadi {left}" in reply
    assert f"/refunded {code}" in reply
    told, asked = h.fake.texts_to(buyer)[-2:]
    assert f"1× {CALBEE}" in told and "(stok habis)" in told
    assert "mengembalikan Rp 75.000" in told and "dikirim ke mana" in asked
    order = await the_order(h, code)
    assert (order.total, order.subtotal, order.fee, order.refund_due) == (
        75_000,
        65_000,
        10_000,
        75_000,
    )
    assert order.status == "paid"
    (detail,) = await tina(h, f"/order {code}")
    assert f"~1× {CALBEE}~ — tidak didapat" in detail
    assert "Refund belum dikembalikan: Rp 75.000" in detail
    # the jastiper returned it: recorded once, the buyer told once
    (confirmed,) = await tina(h, f"/refunded {code}")
    assert "Refund Rp 75.000" in confirmed
    assert "sudah mengembalikan Rp 75.000" in h.fake.texts_to(buyer)[-1]
    before = len(h.fake.texts_to(buyer))
    (twice,) = await tina(h, f"/refunded {code}")
    assert "Tidak ada refund" in twice and len(h.fake.texts_to(buyer)) == before
    order = await the_order(h, code)
    assert (order.refund_due, order.refunded) == (0, 75_000)
    actions = await audit_actions(h)
    assert actions.count("order.refunded") == 1 and "order.refund" in actions


async def test_an_item_not_found_on_an_unpaid_order_lowers_what_is_owed(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    code = await order_code(h, buyer, CALBEE, "2")
    before = await the_order(h, code)
    await tina(h, f"/refund {code} 1 1")
    told = h.fake.texts_to(buyer)[-1]
    assert "berkurang Rp 75.000" in told
    order = await the_order(h, code)
    assert order.amount_due == before.amount_due - 75_000 and order.refund_due == 0
    assert exact(told) == "Rp " + f"{order.amount_due:,}".replace(",", ".")
    (detail,) = await tina(h, f"/order {code}")
    assert f"~1× {CALBEE}~ — tidak didapat\n" in detail and "refund" not in detail.lower()
    # the last one too: nothing is left to buy or pay, the order is cancelled
    await tina(h, f"/refund {code} 1")
    assert "dibatalkan" in h.fake.texts_to(buyer)[-1]
    order = await the_order(h, code)
    assert (order.status, order.total, order.refund_due) == ("cancelled", 0, 0)
    (gone,) = await tina(h, f"/refund {code} 1")
    assert "tidak bisa diubah lagi" in gone


async def test_on_a_dp_trip_ongkir_and_refunds_join_the_balance_bill(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(payment_type="dp", dp_percent=50))
    buyer = await joined(h)
    code = await order_code(h, buyer, CALBEE, "2")  # total 150.000, DP 75.000
    await pay(h, buyer)
    assert (await the_order(h, code)).status == "dp_paid"
    await tina(h, f"/ongkir {code} 25000")
    assert "ditagih bersama pelunasan" in h.fake.texts_to(buyer)[-1]
    await tina(h, f"/refund {code} 1 1")
    assert "berkurang Rp 75.000" in h.fake.texts_to(buyer)[-1]
    order = await the_order(h, code)
    assert (order.total, order.status, order.refund_due) == (100_000, "dp_paid", 0)
    (done,) = await tina(h, "/balance DEMO")
    assert "dikirim ke 1 pembeli" in done
    bill = h.fake.texts_to(buyer)[-1]
    assert "Ongkir: Rp 25.000" in bill and "Total: Rp 100.000" in bill
    assert "DP sudah dibayar: Rp 75.000" in bill
    order = await the_order(h, code)
    assert order.status == "awaiting_balance" and 25_001 <= order.amount_due <= 25_499
    await pay(h, buyer)
    assert (await the_order(h, code)).status == "paid"


async def test_the_recap_shows_ongkir_and_refunds(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    code = await order_code(h, buyer, CALBEE, "2")
    await pay(h, buyer)
    await tina(h, f"/ongkir {code} 20000")
    await pay(h, buyer)
    await tina(h, f"/refund {code} 1 1")
    await tina(h, "/recap DEMO csv")
    doc = h.fake.sent_to(DEMO_PHONE)[-1]
    text = h.fake.media[doc["document"]["id"]].data.decode("utf-8-sig")
    header, row = list(csv.reader(io.StringIO(text), delimiter=";"))[:2]
    assert header[-9:] == [
        "Fee jastip",
        "Ongkir",
        "Kode unik",
        "Total transfer",
        "Dibayar",
        "Refund belum dikembalikan",
        "Refund sudah dikembalikan",
        "Rekening refund",
        "No. resi",
    ]
    order = await the_order(h, code)
    paid = 150_000 + 20_000 + order.paid - 170_000  # both transfers, unique digits in
    assert row[0] == code and row[header.index("Tidak didapat")] == "1"
    assert row[-9:] == [
        "10000",
        "20000",
        str(order.unique_cents),
        str(paid - 75_000),
        str(paid),
        "75000",
        "0",
        "",
        "",
    ]


async def test_wrong_input_is_answered_and_changes_nothing(harness: Harness) -> None:
    from bot.accounts import add_jastiper

    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    code = await order_code(h, buyer, CALBEE, "1")
    rival = "6281100000002"
    await add_jastiper(h.settings, phone=rival, name="Rina")
    before = await the_order(h, code)
    assert "Contoh: /ongkir" in (await tina(h, "/ongkir"))[0]
    assert "Contoh: /ongkir" in (await tina(h, f"/ongkir {code}"))[0]
    assert "tidak ditemukan di trip-mu" in (await tina(h, "/ongkir JP-NOPE1 25000"))[0]
    for reply in (
        (await h.say(rival, f"/ongkir {code} 25000", name="Rina"))[0],
        (await h.say(rival, f"/refund {code} 1", name="Rina"))[0],
        (await h.say(rival, f"/refunded {code}", name="Rina"))[0],
    ):
        # someone else's order reads exactly like an unknown one
        assert reply == f"Pesanan {code} tidak ditemukan di trip-mu."
    assert "harus lebih dari Rp 0" in (await tina(h, f"/ongkir {code} -25000"))[0]
    assert "harus lebih dari Rp 0" in (await tina(h, f"/ongkir {code} 0"))[0]
    assert "tidak bisa dibaca" in (await tina(h, f"/ongkir {code} banyak"))[0]
    assert "terlalu besar" in (await tina(h, f"/ongkir {code} 500jt"))[0]
    assert "tidak ada di daftar trip-mu" in (await tina(h, "/ongkir NOPE 25000"))[0]
    assert "Contoh: /refund" in (await tina(h, f"/refund {code}"))[0]
    assert "Contoh: /refund" in (await tina(h, f"/refund {code} semua"))[0]
    assert "1 sampai 1" in (await tina(h, f"/refund {code} 1 2"))[0]
    assert "1 sampai 1" in (await tina(h, f"/refund {code} 1 0"))[0]
    assert "tidak ditemukan di trip-mu" in (await tina(h, "/refund JP-NOPE1 1"))[0]
    assert "Tidak ada refund" in (await tina(h, f"/refunded {code}"))[0]
    # a proof under review is settled first
    await h.send(
        simulate.media(buyer, "image", h.fake.add_media(jpeg(), "image/jpeg"), "image/jpeg")
    )
    texts_before = len(h.fake.texts_to(buyer))
    assert "belum dicek" in (await tina(h, f"/ongkir {code} 25000"))[0]
    assert "belum dicek" in (await tina(h, f"/refund {code} 1"))[0]
    after = await the_order(h, code)
    assert (after.shipping, after.total, after.amount_due, after.refund_due) == (
        0,
        before.total,
        before.amount_due,
        0,
    )
    assert len(h.fake.texts_to(buyer)) == texts_before
    async with h.db.read() as session:
        refunded = (await session.execute(select(OrderItem.refunded_quantity))).scalar_one()
    assert refunded == 0
    assert not {"order.shipping", "order.refund"} & set(await audit_actions(h))


async def test_ongkir_and_refund_in_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    code = await order_code(h, buyer, CALBEE, "2")
    await pay(h, buyer)
    await h.say(buyer, "LANGUAGE")
    await h.tap_title(buyer, "English")
    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    await tina(h, "/help")
    (help_text,) = await h.tap_title(DEMO_PHONE, "Money")  # the group's commands
    assert "/ongkir JP-ABCDE 25000" in help_text and "/refunded JP-ABCDE" in help_text
    assert "For example: /ongkir" in (await tina(h, "/ongkir"))[0]
    assert "more than Rp 0" in (await tina(h, f"/ongkir {code} -5"))[0]
    assert "was not found in your trips" in (await tina(h, "/refund JP-NOPE1 1"))[0]
    (set_reply,) = await tina(h, f"/ongkir {code} 25000")
    assert f"Shipping of {code}: Rp 25.000" in set_reply
    told = h.fake.texts_to(buyer)[-1]
    assert "shipping of order" in told and "Rp 25.000" in told and "exactly Rp 25." in told
    await pay(h, buyer)
    (refund_reply,) = await tina(h, f"/refund {code} 1 1 sold out")
    assert "marked not found" in refund_reply and f"type /refunded {code}" in refund_reply
    told = h.fake.texts_to(buyer)[-2]
    assert "could not get 1× Calbee Jagabee" in told and "(sold out)" in told
    assert "will refund Rp 75.000" in told
    (confirmed,) = await tina(h, f"/refunded {code}")
    assert "recorded as returned" in confirmed
    assert "has returned Rp 75.000" in h.fake.texts_to(buyer)[-1]
    assert "no refund left" in (await tina(h, f"/refunded {code}"))[0]
    (detail,) = await tina(h, f"/order {code}")
    assert f"~1× {CALBEE}~ — not found" in detail and "Refund returned: Rp 75.000" in detail


async def test_the_admin_order_page_shows_shipping_and_the_refund_owed(harness: Harness) -> None:
    from tests.admin_pages import logged_in

    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    code = await order_code(h, buyer, CALBEE, "2")
    await pay(h, buyer)
    await tina(h, f"/refund {code} 1 1")
    await logged_in(h)
    page = await (await h.client.get(f"/admin/orders/{code}")).text()
    assert "Refund belum dikembalikan" in page and "Rp 75.000" in page
    assert "1 tidak didapat" in page

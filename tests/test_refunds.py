"""Refunds paid back through the chat (issue #22, item 6), on both databases: the buyer
is asked where the refund goes and the account is stored sealed, the jastiper lists what
is owed to whom (``/refunds``, longest waiting first), a photo captioned ``/refunded
JP-XXXXX`` reaches the buyer, and the order detail marks what was not found."""

from __future__ import annotations

from sqlalchemy import text

from bot import simulate
from storage.demo import DEMO_PHONE
from storage.sealed import is_sealed
from tests.conftest import Harness
from tests.jastiper_pages import browser
from tests.jastiper_pages import logged_in as jastiper_logged_in
from tests.journeys import CALBEE, joined, jpeg, order_code, pay, the_order, tina

ACCOUNT = "BCA 1234567890 a.n. Sari Dewi"


async def refunded_one(h: Harness, buyer: str, code: str) -> None:
    """One of the two Calbee of a paid order was not found: Rp 75.000 owed back."""
    await tina(h, f"/refund {code} 1 1 stok habis")
    assert "mengembalikan Rp 75.000" in h.fake.texts_to(buyer)[-2]


async def test_the_refund_account_is_asked_stored_sealed_and_listed(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    dewi = await joined(h, "Dewi")
    sari = await joined(h, "Sari")
    code_dewi = await order_code(h, dewi, CALBEE, "2")  # the older order
    await pay(h, dewi)
    code_sari = await order_code(h, sari, CALBEE, "2")
    await pay(h, sari)
    assert "Tidak ada refund yang perlu dikembalikan" in (await tina(h, "/refunds"))[0]
    await refunded_one(h, sari, code_sari)  # owed first, though the newer order
    await refunded_one(h, dewi, code_dewi)

    # Given the buyer is asked where the refund goes, with a button
    assert h.fake.texts_to(sari)[-1].startswith(f"Refund Rp 75.000 untuk {code_sari}")
    (asked, example) = await h.tap_title(sari, "Isi rekening refund")
    assert "dikirim ke mana" in asked and "BCA 1234567890" in example
    # an account without a number is asked again, nothing stored
    (again,) = await h.say(sari, "BCA Sari Dewi")
    assert "Contoh: BCA 1234567890 Sari Dewi" in again
    assert (await the_order(h, code_sari)).refund_account is None
    (thanks,) = await h.say(sari, ACCOUNT)
    assert "akan dikirim ke BCA 1234567890 a.n. Sari Dewi" in thanks
    told = h.fake.texts_to(DEMO_PHONE)[-1]
    assert f"Rekening refund {code_sari}: BCA 1234567890 a.n. Sari Dewi" in told
    assert f"/refunded {code_sari}" in told

    # stored sealed: the raw column holds neither the number nor the holder
    async with h.db.read() as session:
        raw = (
            await session.execute(
                text("SELECT refund_account FROM orders WHERE code = :c"), {"c": code_sari}
            )
        ).scalar_one()
    assert is_sealed(raw)
    assert b"1234567890" not in bytes(raw) and b"Sari Dewi" not in bytes(raw)
    assert (await the_order(h, code_sari)).refund_account == {
        "provider": "BCA",
        "number": "1234567890",
        "holder": "Sari Dewi",
    }

    # the jastiper's list: the longest owed first, with the account or its absence
    (listed,) = await tina(h, "/refunds")
    assert listed.startswith("Refund yang harus dikembalikan (Rp 150.000):")
    assert listed.index(code_sari) < listed.index(code_dewi)
    assert (
        f"1. {code_sari} (DEMO) · Rp 75.000 · Sari\n   → BCA 1234567890 a.n. Sari Dewi" in listed
    )
    assert f"2. {code_dewi} (DEMO) · Rp 75.000 · Dewi\n   → rekening belum diisi pembeli" in listed
    assert "caption /refunded KODE" in listed
    # the jastiper's web page of the order shows it too
    async with browser(h) as web:
        await jastiper_logged_in(h, web, DEMO_PHONE, "Tina")
        page = await (await web.get(f"/j-web/orders/{code_sari}")).text()
    assert "Rekening refund" in page and "BCA 1234567890 · Sari Dewi" in page
    assert "Refund belum dikembalikan" in page


async def test_a_photo_captioned_refunded_reaches_the_buyer(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari = await joined(h, "Sari")
    code = await order_code(h, sari, CALBEE, "2")
    await pay(h, sari)
    await refunded_one(h, sari, code)
    await h.tap_title(sari, "Isi rekening refund")
    await h.say(sari, "GoPay, 0812-3456-7890, Sari Dewi")

    photo = h.fake.add_media(jpeg("blue"), "image/jpeg")
    before = len(h.fake.sent_to(sari))
    reply = await h.send(
        simulate.media(DEMO_PHONE, "image", photo, "image/jpeg", caption=f"/refunded {code}")
    )
    assert "dicatat sudah dikembalikan" in reply[-1]["text"]["body"]
    (received,) = h.fake.sent_to(sari)[before:]
    assert received["type"] == "image"
    caption = received["image"]["caption"]
    assert f"sudah mengembalikan Rp 75.000 untuk pesanan {code}" in caption
    assert "Ke: GoPay 081234567890 a.n. Sari Dewi" in caption
    assert h.fake.media[received["image"]["id"]].data[:2] == b"\xff\xd8"  # the photo itself
    order = await the_order(h, code)
    assert (order.refund_due, order.refunded) == (0, 75_000)
    # once: a second photo changes nothing and tells the buyer nothing
    again = await h.send(
        simulate.media(DEMO_PHONE, "image", photo, "image/jpeg", caption=f"/refunded {code}")
    )
    assert "Tidak ada refund" in again[-1]["text"]["body"]
    assert len(h.fake.sent_to(sari)) == before + 1
    assert "Tidak ada refund yang perlu dikembalikan" in (await tina(h, "/refunds"))[0]

    # the order detail marks what was not found and the refunded total
    await h.say(sari, "PESANAN")
    detail = (await h.tap_title(sari, h.last_choices(sari)[0][0]))[0]
    assert f"• 1× {CALBEE} — Rp 65.000" in detail
    assert f"~1× {CALBEE}~ — tidak didapat, refund Rp 65.000" in detail
    assert "Refund sudah dikembalikan: Rp 75.000" in detail
    assert f"2× {CALBEE} — Rp 130.000" not in detail
    (jdetail,) = await tina(h, f"/order {code}")
    assert f"1. 1× {CALBEE} — Rp 65.000" in jdetail and "tidak didapat" in jdetail
    assert "Refund sudah dikembalikan: Rp 75.000" in jdetail


async def test_refunds_in_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari = await joined(h, "Sari")
    code = await order_code(h, sari, CALBEE, "2")
    await pay(h, sari)
    await h.say(sari, "LANGUAGE")
    await h.tap_title(sari, "English")
    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    (marked,) = await tina(h, f"/refund {code} 1 1")
    assert "The buyer's account is in /refunds" in marked
    told, asked = h.fake.texts_to(sari)[-2:]
    assert "will refund Rp 75.000. Please tell us the account" in told
    assert asked == f"Where should the Rp 75.000 refund for {code} go? Tap the button below."
    (question, example) = await h.tap_title(sari, "Refund account")
    assert "Where should" in question and example.startswith("Type the bank or e-wallet")
    (again,) = await h.say(sari, "just send it back please")
    assert "For example: BCA 1234567890 Sari Dewi" in again
    (thanks,) = await h.say(sari, "Jago 100200300 Sari Dewi")
    assert thanks == (
        f"Thank you! The Rp 75.000 refund for {code} will be sent to Jago 100200300 (Sari Dewi)."
    )
    (listed,) = await tina(h, "/refunds")
    assert listed.startswith("Refunds to return (Rp 75.000):")
    assert "→ Jago 100200300 (Sari Dewi)" in listed and "captioned /refunded CODE" in listed
    photo = h.fake.add_media(jpeg("blue"), "image/jpeg")
    await h.send(
        simulate.media(DEMO_PHONE, "image", photo, "image/jpeg", caption=f"/refunded {code}")
    )
    received = h.fake.sent_to(sari)[-1]
    assert received["type"] == "image"
    assert "has returned Rp 75.000" in received["image"]["caption"]
    await h.say(sari, "ORDERS")
    detail = (await h.tap_title(sari, h.last_choices(sari)[0][0]))[0]
    assert f"~1× {CALBEE}~ — not found, refund Rp 65.000" in detail
    assert "Refund returned: Rp 75.000" in detail


async def test_a_bad_transfer_photo_or_someone_elses_order_loses_nothing(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    sari = await joined(h, "Sari")
    code = await order_code(h, sari, CALBEE, "2")
    await pay(h, sari)
    await refunded_one(h, sari, code)
    broken = h.fake.add_media(b"not an image at all", "image/jpeg")
    reply = await h.send(
        simulate.media(DEMO_PHONE, "image", broken, "image/jpeg", caption=f"/refunded {code}")
    )
    assert "tidak bisa dibuka" in reply[-1]["text"]["body"]
    photo = h.fake.add_media(jpeg(), "image/jpeg")
    reply = await h.send(
        simulate.media(DEMO_PHONE, "image", photo, "image/jpeg", caption="/refunded JP-NOPE1")
    )
    assert "tidak ditemukan di trip-mu" in reply[-1]["text"]["body"]
    assert (await the_order(h, code)).refund_due == 75_000
    # a buyer's photo captioned /refunded is not a refund of anything
    reply = await h.send(
        simulate.media(sari, "image", photo, "image/jpeg", caption=f"/refunded {code}")
    )
    assert (await the_order(h, code)).refund_due == 75_000
    # the button of an order with nothing owed any more answers so
    await tina(h, f"/refunded {code}")
    (nothing,) = await h.tap(sari, f"ord:refacct:{code}", "Isi rekening refund")
    assert f"Tidak ada refund yang menunggu untuk {code}" in nothing

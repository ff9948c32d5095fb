"""``/qris`` as conversations on both databases (issue #22): the jastiper sets their
merchant QRIS by text or by a photo of the sticker, confirms the merchant shown back,
and every buyer's payment instructions then come with a picture of the dynamic QRIS for
the exact unique amount, which reads back with that amount and a valid CRC. Wrong
pictures and texts are answered in the user's language and change nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select, update

from bot import simulate
from services import amounts, qris, qris_image
from storage.demo import DEMO_PHONE
from storage.models import AuditLog, Jastiper, Order, Trip
from tests.conftest import Harness
from tests.journeys import bca, joined, send_statement, statement_on, the_order

SAMPLES = json.loads((Path(__file__).parent / "fixtures/qris/samples.json").read_text())["samples"]
STATIC = next(s["payload"] for s in SAMPLES if s["kind"] == "static")  # Lazis Amalia Astra
TIPPED = next(s["payload"] for s in SAMPLES if s["kind"] == "static_tip")  # BIOLBE
DYNAMIC = next(s["payload"] for s in SAMPLES if s["kind"] == "dynamic")
CALBEE = "Calbee Jagabee"


async def tina(h: Harness, text: str) -> list[str]:
    return await h.say(DEMO_PHONE, text, name="Tina")


async def photo(h: Harness, data: bytes, caption: str = "/qris", mime: str = "image/png") -> str:
    """Tina sends a picture captioned ``caption``; returns the text of the one reply."""
    media = h.fake.add_media(data, mime)
    sent = await h.send(simulate.media(DEMO_PHONE, "image", media, mime, caption=caption))
    assert len(sent) == 1, sent
    return text_of(sent[0])


def text_of(message: dict[str, Any]) -> str:
    if message["type"] == "interactive":
        return str(message["interactive"]["body"]["text"])
    return str(message["text"]["body"])


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def sticker(payload: str) -> bytes:
    """A phone photo of a printed QRIS sticker: the QR on a larger beige background."""
    qr = Image.open(io.BytesIO(qris_image.render(payload))).convert("RGB").resize((600, 600))
    shot = Image.new("RGB", (1200, 1600), (232, 220, 200))
    shot.paste(qr, (300, 500))
    return jpeg(shot)


async def saved_qris(h: Harness) -> str | None:
    async with h.db.read() as session:
        return (await session.execute(select(Jastiper.qris))).scalar_one()


async def scanned_by_buyer(h: Harness, buyer: str) -> tuple[dict[str, str], str, str]:
    """The last picture the buyer got, read back: its QRIS fields, payload and caption."""
    image = next(m for m in reversed(h.fake.sent_to(buyer)) if m["type"] == "image")
    (payload,) = qris_image.decode(h.fake.media[image["image"]["id"]].data)
    return dict(qris.fields(payload)), payload, image["image"].get("caption", "")


ID_WORDS = ("CARI", "Pesan", "Lewati", "Checkout", "Ya, pakai ini", "Benar", "Konfirmasi")
EN_WORDS = ("SEARCH", "Order", "Skip", "Checkout", "Yes, use this", "Yes, correct", "Confirm")


async def order_one(
    h: Harness, buyer: str, product: str, qty: str = "1", words: tuple[str, ...] = ID_WORDS
) -> str:
    """Search → product → quantity → no note → checkout → address → confirm; returns the
    payment instructions text (a QRIS picture may follow it)."""
    search, order, skip, checkout, saved, correct, confirm = words
    await h.say(buyer, f"{search} {product}")
    await h.tap_title(buyer, product)
    await h.tap_title(buyer, order)
    await h.tap_title(buyer, qty)
    await h.tap_title(buyer, skip)
    await h.tap_title(buyer, checkout)
    if any(t == saved for t, _ in h.last_choices(buyer)):
        await h.tap_title(buyer, saved)
    else:
        await h.say(buyer, "Sari Wulandari")
        await h.say(buyer, "0812-3456-7890")
        await h.say(buyer, "Jl. Melati No. 5, RT 01/RW 02, Kebayoran Baru")
        await h.say(buyer, "Jakarta Selatan")
        await h.say(buyer, "12120")
        await h.tap_title(buyer, correct)
    done = await h.tap_title(buyer, confirm)
    return done[0]


async def placed(h: Harness) -> Order:
    async with h.db.read() as session:
        stmt = select(Order).order_by(Order.id.desc()).limit(1)
        return (await session.execute(stmt)).scalar_one()


async def test_a_photo_of_the_sticker_sets_the_qris_buyers_scan(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    shown = await photo(h, sticker(STATIC), mime="image/jpeg")
    assert "Lazis Amalia Astra PT Int" in shown and "JAKARTA UTARA" in shown
    assert [t for t, _ in h.last_choices(DEMO_PHONE)] == ["Pakai QRIS ini", "Batal"]
    assert await saved_qris(h) is None  # nothing changes before the tap
    (saved,) = await h.tap_title(DEMO_PHONE, "Pakai QRIS ini")
    assert "QRIS Lazis Amalia Astra PT Int disimpan" in saved
    assert await saved_qris(h) == STATIC
    # a buyer orders: the text names the exact amount, the QRIS picture carries it
    buyer = await joined(h)
    told = await order_one(h, buyer, CALBEE, "2")
    order = await placed(h)
    exact = "Rp " + f"{order.amount_due:,}".replace(",", ".")
    assert f"tepat {exact}" in told
    last_two = h.fake.sent_to(buyer)[-2:]
    assert [m["type"] for m in last_two] == ["text", "image"]  # the text first, then the QR
    tags, payload, caption = await scanned_by_buyer(h, buyer)
    assert tags["54"] == str(order.amount_due) and tags["01"] == "12"
    assert qris.crc_ok(payload) and tags["59"] == "Lazis Amalia Astra PT Int"
    assert exact in caption and "Lazis Amalia Astra PT Int" in caption
    async with h.db.read() as session:
        actions = set((await session.execute(select(AuditLog.action))).scalars())
    assert "jastiper.qris" in actions
    # the buyer who looks the unpaid order up again gets the same QRIS with it
    await h.say(buyer, "PESANAN")
    (row,) = [t for t, _ in h.last_choices(buyer) if t.startswith(order.code)]
    await h.tap_title(buyer, row)
    again = h.fake.sent_to(buyer)[-1]
    assert again["type"] == "image"
    assert qris_image.decode(h.fake.media[again["image"]["id"]].data) == [payload]


async def test_the_qris_as_text_and_a_tip_prompt_dropped(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    (shown,) = await tina(h, f"/qris {TIPPED}")
    assert "BIOLBE" in shown and "KAB. MALANG" in shown
    await h.tap_title(DEMO_PHONE, "Pakai QRIS ini")
    buyer = await joined(h)
    await order_one(h, buyer, CALBEE, "1")
    order = await placed(h)
    tags, payload, _caption = await scanned_by_buyer(h, buyer)
    assert tags["54"] == str(order.amount_due) and qris.crc_ok(payload)
    assert "55" not in tags  # the payer's app must not ask for a tip on top
    # /qris alone names the one in use; /qris off stops the pictures
    current = await tina(h, "/qris")
    assert "BIOLBE" in current[0]
    (off,) = await tina(h, "/qris off")
    assert "QRIS dihapus" in off and await saved_qris(h) is None
    second = await joined(h, "Dewi")
    await order_one(h, second, CALBEE, "1")
    assert all(m["type"] != "image" for m in h.fake.sent_to(second)[-1:])


async def test_a_new_amount_after_ongkir_comes_with_its_own_qris(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, f"/qris {STATIC}")
    await h.tap_title(DEMO_PHONE, "Pakai QRIS ini")
    buyer = await joined(h)
    await order_one(h, buyer, CALBEE, "1")
    first = await placed(h)
    await tina(h, f"/ongkir {first.code} 25000")
    order = await placed(h)
    assert order.amount_due == first.amount_due + 25_000
    told, image = h.fake.sent_to(buyer)[-2:]
    assert "tepat Rp " in told["text"]["body"] and image["type"] == "image"
    tags, payload, _caption = await scanned_by_buyer(h, buyer)
    assert tags["54"] == str(order.amount_due) and qris.crc_ok(payload)


async def test_on_a_dp_trip_what_the_qris_asks_is_what_mutasi_matches(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(payment_type="dp", dp_percent=50))
    await tina(h, f"/qris {STATIC}")
    await h.tap_title(DEMO_PHONE, "Pakai QRIS ini")
    buyer = await joined(h)
    await order_one(h, buyer, CALBEE, "1")
    code = (await placed(h)).code
    # the buyer pays what the scanned QRIS says; the bank statement shows that credit
    tags, _payload, _caption = await scanned_by_buyer(h, buyer)
    await send_statement(h, bca((int(tags["54"]), "QRIS DP SARI", "CR")))
    assert (await placed(h)).status == "dp_paid"
    await tina(h, "/balance DEMO")
    balance = await placed(h)
    assert balance.status == "awaiting_balance"
    tags, payload, _caption = await scanned_by_buyer(h, buyer)
    assert tags["54"] == str(balance.amount_due) and qris.crc_ok(payload)
    await send_statement(h, bca((int(tags["54"]), "QRIS LUNAS SARI", "CR")))
    order = await placed(h)
    assert (order.code, order.status) == (code, "paid")


async def test_cancel_keeps_what_was_there(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, f"/qris {TIPPED}")
    await h.tap_title(DEMO_PHONE, "Pakai QRIS ini")
    await tina(h, f"/qris {STATIC}")
    ok_id = dict(h.last_choices(DEMO_PHONE))["Pakai QRIS ini"]
    (kept,) = await h.tap_title(DEMO_PHONE, "Batal")
    assert "QRIS tidak diubah" in kept
    # the other button of that message, tapped late, no longer does anything
    (stale,) = await h.tap(DEMO_PHONE, ok_id, "Pakai QRIS ini")
    assert "sudah tidak berlaku" in stale
    assert await saved_qris(h) == TIPPED
    buyer = await joined(h)
    await order_one(h, buyer, CALBEE, "1")
    order = await placed(h)
    tags, _payload, _caption = await scanned_by_buyer(h, buyer)
    assert tags["59"] == "BIOLBE" and tags["54"] == str(order.amount_due)


async def test_wrong_pictures_and_texts_are_answered_and_change_nothing(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    blank = jpeg(Image.new("RGB", (800, 600), "white"))
    assert "Tidak ada QR yang terbaca" in await photo(h, blank, mime="image/jpeg")
    link = qris_image.render("https://example.com/bayar")
    assert "bukan QRIS pembayaran" in await photo(h, link)
    broken = STATIC[:-1] + ("0" if STATIC[-1] != "0" else "1")
    assert "CRC" in await photo(h, qris_image.render(broken))
    assert "QRIS dinamis" in await photo(h, qris_image.render(DYNAMIC))
    assert "bukan QRIS pembayaran" in (await tina(h, "/qris halo"))[0]
    assert "CRC" in (await tina(h, f"/qris {broken}"))[0]
    assert "QRIS dinamis" in (await tina(h, f"/qris {DYNAMIC}"))[0]
    assert await saved_qris(h) is None
    # no QRIS set: the payment instructions are the text alone, as before
    buyer = await joined(h)
    await order_one(h, buyer, CALBEE, "1")
    assert h.fake.sent_to(buyer)[-1]["type"] == "text"


async def test_a_buyer_sending_a_qris_photo_is_not_understood(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    buyer = await joined(h)
    media = h.fake.add_media(qris_image.render(STATIC), "image/png")
    sent = await h.send(simulate.media(buyer, "image", media, "image/png", caption="/qris"))
    assert len(sent) == 1 and "aku belum paham" in text_of(sent[0])
    assert "Pakai QRIS ini" not in [t for t, _ in h.last_choices(buyer)]
    assert await saved_qris(h) is None


async def test_qris_in_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    await tina(h, "/help")
    (help_text,) = await h.tap_title(DEMO_PHONE, "Money")  # the group's commands
    assert "/qris" in help_text
    blank = jpeg(Image.new("RGB", (800, 600), "white"))
    assert "No QR code could be read" in await photo(h, blank, mime="image/jpeg")
    assert "not a payment QRIS" in (await tina(h, "/qris https://example.com"))[0]
    assert "dynamic QRIS" in (await tina(h, f"/qris {DYNAMIC}"))[0]
    shown = await photo(h, sticker(TIPPED), mime="image/jpeg")
    assert "BIOLBE" in shown and "Use this QRIS" in [t for t, _ in h.last_choices(DEMO_PHONE)]
    (saved,) = await h.tap_title(DEMO_PHONE, "Use this QRIS")
    assert "QRIS BIOLBE saved" in saved
    buyer = await joined(h)
    await h.say(buyer, "LANGUAGE")
    await h.tap_title(buyer, "English")
    await order_one(h, buyer, CALBEE, words=EN_WORDS)
    order = await placed(h)
    exact = "Rp " + f"{order.amount_due:,}".replace(",", ".")
    tags, payload, caption = await scanned_by_buyer(h, buyer)
    assert tags["54"] == str(order.amount_due) and qris.crc_ok(payload)
    assert f"exactly {exact}" in caption and "scan" in caption


async def the_orders(h: Harness) -> dict[str, Order]:
    async with h.db.read() as session:
        return {o.code: o for o in (await session.execute(select(Order))).scalars()}


async def test_a_trip_wide_ongkir_brings_each_buyer_the_qris_for_their_amount(
    harness: Harness,
) -> None:
    """``/ongkir DEMO 25000``: two buyers, one reading Indonesian and one English, each
    get the new amount to transfer and a QRIS whose amount is exactly that (unique
    digits in, ``services.amounts.due_now``); one who already paid is billed only the
    shipping, with fresh unique digits, and scans that."""
    h = harness
    await h.seed_demo()
    await tina(h, f"/qris {STATIC}")
    await h.tap_title(DEMO_PHONE, "Pakai QRIS ini")
    sari = await joined(h)
    await order_one(h, sari, CALBEE, "1")
    sari_code = (await placed(h)).code
    john = await joined(h, "John")
    await h.say(john, "LANGUAGE")
    await h.tap_title(john, "English")
    await order_one(h, john, CALBEE, "2", words=EN_WORDS)
    john_code = (await placed(h)).code
    dewi = await joined(h, "Dewi")
    await order_one(h, dewi, CALBEE, "1")
    dewi_code = (await placed(h)).code
    # Dewi pays by scanning her QRIS; the statement confirms it
    tags, _payload, _caption = await scanned_by_buyer(h, dewi)
    await send_statement(h, bca((int(tags["54"]), "QRIS DEWI", "CR")))
    before = await the_orders(h)
    assert before[dewi_code].status == "paid"

    (reply,) = await tina(h, "/ongkir DEMO 25000")
    assert "3 pesanan DEMO" in reply
    after = await the_orders(h)
    for buyer, code, words in ((sari, sari_code, "tepat"), (john, john_code, "exactly")):
        order = after[code]
        assert order.amount_due == before[code].amount_due + 25_000
        exact = "Rp " + f"{amounts.due_now(order):,}".replace(",", ".")
        told, image = h.fake.sent_to(buyer)[-2:]
        assert f"{words} {exact}" in told["text"]["body"] and image["type"] == "image"
        tags, payload, caption = await scanned_by_buyer(h, buyer)
        assert tags["54"] == str(amounts.due_now(order)) and tags["01"] == "12"
        assert qris.crc_ok(payload) and exact in caption
    assert "scan" in h.fake.sent_to(john)[-1]["image"]["caption"]  # English caption
    paid = after[dewi_code]
    assert paid.status == "awaiting_balance"  # billed the shipping, with its own digits
    assert amounts.due_now(paid) == 25_000 + paid.unique_cents
    tags, payload, _caption = await scanned_by_buyer(h, dewi)
    assert tags["54"] == str(amounts.due_now(paid)) and qris.crc_ok(payload)
    # what the QRIS asks is what /mutasi matches
    await send_statement(h, bca((int(tags["54"]), "QRIS ONGKIR DEWI", "CR")))
    assert (await the_orders(h))[dewi_code].status == "paid"


async def test_ongkir_qris_in_english(harness: Harness) -> None:
    """One order's ``/ongkir`` from a jastiper writing English: the English buyer gets
    the new total, then a QRIS for exactly the amount due."""
    h = harness
    await h.seed_demo()
    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    await tina(h, f"/qris {TIPPED}")
    await h.tap_title(DEMO_PHONE, "Use this QRIS")
    buyer = await joined(h)
    await h.say(buyer, "LANGUAGE")
    await h.tap_title(buyer, "English")
    await order_one(h, buyer, CALBEE, words=EN_WORDS)
    code = (await placed(h)).code
    (reply,) = await tina(h, f"/ongkir {code} 25rb")
    order = await placed(h)
    exact = "Rp " + f"{amounts.due_now(order):,}".replace(",", ".")
    assert f"Shipping of {code}: Rp 25.000" in reply
    told, image = h.fake.sent_to(buyer)[-2:]
    assert f"exactly {exact}" in told["text"]["body"] and image["type"] == "image"
    tags, payload, caption = await scanned_by_buyer(h, buyer)
    assert tags["54"] == str(amounts.due_now(order)) and qris.crc_ok(payload)
    assert tags["59"] == "BIOLBE" and f"exactly {exact}" in caption and "scan" in caption


async def settlement(h: Harness) -> tuple[str | None, str | None]:
    async with h.db.read() as session:
        stmt = select(Jastiper.qris_bank_name, Jastiper.qris_account_number)
        bank, number = (await session.execute(stmt)).one()
    return bank, number


async def test_a_statement_of_the_qris_settlement_account_confirms_once_recorded(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, f"/qris {STATIC}")
    await h.tap_title(DEMO_PHONE, "Pakai QRIS ini")
    # the QRIS settles into Tina's BSI account, which the QRIS does not name
    (howto,) = await tina(h, "/qris rekening")
    assert "/qris rekening BANK NOMOR" in howto
    await order_one(h, await joined(h, "Sari"), CALBEE, "1")
    code, amount = (await placed(h)).code, (await placed(h)).amount_due
    bsi = statement_on("bsi.csv", amount)
    summary = await send_statement(h, bsi)
    assert "Rekening berbeda" in summary
    assert "ini mutasi rekening BSI 7123456789, tapi pesanan ini dibayar ke BCA" in summary
    assert "catat dulu: /qris rekening BSI 7123456789" in summary
    assert (await the_order(h, code)).status == "awaiting_payment"
    # Tina records it; /qris says it back; the same statement now confirms
    (saved,) = await tina(h, "/qris rekening BSI 712-345-6789")
    assert "Rekening pencairan QRIS dicatat: BSI 7123456789" in saved
    assert await settlement(h) == ("BSI", "7123456789")
    shown = await tina(h, "/qris")
    assert any("Rekening pencairan QRIS: BSI 7123456789" in text for text in shown)
    summary = await send_statement(h, bsi)
    assert f"• {code} — Sari" in summary and "Rekening berbeda" not in summary
    assert (await the_order(h, code)).status == "paid"
    # another bank's statement is still another account
    await order_one(h, await joined(h, "Budi"), CALBEE, "1")
    other, other_amount = (await placed(h)).code, (await placed(h)).amount_due
    summary = await send_statement(h, statement_on("permata.csv", other_amount))
    assert "Rekening berbeda" in summary and "/qris rekening" not in summary
    assert (await the_order(h, other)).status == "awaiting_payment"


async def test_the_qris_settlement_account_in_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    await tina(h, f"/qris {STATIC}")
    await h.tap_title(DEMO_PHONE, "Use this QRIS")
    await order_one(h, await joined(h, "Sari"), CALBEE, "1")
    code, amount = (await placed(h)).code, (await placed(h)).amount_due
    summary = await send_statement(h, statement_on("cimb_niaga.csv", amount))
    assert "Another account" in summary
    assert "record it first: /qris account CIMB Niaga 800123456789" in summary
    (saved,) = await tina(h, "/qris account CIMB Niaga 800123456789")
    assert "QRIS settlement account recorded: CIMB Niaga 800123456789" in saved
    summary = await send_statement(h, statement_on("cimb_niaga.csv", amount))
    assert f"• {code} — Sari" in summary
    (gone,) = await tina(h, "/qris account off")
    assert "QRIS settlement account removed" in gone
    assert await settlement(h) == (None, None)
    (howto,) = await tina(h, "/qris account nonsense")
    assert "/qris account BANK NUMBER" in howto

"""Bank statements confirm payments (``/mutasi``, issue #14): a jastiper sends their
internet banking's statement export as a document captioned ``/mutasi``; each credit
equal to exactly one open payment's unique amount confirms it and the buyer is told.
Conversations on both databases, with wrong input answered and nothing changed."""

from __future__ import annotations

import datetime as dt
import html
import io

import aiohttp
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select, update

from bot import simulate
from bot.keys import MEDIA
from services import orders as orders_service
from storage.demo import DEMO_PHONE
from storage.models import (
    AuditLog,
    Order,
    PaymentProof,
    Product,
    StatementCredit,
    Trip,
    utcnow,
)
from tests.conftest import Harness, _text_of
from tests.jastiper_pages import csrf_of, logged_in
from tests.journeys import (
    CALBEE,
    CSV,
    NEW_LAYOUTS,
    ROYCE,
    bca,
    bought,
    jpeg,
    pay,
    send_statement,
    statement_on,
    the_order,
    tina,
    today,
    told,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CONFIRMED = "Pembayaran untuk pesanan {code} sudah dikonfirmasi jastiper"


async def count(h: Harness, model: type) -> int:
    async with h.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_bca_statement_confirms_the_buyers_exact_amount(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    budi, other, other_amount = await bought(h, "Budi", CALBEE)
    before = len(h.fake.sent_to(budi))
    summary = await send_statement(
        h,
        bca(
            (amount, f"TRSF E-BANKING CR 0211/FTSCY/WS95031 {amount}.00 SARI", "CR"),
            (50_000, "TRSF E-BANKING CR 0211/FTSCY/WS95031 50000.00 RINA", "CR"),
            (amount, "TARIKAN ATM", "DB"),  # a debit of the same amount confirms nothing
        ),
    )
    # the buyer is told as if Tina had approved a proof
    assert CONFIRMED.format(code=code) in told(h, sari)[-1]
    assert (await the_order(h, code)).status == "paid"
    # the summary: matched (order, buyer, amount), credits matching nothing, still open
    assert "Mutasi dibaca: 2 kredit." in summary
    assert "Dikonfirmasi (1), pembeli sudah dikabari" in summary
    money = f"Rp {amount:,}".replace(",", ".")
    assert f"• {code} — Sari — {money}" in summary
    assert "Kredit tanpa pesanan yang cocok (1)" in summary and "Rp 50.000" in summary
    assert "RINA" in summary
    other_money = f"Rp {other_amount:,}".replace(",", ".")
    assert "Pembayaran masih terbuka (1)" in summary
    assert f"• {other} — Budi — {other_money}" in summary
    # the other buyer heard nothing, their order still waits
    assert len(h.fake.sent_to(budi)) == before
    assert (await the_order(h, other)).status == "awaiting_payment"
    # the statement line is the payment's proof, approved: that line alone is kept
    async with h.db.read() as session:
        (proof,) = (await session.execute(select(PaymentProof))).scalars()
    assert proof.status == "approved" and proof.mime_type == CSV
    kept = (await h.app[MEDIA].get(proof.media_key)).decode()
    assert f"{amount}" in kept and "SARI" in kept
    assert "RINA" not in kept and "TARIKAN" not in kept


async def test_the_same_statement_twice_changes_nothing(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    statement = bca((amount, "TRSF E-BANKING CR SARI", "CR"))
    await send_statement(h, statement)
    heard = len(h.fake.sent_to(sari))
    again = await send_statement(h, statement)
    assert "1 kredit sudah dipakai dari mutasi sebelumnya" in again
    assert "Tidak ada pembayaran baru yang cocok" in again
    assert len(h.fake.sent_to(sari)) == heard  # the buyer is not told twice
    assert await count(h, StatementCredit) == 1
    assert await count(h, PaymentProof) == 1
    async with h.db.read() as session:
        approvals = (
            await session.execute(select(func.count()).where(AuditLog.action == "proof.approve"))
        ).scalar_one()
    assert approvals == 1
    assert (await the_order(h, code)).status == "paid"


async def test_a_credit_matching_two_payments_confirms_neither(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari, first, amount = await bought(h, "Sari")
    budi, second, _amount = await bought(h, "Budi")
    async with h.db.transaction() as session:  # two orders due the very same amount
        await session.execute(update(Order).values(amount_due=amount))
    heard = (len(h.fake.sent_to(sari)), len(h.fake.sent_to(budi)))
    summary = await send_statement(h, bca((amount, "TRSF E-BANKING CR", "CR")))
    assert "Cocok dengan lebih dari satu pesanan" in summary
    assert f"{first}, {second}: tidak dikonfirmasi, cek manual" in summary
    assert "Pembayaran masih terbuka (2)" in summary
    for code in (first, second):
        assert (await the_order(h, code)).status == "awaiting_payment"
    assert (len(h.fake.sent_to(sari)), len(h.fake.sent_to(budi))) == heard
    assert await count(h, StatementCredit) == 0


async def test_a_credit_for_an_already_paid_order_changes_nothing(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    await pay(h, sari)  # paid the usual way: a proof, approved
    heard = len(h.fake.sent_to(sari))
    summary = await send_statement(h, bca((amount, "TRSF E-BANKING CR SARI", "CR")))
    money = f"Rp {amount:,}".replace(",", ".")
    assert f"pesanan {code} sudah lunas, tidak ada yang berubah" in summary
    assert money in summary
    assert len(h.fake.sent_to(sari)) == heard
    assert await count(h, StatementCredit) == 0
    assert await count(h, PaymentProof) == 1


async def test_a_proof_awaiting_review_is_approved_by_the_statement(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    await h.send(
        simulate.media(sari, "image", h.fake.add_media(jpeg(), "image/jpeg"), "image/jpeg")
    )
    assert (await the_order(h, code)).status == "proof_submitted"
    summary = await send_statement(h, bca((amount, "TRSF E-BANKING CR SARI", "CR")))
    assert f"• {code} — Sari" in summary
    assert CONFIRMED.format(code=code) in told(h, sari)[-1]
    async with h.db.read() as session:
        (proof,) = (await session.execute(select(PaymentProof))).scalars()
    assert proof.status == "approved" and proof.mime_type == "image/jpeg"  # the buyer's own
    # Tina's Setujui button on that proof is spent now
    approve = h.fake.sent_to(DEMO_PHONE)[-2]["interactive"]["action"]["buttons"][0]["reply"]
    (answer,) = await h.tap(DEMO_PHONE, approve["id"], "Setujui", name="Tina")
    assert "sudah diproses" in answer


async def test_a_credit_before_the_order_was_placed_matches_nothing(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    _sari, code, amount = await bought(h, "Sari")
    last_week = today() - dt.timedelta(days=7)
    summary = await send_statement(h, bca((amount, "TRSF CR OLD", "CR"), day=last_week))
    assert "Kredit tanpa pesanan yang cocok (1)" in summary
    assert (await the_order(h, code)).status == "awaiting_payment"


async def test_a_bni_workbook_confirms_a_payment(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:  # this trip is paid into its own BNI account
        await session.execute(
            update(Trip).values(bank_name="BNI", bank_account_number="0987-654-321")
        )
    _sari, code, amount = await bought(h, "Sari")
    book = Workbook()
    sheet = book.active
    sheet.append(["Informasi Rekening - Mutasi Rekening"])
    sheet.append(["No. Rekening", "0987654321"])
    sheet.append([])
    sheet.append(["No.", "Tanggal Transaksi", "Uraian Transaksi", "Tipe", "Nominal", "Saldo"])
    sheet.append(
        [
            1,
            dt.datetime.combine(today(), dt.time(9)),
            "TRANSFER DARI SARI",
            "Cr",
            f"{amount:,}.00".replace(",", "X").replace(".", ",").replace("X", "."),
            0,
        ]
    )
    buf = io.BytesIO()
    book.save(buf)
    summary = await send_statement(h, buf.getvalue(), XLSX, "mutasi.xlsx")
    assert f"• {code} — Sari" in summary
    assert (await the_order(h, code)).status == "paid"


async def test_wrong_files_are_answered_and_change_nothing(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari, code, _amount = await bought(h, "Sari")
    not_a_statement = b"Nama,Alamat,Ukuran\nSari,Jl. Mawar 1,M\n"
    answer = await send_statement(h, not_a_statement)
    assert "tidak terbaca sebagai mutasi rekening" in answer
    assert "Tidak ada pesanan yang berubah" in answer
    answer = await send_statement(h, b"\x00\x01garbage\xff" * 50, "application/pdf", "x.pdf")
    assert "tidak terbaca sebagai mutasi rekening" in answer
    answer = await send_statement(
        h, b"\xd0\xcf\x11\xe0" + b"\x00" * 600, "application/vnd.ms-excel", "m.xls"
    )
    assert "File Excel lama (.xls)" in answer
    # too large for a statement: refused before it is downloaded
    media = h.fake.add_media(b"x" * 100, CSV, filename="big.csv", reported_size=3_000_000)
    sent = await h.send(
        simulate.media(DEMO_PHONE, "document", media, CSV, caption="/mutasi", name="Tina")
    )
    assert "terlalu besar (maks. 2 MB)" in sent[0]["text"]["body"]
    # a photo of the statement captioned /mutasi is no export either
    media = h.fake.add_media(jpeg(), "image/jpeg")
    sent = await h.send(
        simulate.media(DEMO_PHONE, "image", media, "image/jpeg", caption="/mutasi", name="Tina")
    )
    assert "tidak terbaca sebagai mutasi rekening" in sent[0]["text"]["body"]
    # /mutasi typed alone says how
    (how,) = await tina(h, "/mutasi")
    assert "sebagai *dokumen* dengan caption /mutasi" in how
    assert (await the_order(h, code)).status == "awaiting_payment"
    assert await count(h, PaymentProof) == 0
    assert await count(h, StatementCredit) == 0
    assert not any(CONFIRMED.format(code=code) in text for text in told(h, sari))


async def test_a_buyer_cannot_confirm_payments_with_a_statement(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    answer = await send_statement(h, bca((amount, "TRSF CR", "CR")), who=sari)
    assert answer and "Dikonfirmasi" not in answer  # answered, but not as a jastiper
    assert (await the_order(h, code)).status == "awaiting_payment"


async def test_the_summary_and_errors_in_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    _sari, code, amount = await bought(h, "Sari")
    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    wrong = await send_statement(h, b"Nama,Alamat\nSari,Jl. Mawar\n")
    assert "can't be read as an account statement" in wrong
    assert "No order was changed" in wrong
    summary = await send_statement(h, bca((amount, "TRSF E-BANKING CR SARI", "CR")))
    assert "Statement read — credits: 1." in summary
    assert "Confirmed (1), buyers told" in summary and f"• {code} — Sari" in summary
    assert "No payment is still open." in summary


async def upload(
    h: Harness, token: str, data: bytes, filename: str = "mutasi.csv"
) -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("statement", data, filename=filename, content_type=CSV)
    resp = await h.client.post("/j-web/statement", data=form)
    return resp.status, html.unescape(await resp.text())


async def test_a_statement_uploaded_in_the_web_panel_confirms_as_in_chat(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    await logged_in(h, h.client, DEMO_PHONE, "Tina")
    token = await csrf_of(h.client, "/j-web/proofs")
    # without the CSRF token: refused, nothing changes
    form = aiohttp.FormData()
    form.add_field("statement", bca((amount, "TRSF CR SARI", "CR")), filename="m.csv")
    bare = await h.client.post("/j-web/statement", data=form)
    assert bare.status == 403
    assert (await the_order(h, code)).status == "awaiting_payment"
    # not a statement: said on the page, nothing changes
    status, page = await upload(h, token, b"Nama,Alamat\nSari,Jl. Mawar\n")
    assert status == 409 and "tidak terbaca sebagai mutasi rekening" in page
    assert (await the_order(h, code)).status == "awaiting_payment"
    # the statement: the summary on the page, the buyer told as from chat
    status, page = await upload(h, token, bca((amount, "TRSF CR SARI", "CR")))
    assert status == 200
    assert "Dikonfirmasi (1)" in page and f"• {code} — Sari" in page
    await h.settle()
    assert CONFIRMED.format(code=code) in told(h, sari)[-1]
    assert (await the_order(h, code)).status == "paid"
    # the same file again, now in chat: nothing changes
    again = await send_statement(h, bca((amount, "TRSF CR SARI", "CR")))
    assert "1 kredit sudah dipakai dari mutasi sebelumnya" in again
    assert await count(h, StatementCredit) == 1


async def test_a_long_statement_gives_a_summary_that_fits_one_message(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    _sari, code, _amount = await bought(h, "Sari")
    lines = [
        (10_000 + n, f"TRSF E-BANKING CR 0211/FTSCY/WS95031 PEMBELI NOMOR {n}", "CR")
        for n in range(60)
    ]
    summary = await send_statement(h, bca(*lines))
    assert "Kredit tanpa pesanan yang cocok (60)" in summary
    assert "… dan 50 lagi" in summary
    # the last section is still there: nothing was cut off
    assert f"Pembayaran masih terbuka (1):\n• {code} — Sari" in summary
    assert len(summary) < 4096


async def test_on_a_dp_trip_the_dp_then_the_balance_are_confirmed(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(payment_type="dp", dp_percent=50))
    sari, code, dp = await bought(h, "Sari", CALBEE)
    await send_statement(h, bca((dp, "TRSF CR SARI DP", "CR")))
    assert (await the_order(h, code)).status == "dp_paid"
    assert CONFIRMED.format(code=code) in told(h, sari)[-1]
    await tina(h, "/balance DEMO")
    balance = (await the_order(h, code)).amount_due
    # the statement now holds both credits: the DP line is used already, the balance is new
    summary = await send_statement(
        h, bca((dp, "TRSF CR SARI DP", "CR"), (balance, "TRSF CR SARI LUNAS", "CR"))
    )
    assert "1 kredit sudah dipakai dari mutasi sebelumnya" in summary
    assert f"• {code} — Sari" in summary
    assert (await the_order(h, code)).status == "paid"


# --- issue #22: the statement's account, PEND, unreadable amounts, late payments -----------

BNI_TRIP = "BNI 0987654321"


async def trip_paid_into_bni(h: Harness) -> None:
    """The demo trip has its own account, BNI 0987654321 (Tina's default is BCA)."""
    async with h.db.transaction() as session:
        await session.execute(
            update(Trip).values(bank_name="BNI", bank_account_number="0987654321")
        )


async def test_a_statement_of_another_account_confirms_nothing(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    await trip_paid_into_bni(h)
    sari, code, amount = await bought(h, "Sari")
    heard = len(h.fake.sent_to(sari))
    # Tina's BCA statement shows a credit of exactly Sari's amount
    summary = await send_statement(h, bca((amount, "TRSF E-BANKING CR SARI", "CR")))
    assert "Rekening berbeda" in summary
    assert (
        f"sama dengan {code}: tidak dikonfirmasi, karena ini mutasi rekening BCA 1234567890, "
        f"tapi pesanan ini dibayar ke {BNI_TRIP}"
    ) in summary
    assert "Tidak ada pembayaran baru yang cocok" in summary
    assert (await the_order(h, code)).status == "awaiting_payment"
    assert len(h.fake.sent_to(sari)) == heard
    assert await count(h, StatementCredit) == 0
    # in English too
    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    summary = await send_statement(h, bca((amount, "TRSF E-BANKING CR SARI", "CR")))
    assert (
        f"matches {code}: not confirmed, because this is the statement of BCA 1234567890, "
        f"but this order was to be paid into {BNI_TRIP}"
    ) in summary


async def test_a_statement_that_states_no_account_confirms_and_says_so(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    bare = f'Tanggal,Keterangan,Debit,Kredit\n{today():%d/%m/%Y},TRANSFER SARI,0,"{amount}"\n'
    summary = await send_statement(h, bare.encode())
    assert f"• {code} — Sari" in summary
    assert "Nomor rekening tidak tercantum di file ini" in summary
    assert (await the_order(h, code)).status == "paid"
    assert CONFIRMED.format(code=code) in told(h, sari)[-1]


async def test_a_pending_credit_of_today_confirms_and_is_labelled_pend(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    statement = bca((amount, "TRSF E-BANKING CR SARI", "CR")).replace(
        f"'{today():%d/%m},".encode(), b"'PEND,"
    )
    summary = await send_statement(h, statement)
    assert "Mutasi dibaca: 1 kredit." in summary
    money = f"Rp {amount:,}".replace(",", ".")
    assert f"• {code} — Sari — {money} (PEND)" in summary
    assert (await the_order(h, code)).status == "paid"
    assert CONFIRMED.format(code=code) in told(h, sari)[-1]


async def test_amounts_of_unknown_direction_are_explained_not_a_bare_zero(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    _sari, code, amount = await bought(h, "Sari")
    data = f'Tanggal;Keterangan;Nominal\n{today():%d/%m/%Y};TRANSFER SARI;"{amount},00"\n'
    summary = await send_statement(h, data.encode())
    assert "Mutasi dibaca: 0 kredit." in summary
    assert "Kolom nominal tidak dikenali: “Nominal” (1 transaksi)" in summary
    assert (await the_order(h, code)).status == "awaiting_payment"
    # a statement of debits only says so
    summary = await send_statement(h, bca((amount, "TARIKAN ATM", "DB"), (5_000, "BIAYA", "DB")))
    assert "Tidak ada transfer masuk di file ini: 2 transaksinya semua keluar (debit)." in summary
    assert (await the_order(h, code)).status == "awaiting_payment"


async def test_a_bca_html_xls_and_a_pdf_are_answered(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    pdf = await send_statement(h, b"%PDF-1.4\n%\xe2\xe3\n1 0 obj", "application/pdf", "e.pdf")
    assert "E-statement PDF belum bisa dibaca" in pdf and "CSV atau Excel" in pdf
    assert (await the_order(h, code)).status == "awaiting_payment"
    html_xls = (
        "<html><body><table><tr><td>No. rekening</td><td>: 1234567890</td></tr>"
        "<tr><th>Tanggal Transaksi</th><th>Keterangan</th><th>Cabang</th><th>Jumlah</th>"
        "<th></th><th>Saldo</th></tr>"
        f"<tr><td>{today():%d/%m/%Y}</td><td>TRSF E-BANKING CR<br>SARI</td><td>0000</td>"
        f"<td>{amount:,}.00</td><td>CR</td><td>1,000,000.00</td></tr></table></body></html>"
    ).encode()
    summary = await send_statement(h, html_xls, "application/vnd.ms-excel", "mutasi.xls")
    assert f"• {code} — Sari" in summary
    assert (await the_order(h, code)).status == "paid"
    assert CONFIRMED.format(code=code) in told(h, sari)[-1]


async def expired(h: Harness, code: str) -> None:
    """The order's payment deadline passed and the expiry job ran: its stock is back."""
    async with h.db.transaction() as session:
        await session.execute(
            update(Order)
            .where(Order.code == code)
            .values(payment_deadline=utcnow() - dt.timedelta(minutes=1))
        )
        assert len(await orders_service.expire_due(session, utcnow())) == 1
    await h.settle()  # the buyer's expiry notice is out


async def royce_stock(h: Harness) -> int | None:
    async with h.db.read() as session:
        stmt = select(Product.stock).where(Product.name == ROYCE)
        return (await session.execute(stmt)).scalar_one()


def late_button(h: Harness) -> tuple[str, str]:
    """(title, id) of the button under the last message Tina got."""
    ((title, payload_id),) = h.last_choices(DEMO_PHONE)
    return title, payload_id


async def test_a_late_payment_is_offered_and_confirmed_with_a_tap(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    stock = await royce_stock(h)
    await expired(h, code)
    assert await royce_stock(h) == (stock or 0) + 1
    heard = len(h.fake.sent_to(sari))
    # Sari's transfer posts after the deadline: offered, nothing changes yet
    summary = await send_statement(h, bca((amount, "TRSF E-BANKING CR SARI", "CR")))
    assert "Transfer terlambat (1)" in summary
    assert f"sama dengan {code} — Sari, yang sudah kedaluwarsa/dibatalkan" in summary
    assert "Kredit tanpa pesanan yang cocok" not in summary
    offer = _text_of(h.fake.sent_to(DEMO_PHONE)[-1])
    assert f"sama persis dengan pesanan {code} — Sari, yang sudah kedaluwarsa" in offer
    title, payload_id = late_button(h)
    assert title == f"Konfirmasi {code}"
    assert (await the_order(h, code)).status == "expired"
    assert len(h.fake.sent_to(sari)) == heard
    # Tina taps: the stock is taken again, the order is paid, Sari is told
    (answer,) = await h.tap(DEMO_PHONE, payload_id, title, name="Tina")
    assert f"untuk {code} dikonfirmasi; stoknya dipesan lagi" in answer
    assert (await the_order(h, code)).status == "paid"
    assert await royce_stock(h) == stock
    assert CONFIRMED.format(code=code) in told(h, sari)[-1]
    assert await count(h, StatementCredit) == 1
    # a second tap, or the same statement again, changes nothing
    (again,) = await h.tap(DEMO_PHONE, payload_id, title, name="Tina")
    assert "sudah dipakai" in again
    summary = await send_statement(h, bca((amount, "TRSF E-BANKING CR SARI", "CR")))
    assert "1 kredit sudah dipakai dari mutasi sebelumnya" in summary
    assert await royce_stock(h) == stock
    assert await count(h, PaymentProof) == 1


async def test_a_late_payment_without_stock_left_changes_nothing(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    await h.send(simulate.tap(sari, f"ord:cancelok:{code}", "Ya", name="Sari"))
    assert (await the_order(h, code)).status == "cancelled"
    await send_statement(h, bca((amount, "TRSF E-BANKING CR SARI", "CR")))
    title, payload_id = late_button(h)
    async with h.db.transaction() as session:  # meanwhile the last units were sold
        await session.execute(update(Product).where(Product.name == ROYCE).values(stock=0))
    heard = len(h.fake.sent_to(sari))
    (answer,) = await h.tap(DEMO_PHONE, payload_id, title, name="Tina")
    assert f"Stok *{ROYCE}* tinggal 0" in answer and "tidak ada yang berubah" in answer
    assert (await the_order(h, code)).status == "cancelled"
    assert await royce_stock(h) == 0
    assert len(h.fake.sent_to(sari)) == heard
    assert await count(h, StatementCredit) == 0


async def test_a_late_payment_offer_in_english(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    _sari, code, amount = await bought(h, "Sari")
    await expired(h, code)
    await tina(h, "LANGUAGE")
    await h.tap_title(DEMO_PHONE, "English")
    summary = await send_statement(h, bca((amount, "TRSF E-BANKING CR SARI", "CR")))
    assert "Late transfers (1)" in summary
    title, payload_id = late_button(h)
    assert title == f"Confirm {code}"
    (answer,) = await h.tap(DEMO_PHONE, payload_id, title, name="Tina")
    assert f"for {code} confirmed" in answer


async def test_a_late_payment_on_the_web_panel_points_to_whatsapp(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    _sari, code, amount = await bought(h, "Sari")
    await expired(h, code)
    await logged_in(h, h.client, DEMO_PHONE, "Tina")
    token = await csrf_of(h.client, "/j-web/proofs")
    status, page = await upload(h, token, bca((amount, "TRSF CR SARI", "CR")))
    assert status == 200
    assert f"sama dengan {code} — Sari, yang sudah kedaluwarsa/dibatalkan" in page
    assert "kirim file ini di WhatsApp dengan caption /mutasi untuk mengonfirmasinya" in page
    assert (await the_order(h, code)).status == "expired"


# --- BRImo, BSI, Permata, CIMB Niaga and the real exports: each confirms into its own account
# only (the file made today's: its credit dated today and of the order's amount)


@pytest.mark.parametrize("name", list(NEW_LAYOUTS))
async def test_each_new_banks_statement_confirms_only_into_its_account(
    harness: Harness, name: str
) -> None:
    h = harness
    await h.seed_demo()
    sari, code, amount = await bought(h, "Sari")
    heard = len(h.fake.sent_to(sari))
    bank, number = NEW_LAYOUTS[name].bank, NEW_LAYOUTS[name].number
    data = statement_on(name, amount)
    # the trip is paid into BNI 0987654321: this statement is of another account
    await trip_paid_into_bni(h)
    summary = await send_statement(h, data)
    assert "Rekening berbeda" in summary
    assert f"sama dengan {code}: tidak dikonfirmasi" in summary
    assert f"{number}, tapi pesanan ini dibayar ke {BNI_TRIP}" in summary
    assert (await the_order(h, code)).status == "awaiting_payment"
    assert len(h.fake.sent_to(sari)) == heard
    # once the trip is paid into this account, the exact amount confirms Sari's order
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(bank_name=bank, bank_account_number=number))
    summary = await send_statement(h, data)
    money = f"Rp {amount:,}".replace(",", ".")
    assert f"• {code} — Sari — {money}" in summary
    assert "Rekening berbeda" not in summary
    assert (await the_order(h, code)).status == "paid"
    assert CONFIRMED.format(code=code) in told(h, sari)[-1]

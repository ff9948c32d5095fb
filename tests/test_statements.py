"""The bank statement parser (``services/statements.py``) on exports shaped like each
bank's (fixtures under tests/fixtures/statements: fake names and accounts): header lines
before the table, debit/credit columns or CR/DB markers, both number formats."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from services import statement_read, statements
from services.statements import StatementRejected, parse

FIXTURES = Path(__file__).parent / "fixtures" / "statements"
TODAY = dt.date(2026, 12, 2)
NOV = 11


def credits_of(name: str) -> list[tuple[dt.date, int]]:
    statement = parse((FIXTURES / name).read_bytes(), TODAY)
    return [(c.date, c.amount) for c in statement.credits]


def test_bca_csv_cr_db_marker_beside_the_amount_and_no_year_in_dates() -> None:
    statement = parse((FIXTURES / "bca.csv").read_bytes(), TODAY)
    # the opening balance and the totals under the table are no lines; the two debits
    # are read but are no credits; the PEND line is today's credit, not booked yet
    assert statement.lines == 5
    assert [(c.date, c.amount, c.pending) for c in statement.credits] == [
        (dt.date(2026, NOV, 2), 190_034, False),
        (dt.date(2026, NOV, 5), 85_127, False),
        (TODAY, 50_000, True),
    ]
    first = statement.credits[0]
    assert "BUDI SANTOSO" in first.description and not first.description.startswith("'")
    assert first.balance == 1_690_034
    assert statement.account == statements.Account("BCA", "0123456789")


def test_mandiri_csv_indonesian_numbers_in_debit_and_credit_columns() -> None:
    assert credits_of("mandiri.csv") == [
        (dt.date(2026, NOV, 2), 190_034),
        (dt.date(2026, NOV, 4), 85_127),
    ]


def test_mandiri_mcm_csv_english_numbers_and_two_description_columns() -> None:
    statement = parse((FIXTURES / "mandiri_mcm.csv").read_bytes(), TODAY)
    assert [(c.date, c.amount) for c in statement.credits] == [
        (dt.date(2026, NOV, 2), 190_034),
        (dt.date(2026, NOV, 4), 85_127),
    ]
    assert statement.credits[0].description == "TRANSFER DARI BUDI SANTOSO"
    assert statement.credits[0].balance is None


def test_bri_csv_mutasi_debet_and_kredit_columns() -> None:
    assert credits_of("bri.csv") == [
        (dt.date(2026, NOV, 2), 190_034),
        (dt.date(2026, NOV, 5), 85_127),
    ]


def test_bni_xlsx_type_column_numbers_and_text_amounts() -> None:
    statement = parse((FIXTURES / "bni.xlsx").read_bytes(), TODAY)
    assert statement.lines == 3
    assert [(c.date, c.amount) for c in statement.credits] == [
        (dt.date(2026, NOV, 2), 190_034),
        (dt.date(2026, NOV, 5), 85_127),
    ]
    assert "SITI AMINAH" in statement.credits[1].description


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("190,034.00", Decimal("190034.00")),
        ("190.034,00", Decimal("190034.00")),
        ("190034", Decimal(190034)),
        ("190.034", Decimal(190034)),
        ("190,034", Decimal(190034)),
        ("1.500.000", Decimal(1500000)),
        ("Rp 190.034", Decimal(190034)),
        ("190034.5", Decimal("190034.5")),
        ("-45.000,00", Decimal("-45000.00")),
        (".00", Decimal("0.00")),
    ],
)
def test_amounts_written_either_way(text: str, value: Decimal) -> None:
    parsed = statements._amount(text)
    assert parsed is not None and parsed[0] == value


def test_a_marker_inside_the_amount_cell() -> None:
    assert statements._amount("190,034.00 CR") == (Decimal("190034.00"), "CR")
    assert statements._amount("45,000.00 DB") == (Decimal("45000.00"), "DB")
    assert statements._amount("TRSF") is None


def test_a_single_amount_column_with_the_marker_inside() -> None:
    data = (
        "Tanggal;Keterangan;Jumlah;Saldo\n"
        "02/11/2026;TRSF CR BUDI;190.034,00 CR;1.690.034,00\n"
        "03/11/2026;TARIK TUNAI;190.034,00 DB;1.500.000,00\n"
        "04/11/2026;NO MARKER;5.000,00;1.505.000,00\n"
    ).encode("cp1252")
    statement = parse(data, TODAY)
    # a line without any CR marker is not taken for a credit
    assert [(c.date, c.amount) for c in statement.credits] == [(dt.date(2026, NOV, 2), 190_034)]


def test_the_same_line_twice_gets_two_keys_and_a_key_is_stable() -> None:
    data = (
        b"Tanggal,Keterangan,Debit,Kredit\n"
        b"02/11/2026,TRSF BUDI,0,50000\n"
        b"02/11/2026,TRSF BUDI,0,50000\n"
    )
    first, second = parse(data, TODAY).credits
    assert first.key != second.key
    assert [c.key for c in parse(data, TODAY).credits] == [first.key, second.key]


def test_a_date_without_a_year_and_no_period_is_never_in_the_future() -> None:
    data = (
        b'Tanggal,Keterangan,Jumlah,\n\'28/12,TRSF,"10,000.00",CR\n\'01/12,TRSF,"20,000.00",CR\n'
    )
    dates = [c.date for c in parse(data, TODAY).credits]
    assert dates == [dt.date(2025, 12, 28), dt.date(2026, 12, 1)]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"Nama,Alamat,Ukuran\nBudi,Jl. Mawar 1,M\n",
        (FIXTURES / "not_a_statement.csv").read_bytes(),
        b"\xff\xd8\xff\xe0" + b"\x00JFIF" * 100,  # a photo
        b"Tanggal,Jumlah\nkemarin,banyak\n",  # a table, but no line in it
        b"PK\x03\x04 not really a zip",
    ],
)
def test_what_is_not_a_statement_is_refused(data: bytes) -> None:
    with pytest.raises(StatementRejected) as refused:
        parse(data, TODAY)
    assert refused.value.reason == "not_statement"


def test_a_legacy_xls_and_a_huge_file_are_refused_with_their_reason() -> None:
    with pytest.raises(StatementRejected) as old:
        parse(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, TODAY)
    assert old.value.reason == "old_excel"
    with pytest.raises(StatementRejected) as big:
        parse(b"x" * (statements.MAX_BYTES + 1), TODAY)
    assert big.value.reason == "too_large"


def test_an_xlsx_that_unpacks_too_large_is_refused_before_opening() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"\x00" * (statements.MAX_XLSX_UNPACKED + 1))
    with pytest.raises(StatementRejected) as bomb:
        parse(buf.getvalue(), TODAY)
    assert bomb.value.reason == "too_large"


def test_rows_past_the_limit_are_not_read_and_it_is_said() -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["Tanggal", "Keterangan", "Debit", "Kredit"])
    for _n in range(statements.MAX_ROWS + 10):
        sheet.append(["02/11/2026", "TRSF", 0, 1000])
    buf = io.BytesIO()
    book.save(buf)
    statement = parse(buf.getvalue(), TODAY)
    assert statement.truncated
    assert len(statement.credits) <= statements.MAX_ROWS


def test_the_caption_that_makes_a_document_a_statement() -> None:
    assert statements.is_statement_caption("/mutasi")
    assert statements.is_statement_caption("/MUTASI november")
    assert statements.is_statement_caption(" /statement")
    assert not statements.is_statement_caption("/add Kit Kat | 85rb")
    assert not statements.is_statement_caption(None)


# --- layouts of real exports (tests/fixtures/statements/README.md says where from) -----------

NOV_2 = dt.date(2026, NOV, 2)
THE_TWO = [(NOV_2, 190_034), (dt.date(2026, NOV, 5), 85_127)]
BY_MANDIRI = [(NOV_2, 190_034), (dt.date(2026, NOV, 4), 85_127)]


@pytest.mark.parametrize(
    ("name", "credits", "account"),
    [
        ("bca_personal_en.csv", THE_TWO, statements.Account("BCA", "1234567890")),
        ("bca_bisnis.csv", THE_TWO, statements.Account("BCA", "1234567890")),
        ("bca_html.xls", THE_TWO, statements.Account("BCA", "1234567890")),
        ("bni_direct.xlsx", THE_TWO, statements.Account("BNI", None)),
        ("bri_cms.xlsx", THE_TWO, statements.Account("BRI", "0123010004565")),
        ("mandiri.xlsx", BY_MANDIRI, statements.Account("Mandiri", None)),
        ("mandiri_mcm.csv", BY_MANDIRI, statements.Account("Mandiri", "1230004567890")),
        ("livin_signed.csv", BY_MANDIRI, statements.Account(None, "1230004567890")),
    ],
)
def test_each_banks_export_gives_its_credits_and_its_account(
    name: str, credits: list[tuple[dt.date, int]], account: statements.Account
) -> None:
    statement = parse((FIXTURES / name).read_bytes(), TODAY)
    assert [(c.date, c.amount) for c in statement.credits] == credits
    assert statement.account == account
    # every credit keeps its description: the sender's name is at its end
    assert "BUDI SANTOSO" in statement.credits[0].description
    assert "SITI AMINAH" in statement.credits[1].description


def test_mandiri_workbook_descriptions_are_kept() -> None:
    statement = parse((FIXTURES / "mandiri.xlsx").read_bytes(), TODAY)
    assert statement.credits[0].description == "MCM InhouseTrf DARI BUDI SANTOSO"


def test_a_period_across_the_year_end_dates_january_lines_in_the_new_year() -> None:
    statement = parse((FIXTURES / "bca_year_end.csv").read_bytes(), dt.date(2027, 1, 3))
    assert [(c.date, c.amount, c.pending) for c in statement.credits] == [
        (dt.date(2026, 12, 30), 190_034, False),
        (dt.date(2027, 1, 2), 85_127, False),
        (dt.date(2027, 1, 3), 50_000, True),  # PEND: a credit of the day it was read
    ]


def test_a_file_whose_only_line_is_pending_is_a_statement() -> None:
    data = (
        b"No. rekening : 1234567890\nPeriode : 01/12/2026 - 02/12/2026\n\n"
        b"Tanggal Transaksi,Keterangan,Cabang,Jumlah,,Saldo\n"
        b"'PEND,'TRSF E-BANKING CR RINA,'0000,\"50,000.00\",CR,\n"
    )
    (credit,) = parse(data, TODAY).credits
    assert (credit.date, credit.amount, credit.pending) == (TODAY, 50_000, True)


def test_signed_amounts_without_a_plus_sign_are_read_by_their_sign() -> None:
    data = (
        b"Tanggal,Keterangan,Jumlah,Saldo\n"
        b'02/11/2026,TRANSFER MASUK BUDI,"45.194,00","100.000,00"\n'
        b'03/11/2026,QRIS KOPI,"-15.000,00","85.000,00"\n'
    )
    assert [(c.date, c.amount) for c in parse(data, TODAY).credits] == [(NOV_2, 45_194)]


def test_an_amount_column_without_any_direction_is_counted_and_named() -> None:
    data = (
        b"Tanggal,Keterangan,Nominal,Saldo\n"
        b'02/11/2026,TRANSFER BUDI,"45.194,00","100.000,00"\n'
        b'03/11/2026,QRIS KOPI,"15.000,00","85.000,00"\n'
    )
    statement = parse(data, TODAY)
    assert statement.credits == ()
    assert (statement.lines, statement.unread, statement.unread_column) == (2, 2, "Nominal")


def test_a_pdf_e_statement_is_refused_with_its_own_reason() -> None:
    with pytest.raises(StatementRejected) as pdf:
        parse(b"%PDF-1.7\n" + b"\x00\x01" * 100, TODAY)
    assert pdf.value.reason == "pdf"


@pytest.mark.parametrize(
    ("name", "bank"),
    [
        ("Bank BCA", "BCA"),
        ("bca", "BCA"),
        ("Bank Mandiri", "Mandiri"),
        ("BNI 46", "BNI"),
        ("BRI", "BRI"),
        ("Bank Syariah Indonesia", "BSI"),
        ("Bank Jatim", None),
    ],
)
def test_bank_names_as_jastipers_type_them(name: str, bank: str | None) -> None:
    assert statement_read.bank_named(name) == bank


@pytest.mark.parametrize(
    "data",
    [
        # SeaBank's history export as described publicly: signed Nominal, Waktu Transaksi
        "Waktu Transaksi,Jenis Transaksi,Keterangan,Nominal,Saldo\n"
        '02/11/2026 10:00,Transfer Masuk,BUDI SANTOSO,"+190.034","1.690.034"\n'
        '03/11/2026 11:00,Transfer Keluar,KOPI SENJA,"-15.000","1.675.034"\n',
        # Bank Jago's: Tanggal & Waktu, Sumber/Tujuan, signed Jumlah
        "Tanggal & Waktu,Sumber/Tujuan,Rincian Transaksi,Catatan,Jumlah,Saldo\n"
        '02 Nov 2026 11:33,BUDI SANTOSO,Incoming Transfer,jastip,"+190.034","1.690.034"\n'
        '03 Nov 2026 11:55,KOPI SENJA,Outgoing Transfer,,"-15.000","1.675.034"\n',
        # blu by BCA Digital's: a Debit/Kredit marker column beside Nominal
        "Tanggal,Deskripsi,Debit/Kredit,Nominal,Saldo\n"
        '02/11/2026,Transfer dari BUDI SANTOSO,Kredit,"190.034","1.690.034"\n'
        '03/11/2026,QRIS KOPI SENJA,Debit,"15.000","1.675.034"\n',
    ],
)
def test_digital_bank_headers_as_publicly_described(data: str) -> None:
    (credit,) = parse(data.encode(), TODAY).credits
    assert (credit.date, credit.amount) == (NOV_2, 190_034)
    assert "BUDI SANTOSO" in credit.description


def test_mandiri_kopra_semicolons_month_names_and_the_account_column() -> None:
    data = (
        b"AccountNo;Ccy;PostDate;Remarks;AdditionalDesc;Credit Amount;Debit Amount;"
        b"Close Balance\n"
        b"1230004567890;IDR;02 November 2026 11:27:10;MCM InhouseTrf DARI BUDI SANTOSO;"
        b"Trf Inw CN BANK CENTRAL ASIA;190034.00;0.00;1690034.00\n"
        b"1230004567890;IDR;03 November 2026 10:16:54;BIAYA ADM;Biaya Adm 16161;"
        b"0.00;12500.00;1677534.00\n"
    )
    statement = parse(data, TODAY)
    assert [(c.date, c.amount) for c in statement.credits] == [(NOV_2, 190_034)]
    assert statement.account == statements.Account("Mandiri", "1230004567890")


def test_bni_internet_banking_two_digit_years_and_journal_numbers() -> None:
    data = (
        b"Post Date,Value Date,Branch,Journal No.,Description,Debit,Credit,\n"
        b"02/11/26 10.00.12,02/11/26,0259,ABC001,TRANSFER DARI BUDI SANTOSO,,190034.00,\n"
        b"03/11/26 12.30.01,03/11/26,0259,ABC002,TARIK TUNAI,125000.00,,\n"
    )
    statement = parse(data, TODAY)
    assert [(c.date, c.amount) for c in statement.credits] == [(NOV_2, 190_034)]
    assert statement.account == statements.Account("BNI", None)


# --- the banks issue #22 found nothing for: BRImo, BSI, Permata, CIMB Niaga ----------------
# (layouts from public repositories, tests/fixtures/statements/README.md says which)

NOV_5 = dt.date(2026, NOV, 5)


@pytest.mark.parametrize(
    ("name", "account", "holder"),
    [
        ("brimo.csv", statements.Account("BRI", "012301000456509"), None),
        ("bsi.csv", statements.Account("BSI", "7123456789"), "TINA JASTIP"),
        ("permata.csv", statements.Account("Permata", "4123456789"), "TINA JASTIP"),
        ("cimb_niaga.csv", statements.Account("CIMB Niaga", "800123456789"), "TINA JASTIP"),
        (
            "cimb_niaga_bilingual.csv",
            statements.Account("CIMB Niaga", "800123456789"),
            "TINA JASTIP",
        ),
    ],
)
def test_new_banks_give_their_credits_their_account_and_holder(
    name: str, account: statements.Account, holder: str | None
) -> None:
    statement = parse((FIXTURES / name).read_bytes(), TODAY)
    # the two transfers in, on their days, to the rupiah; the QRIS payment out is no credit
    assert [(c.date, c.amount) for c in statement.credits] == [
        (NOV_2, 190_034),
        (NOV_5, 85_127),
    ]
    assert statement.lines == (4 if name == "brimo.csv" else 3)
    assert statement.account == account
    assert statement.account.holder == holder
    assert "BUDI SANTOSO" in statement.credits[0].description
    assert "SITI AMINAH" in statement.credits[1].description
    # the balance after the line (BRImo's SALDO_AWAL_MUTASI is the one before it)
    assert statement.credits[0].balance == 1_690_034


def test_brimo_keeps_both_descriptions_and_reads_dot_zero_as_nothing() -> None:
    statement = parse((FIXTURES / "brimo.csv").read_bytes(), TODAY)
    first = statement.credits[0]
    assert first.description.startswith("NBMB BUDI SANTOSO TO TINA JASTIP")
    assert first.description.endswith("Transfer Dari BUDI SANTOSO via BRImo")


def test_cimb_month_first_dates_are_read_month_first_only_when_the_column_says_so() -> None:
    # CIMB Niaga's "11/05/26 14:02" is 5 November: the column has an "11/13/26"
    statement = parse((FIXTURES / "cimb_niaga.csv").read_bytes(), TODAY)
    assert statement.credits[1].date == NOV_5
    # day-first files whose every date is ambiguous stay day-first…
    data = (
        b"Tanggal,Keterangan,Debit,Kredit\n"
        b"02/11/2026,TRANSFER BUDI,,190034\n03/11/2026,TRANSFER SITI,,85127\n"
    )
    assert [c.date for c in parse(data, TODAY).credits] == [NOV_2, dt.date(2026, NOV, 3)]
    # …unless only month-first puts them inside the stated period
    data = (
        b"Periode : 01/11/2026 - 30/11/2026\n\nTanggal,Keterangan,Debit,Kredit\n"
        b"11/02/2026,TRANSFER BUDI,,190034\n11/03/2026,TRANSFER SITI,,85127\n"
    )
    assert [c.date for c in parse(data, TODAY).credits] == [NOV_2, dt.date(2026, NOV, 3)]


def test_the_holder_is_read_from_the_lines_above_the_table() -> None:
    for name in ("bca.csv", "bca_personal_en.csv", "bca_bisnis.csv"):
        assert parse((FIXTURES / name).read_bytes(), TODAY).account.holder == "TINA JASTIP"


# --- real exports (tests/fixtures/statements/real: README.md says whose and under what
# licence); what their own parser's tests and their totals say they hold ----------------


def test_a_real_klikbca_individual_page_its_five_credits_and_their_total() -> None:
    statement = parse((FIXTURES / "real" / "klikbca_individual_2009.html").read_bytes(), TODAY)
    sep_29, sep_30 = dt.date(2009, 9, 29), dt.date(2009, 9, 30)
    assert [(c.date, c.amount) for c in statement.credits] == [
        (sep_29, 500_000),
        (sep_30, 2_967_000),
        (sep_30, 2_962_000),
        (sep_30, 1_000_000),
        (sep_30, 13_991),  # interest, Rp 13.990,86
    ]
    assert statement.lines == 17  # the 12 debits (a correction among them) are read too
    # the page's own trailer: "Mutasi Kredit : 7,442,990.86"
    assert sum(c.amount for c in statement.credits) == 7_442_991
    assert statement.account == statements.Account("BCA", "1234567890")
    assert statement.account.holder == "STEVEN HARYANTO"
    # the balance after the line, not the CR/DB cell the spanned "Mutasi" header covers
    assert statement.credits[0].balance == 7_788_039
    assert statement.credits[3].description.startswith("TRSF E-BANKING CR 3009/FTSCY/WS95011")


def test_a_real_mandiri_internet_banking_page() -> None:
    statement = parse((FIXTURES / "real" / "mandiri_ib_2009.html").read_bytes(), TODAY)
    (credit,) = statement.credits
    assert (credit.date, credit.amount) == (dt.date(2009, 8, 13), 111_111)
    assert credit.description.startswith("SA OB SA No Book #11111")
    assert statement.lines == 2
    assert statement.account.number == "1234567890123"


def test_a_real_mandiri_csv_download_day_first_two_digit_years() -> None:
    statement = parse((FIXTURES / "real" / "mandiri_mcm_2019.csv").read_bytes(), TODAY)
    jan_5 = dt.date(2019, 1, 5)
    assert [(c.date, c.amount) for c in statement.credits] == [
        (jan_5, 917_180),
        (jan_5, 356_950),
        (jan_5, 3_107_500),
        (jan_5, 825_000),
    ]
    assert statement.lines == 5  # and the Rp 152.900 debit
    assert statement.account == statements.Account("Mandiri", "1030001026344")
    # both description columns: the transfer and the sender's note
    assert statement.credits[1].description == "MCM InhouseTrf DARI PERLANCAR Pembelian madu"


def test_a_real_klikbca_bisnis_page_copied_as_tab_separated_text() -> None:
    statement = parse((FIXTURES / "real" / "klikbca_bisnis_2009.txt").read_bytes(), TODAY)
    aug_11 = dt.date(2009, 8, 11)
    assert [(c.date, c.amount) for c in statement.credits] == [
        (aug_11, 239_850),
        (aug_11, 574_750),
    ]
    assert statement.lines == 3
    assert statement.account == statements.Account("BCA", "1234567890")
    assert statement.account.holder == "MAJU MUNDUR PT"


def test_a_brimo_csv_saved_again_by_excel_states_no_number_rather_than_a_wrong_one() -> None:
    # Excel shows NOREK as 1.23010E+13 and saves it so (a public BRI parser handles the
    # same), with ; between cells and dd/mm/yyyy hh:mm dates
    data = (
        b"ID;NOREK;TGL_TRAN;DESK_TRAN;MUTASI_DEBET;MUTASI_KREDIT;SALDO_AKHIR_MUTASI\n"
        b"1;1.23010E+13;02/11/2026 09:14;NBMB BUDI SANTOSO TO TINA JASTIP;0;190034;1690034\n"
    )
    statement = parse(data, TODAY)
    assert [(c.date, c.amount) for c in statement.credits] == [(NOV_2, 190_034)]
    assert statement.account == statements.Account("BRI", None)

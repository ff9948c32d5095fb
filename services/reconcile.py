"""Bank statements confirm payments (``/mutasi``).

A jastiper sends their internet banking's statement export; ``services/statements.py``
reads its credits. Each credit equal to exactly one open payment's unique amount, dated
within that payment's window (from the order's day to its deadline's day, Jakarta
time), confirms it through ``payments.confirm_by_statement`` — the buyer is told as if
the jastiper had approved a proof. A credit equal to two open payments confirms
neither. Every line that confirmed a payment is recorded under its digest, so the same
statement sent again changes nothing. The jastiper gets :func:`summary`.

A credit confirms an order only if the statement is of the account that order was told
to pay into (the trip's account, else the jastiper's): the bank and the number as the
statement states them, numbers compared as digits. A statement of another account
confirms nothing and the summary says which account it is. Decision: a statement that
states no account at all (some exports have only the table) still confirms, and the
summary says the account could not be checked — refusing it would send those jastipers
back to checking by hand, and a payment's unique amount already ties it to one order.

A credit after an order expired or was cancelled ("late posting") equal to exactly one
such order's unique amount is offered to the jastiper with a button; confirming it
reserves the order's stock again (the same conditional update as ordering) and
confirms it as above (:func:`confirm_late`).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from locales import JAKARTA, _
from services import exports, orders, payments
from services.errors import DomainError, InvalidMove, NotFound
from services.reconcile_text import Late, Match, Outcome
from services.reconcile_text import summary as summary  # the jastiper's summary
from services.statement_read import bank_named, digits
from services.statements import Account, Credit, Statement
from storage.media import MediaStore, new_key
from storage.models import Jastiper, Order, OrderGroup, Trip, User
from storage.repo import audit, outbox
from storage.repo import statements as repo

GONE = orders.REVIVABLE  # a late payment may revive these
LATE_OFFERS: Final = 3  # late payments offered with a button per statement
LINE_PREFIX: Final = "statements"
_TZ = ZoneInfo(JAKARTA)


# what the jastiper is told when their file is no statement (reasons from the bot layer:
# ``statement_`` + ``statements.StatementRejected.reason``, or an upload's reason)
REFUSALS = {
    "statement_not_statement": _(
        "File ini tidak terbaca sebagai mutasi rekening: tidak ada tabel tanggal dan "
        "nominal transaksi. Kirim file ekspor mutasi dari internet banking (CSV atau XLSX) "
        "sebagai dokumen dengan caption /mutasi. Tidak ada pesanan yang berubah."
    ),
    "statement_old_excel": _(
        "File Excel lama (.xls) belum bisa dibaca. Simpan ulang sebagai .xlsx atau ekspor "
        "CSV, lalu kirim lagi dengan caption /mutasi. Tidak ada pesanan yang berubah."
    ),
    "statement_too_large": _(
        "File mutasinya terlalu besar (maks. 2 MB). Ekspor periode yang lebih pendek, lalu "
        "kirim lagi dengan caption /mutasi. Tidak ada pesanan yang berubah."
    ),
    "statement_pdf": _(
        "E-statement PDF belum bisa dibaca. Di internet banking atau aplikasi bank, unduh "
        "mutasi sebagai CSV atau Excel (XLS/XLSX), lalu kirim file itu dengan caption "
        "/mutasi. Tidak ada pesanan yang berubah."
    ),
}
REFUSALS["too_large"] = REFUSALS["statement_too_large"]
DOWNLOAD_FAILED = _("File mutasinya gagal diterima. Coba kirim lagi dengan caption /mutasi ya.")
# the same on the web panel's upload form
WEB_REFUSALS = {
    "not_statement": _(
        "File ini tidak terbaca sebagai mutasi rekening: tidak ada tabel tanggal dan "
        "nominal transaksi. Unggah file ekspor mutasi dari internet banking (CSV atau "
        "XLSX). Tidak ada pesanan yang berubah."
    ),
    "old_excel": _(
        "File Excel lama (.xls) belum bisa dibaca. Simpan ulang sebagai .xlsx atau ekspor "
        "CSV, lalu unggah lagi. Tidak ada pesanan yang berubah."
    ),
    "too_large": _(
        "File mutasinya terlalu besar (maks. 2 MB). Ekspor periode yang lebih pendek, lalu "
        "unggah lagi. Tidak ada pesanan yang berubah."
    ),
    "pdf": _(
        "E-statement PDF belum bisa dibaca. Di internet banking atau aplikasi bank, unduh "
        "mutasi sebagai CSV atau Excel (XLS/XLSX), lalu unggah file itu. Tidak ada pesanan "
        "yang berubah."
    ),
}


def refusal(reason: str | None) -> str:
    """The catalogue text for a statement that could not be read (chat)."""
    return REFUSALS.get(reason or "", DOWNLOAD_FAILED)


def paid_into(trip: Trip, jastiper: Jastiper) -> tuple[str | None, str | None]:
    """The account an order of this trip was told to pay into: (bank, number)."""
    if trip.bank_account_number:
        return trip.bank_name, trip.bank_account_number
    return jastiper.bank_name, jastiper.bank_account_number


def same_account(stated: Account, trip: Trip, jastiper: Jastiper) -> bool | None:
    """Is the statement of the account the order was told to pay into? Numbers are
    compared as digits without leading zeros, banks by the name they are known by.
    None: nothing to compare (the statement states no account, or the trip has none) —
    the credit is taken, and the summary says the account could not be checked.

    Decision (QRIS): a buyer who scans the jastiper's QRIS pays into the account the
    merchant QRIS settles into, which a static QRIS does not name (it names the merchant
    and the acquirer). A statement of the settlement account the jastiper recorded with
    ``/qris rekening`` is taken like one of the trip's account — also after the QRIS is
    switched off, for the payments made while it was on. Without one recorded, that
    statement is "another account", and the summary says how to record it."""
    told = _is_account(stated, *paid_into(trip, jastiper))
    settlement = jastiper.qris_bank_name, jastiper.qris_account_number
    if told is not True and settlement[1] and _is_account(stated, *settlement):
        return True
    return told


def _is_account(stated: Account, bank: str | None, number: str | None) -> bool | None:
    expected_bank = bank_named(bank)
    expected_number = digits(number)
    if stated.bank and expected_bank and stated.bank != expected_bank:
        return False
    if stated.number and expected_number:
        return stated.number.lstrip("0") == expected_number.lstrip("0")
    return None


def _told(trip: Trip, jastiper: Jastiper) -> str:
    bank, number = paid_into(trip, jastiper)
    return " ".join(part for part in (bank, number) if part) or "-"


def _day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(_TZ).date()


def in_window(order: Order, day: dt.date) -> bool:
    """Is a credit on ``day`` within the order's payment window?"""
    if day < _day(order.created_at):
        return False
    return order.payment_deadline is None or day <= _day(order.payment_deadline)


def line_file(credit: Credit) -> bytes:
    """The proof kept for a payment a statement confirmed: only its own line (the rest of
    the jastiper's statement is not kept)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Tanggal", "Keterangan", "Kredit", "Saldo"])
    writer.writerow(
        exports.safe_row(  # a bank description is a stranger's text: never a formula
            [
                "PEND " + credit.date.isoformat() if credit.pending else credit.date.isoformat(),
                credit.description,
                credit.amount,
                "" if credit.balance is None else credit.balance,
            ]
        )
    )
    return out.getvalue().encode()


async def store_line(media: MediaStore, credit: Credit) -> payments.Upload:
    """Keep one statement line as a payment's proof; the one place lines are stored."""
    key = new_key(LINE_PREFIX, "csv")
    await media.put(key, line_file(credit), "text/csv")
    return payments.Upload(key, credit.key, "text/csv")


async def apply(
    session: AsyncSession,
    jastiper: Jastiper,
    statement: Statement,
    media: MediaStore,
    now: dt.datetime,
) -> Outcome:
    """Confirm the payments the statement's credits pay; see the module text. Each
    confirmed payment's proof is its statement line, stored in ``media``."""
    outcome = Outcome(
        credits=len(statement.credits),
        lines=statement.lines,
        truncated=statement.truncated,
        account=statement.account,
        unread=statement.unread,
        unread_column=statement.unread_column,
        # a QRIS whose settlement account is not recorded: a statement of "another
        # account" may be that one, and the summary says how to record it
        qris_unrecorded=bool(jastiper.qris) and not jastiper.qris_account_number,
    )
    done = await repo.applied_keys(session, jastiper.id, (c.key for c in statement.credits))
    fresh = [c for c in statement.credits if c.key not in done]
    outcome.repeated = len(statement.credits) - len(fresh)
    rows = await repo.jastiper_orders(session, jastiper.id, OrderGroup.AWAITING_MONEY)
    open_orders: list[tuple[Order, Trip, User]] = list(rows)
    taken: set[int] = set()
    for credit in fresh:
        same_amount = [
            (order, trip, buyer)
            for order, trip, buyer in open_orders
            if order.amount_due == credit.amount
            and order.id not in taken
            and in_window(order, credit.date)
        ]
        candidates = [
            (order, buyer)
            for order, trip, buyer in same_amount
            if same_account(statement.account, trip, jastiper) is not False
        ]
        if len(candidates) > 1:
            outcome.ambiguous.append((credit, [order for order, _b in candidates]))
            continue
        if not candidates:
            if len(same_amount) == 1:
                order, trip, _buyer = same_amount[0]
                outcome.wrong_account.append((credit, order, _told(trip, jastiper)))
            else:
                outcome.unmatched.append(credit)
            continue
        order, buyer = candidates[0]
        line = await store_line(media, credit)
        try:
            async with outbox.savepoint(session):
                await payments.confirm_by_statement(
                    session, order, line, now, actor_user_id=jastiper.user_id
                )
                await repo.record(
                    session,
                    jastiper_id=jastiper.id,
                    line_key=credit.key,
                    order_id=order.id,
                    amount=credit.amount,
                    credited_on=credit.date,
                )
        except DomainError:
            outcome.unmatched.append(credit)  # moved by another door meanwhile
            continue
        taken.add(order.id)
        outcome.confirmed.append(Match(credit, order, buyer))
    await _explain_unmatched(session, jastiper, outcome)
    await _offer_late(session, jastiper, outcome)
    outcome.still_open = [
        (order, buyer) for order, _trip, buyer in open_orders if order.id not in taken
    ]
    if outcome.confirmed:
        audit.record(
            session,
            "statement.apply",
            actor_user_id=jastiper.user_id,
            orders=",".join(m.order.code for m in outcome.confirmed),
        )
    return outcome


async def _explain_unmatched(session: AsyncSession, jastiper: Jastiper, outcome: Outcome) -> None:
    """A credit that matched nothing but equals an already-paid order's amount is said to
    be for that order (nothing changes: it is paid already)."""
    if not outcome.unmatched:
        return
    paid = await repo.jastiper_orders(
        session,
        jastiper.id,
        OrderGroup.PAID,
        amounts=(c.amount for c in outcome.unmatched),
    )
    confirmed = {m.order.id for m in outcome.confirmed}
    left = []
    for credit in outcome.unmatched:
        hits = [
            o
            for o, _t, _u in paid
            if o.amount_due == credit.amount
            and o.id not in confirmed
            and in_window(o, credit.date)
        ]
        if len(hits) == 1:
            outcome.already_paid.append((credit, hits[0]))
        else:
            left.append(credit)
    outcome.unmatched = left


async def _offer_late(session: AsyncSession, jastiper: Jastiper, outcome: Outcome) -> None:
    """A credit that matched nothing but equals exactly one expired or cancelled order's
    unique amount (paid after its deadline, or after the buyer cancelled) is offered to
    the jastiper with a button (:func:`confirm_late`); nothing changes until they tap."""
    if not outcome.unmatched:
        return
    gone = await repo.jastiper_orders(
        session, jastiper.id, GONE, amounts=(c.amount for c in outcome.unmatched)
    )
    left = []
    for credit in outcome.unmatched:
        hits = [
            (order, buyer)
            for order, trip, buyer in gone
            if order.amount_due == credit.amount
            and credit.date >= _day(order.created_at)
            and same_account(outcome.account, trip, jastiper) is not False
        ]
        if len(hits) == 1 and len(outcome.late) < LATE_OFFERS:
            order, buyer = hits[0]
            outcome.late.append(Late(credit, order, buyer))
        else:
            left.append(credit)
    outcome.unmatched = left


async def confirm_late(
    session: AsyncSession,
    jastiper: Jastiper,
    order_id: int,
    credit: LateCredit,
    now: dt.datetime,
) -> Order:
    """The jastiper confirms a late payment offered by :func:`apply`: the expired or
    cancelled order takes its stock again (one conditional update per item; none when
    stock ran out) and is confirmed with its statement line, the buyer told as usual.

    Raises:
        NotFound: not one of the jastiper's orders.
        InvalidMove: the line was used already, or the order is no longer expired or
            cancelled.
        OutOfStock: an item's stock is gone; nothing changed.
    """
    found = await repo.jastiper_order(session, jastiper.id, order_id)
    if found is None:
        raise NotFound(_("Pesanan itu tidak ditemukan."))
    order = found[0]
    if await repo.applied_keys(session, jastiper.id, [credit.line_key]):
        raise InvalidMove(
            _("Transfer ini sudah dipakai untuk mengonfirmasi pesanan; tidak ada yang berubah.")
        )
    if order.status not in GONE or order.amount_due != credit.amount:
        raise InvalidMove(
            _("Pesanan {code} sekarang \u201c{status}\u201d; tidak ada yang berubah."),
            code=order.code,
            status=orders.status_label(order.status),
        )
    async with outbox.savepoint(session):
        await orders.revive(session, order)
        line = payments.Upload(credit.media_key, credit.line_key, "text/csv")
        await payments.confirm_by_statement(
            session, order, line, now, actor_user_id=jastiper.user_id
        )
        await repo.record(
            session,
            jastiper_id=jastiper.id,
            line_key=credit.line_key,
            order_id=order.id,
            amount=credit.amount,
            credited_on=credit.date,
        )
    audit.record(session, "statement.late", actor_user_id=jastiper.user_id, order=order.code)
    return order


@dataclasses.dataclass(frozen=True, slots=True)
class LateCredit:
    """What a late-payment button carries: the line's date, digest and stored proof."""

    date: dt.date
    amount: int
    line_key: str
    media_key: str

    def to_value(self) -> str:
        return f"{self.date:%Y%m%d}.{self.amount}.{self.line_key}.{self.media_key}"

    @classmethod
    def from_value(cls, value: str) -> LateCredit | None:
        """The button's value back, or None for anything malformed or foreign."""
        parts = value.split(".", 3)
        if len(parts) != 4:
            return None
        day, amount, line_key, media_key = parts
        if not (
            re.fullmatch(r"\d{8}", day)
            and amount.isdigit()
            and re.fullmatch(r"[0-9a-f]{64}", line_key)
            and re.fullmatch(rf"{LINE_PREFIX}/[\w/-]+\.csv", media_key)
        ):
            return None
        try:
            date = dt.datetime.strptime(day, "%Y%m%d").date()
        except ValueError:
            return None
        return cls(date, int(amount[:12]), line_key, media_key)

    @classmethod
    async def offer(cls, media: MediaStore, late: Late) -> LateCredit:
        """Store the late credit's line (the proof if it is confirmed) for its button."""
        line = await store_line(media, late.credit)
        return cls(late.credit.date, late.credit.amount, late.credit.key, line.key)

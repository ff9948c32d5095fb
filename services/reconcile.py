"""Bank statements confirm payments (``/mutasi``).

A jastiper sends their internet banking's statement export; ``services/statements.py``
reads its credits. Each credit equal to exactly one open payment's unique amount, dated
within that payment's window (from the order's day to its deadline's day, Jakarta
time), confirms it through ``payments.confirm_by_statement`` — the buyer is told as if
the jastiper had approved a proof. A credit equal to two open payments confirms
neither. Every line that confirmed a payment is recorded under its digest, so the same
statement sent again changes nothing. The jastiper gets :func:`summary`.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from locales import JAKARTA, Translator, _
from services import exports, orders, payments
from services.errors import DomainError
from services.statements import Credit, Statement
from storage.media import MediaStore, new_key
from storage.models import Jastiper, Order, OrderStatus, Trip, User
from storage.repo import audit, outbox
from storage.repo import statements as repo

OPEN = (
    OrderStatus.AWAITING_PAYMENT.value,
    OrderStatus.AWAITING_BALANCE.value,
    OrderStatus.PROOF_SUBMITTED.value,
)
SHOWN = 10  # lines per section: the whole summary stays under WhatsApp's 4096 characters
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
}


def refusal(reason: str | None) -> str:
    """The catalogue text for a statement that could not be read (chat)."""
    return REFUSALS.get(reason or "", DOWNLOAD_FAILED)


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    credit: Credit
    order: Order
    buyer: User


@dataclasses.dataclass
class Outcome:
    """What one statement did."""

    credits: int = 0
    truncated: bool = False
    confirmed: list[Match] = dataclasses.field(default_factory=list)
    ambiguous: list[tuple[Credit, list[Order]]] = dataclasses.field(default_factory=list)
    already_paid: list[tuple[Credit, Order]] = dataclasses.field(default_factory=list)
    unmatched: list[Credit] = dataclasses.field(default_factory=list)
    repeated: int = 0  # lines that confirmed a payment from an earlier statement
    still_open: list[tuple[Order, User]] = dataclasses.field(default_factory=list)


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
                credit.date.isoformat(),
                credit.description,
                credit.amount,
                "" if credit.balance is None else credit.balance,
            ]
        )
    )
    return out.getvalue().encode()


async def apply(
    session: AsyncSession,
    jastiper: Jastiper,
    statement: Statement,
    media: MediaStore,
    now: dt.datetime,
) -> Outcome:
    """Confirm the payments the statement's credits pay; see the module text. Each
    confirmed payment's proof is its statement line, stored in ``media``."""
    outcome = Outcome(credits=len(statement.credits), truncated=statement.truncated)
    done = await repo.applied_keys(session, jastiper.id, (c.key for c in statement.credits))
    fresh = [c for c in statement.credits if c.key not in done]
    outcome.repeated = len(statement.credits) - len(fresh)
    rows = await repo.jastiper_orders(session, jastiper.id, OPEN)
    open_orders: list[tuple[Order, Trip, User]] = list(rows)
    taken: set[int] = set()
    for credit in fresh:
        candidates = [
            (order, buyer)
            for order, _trip, buyer in open_orders
            if order.amount_due == credit.amount
            and order.id not in taken
            and in_window(order, credit.date)
        ]
        if len(candidates) > 1:
            outcome.ambiguous.append((credit, [order for order, _b in candidates]))
            continue
        if not candidates:
            outcome.unmatched.append(credit)
            continue
        order, buyer = candidates[0]
        key = new_key("statements", "csv")
        await media.put(key, line_file(credit), "text/csv")
        line = payments.Upload(key, credit.key, "text/csv")
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
        orders.PAID_STATES,
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


def _short(description: str) -> str:
    """A statement description in about 50 characters, keeping its end (banks put the
    sender's name there)."""
    if len(description) <= 50:
        return description or "-"
    return f"{description[:20]}…{description[-29:]}"


def _more(t: Translator, lines: list[str]) -> str:
    shown = lines[:SHOWN]
    if len(lines) > SHOWN:
        shown.append(t(_("… dan {n} lagi"), n=len(lines) - SHOWN))
    return "\n".join(shown)


def summary(t: Translator, outcome: Outcome) -> str:
    """What the jastiper is told after a statement: matched (order, buyer, amount),
    credits that matched nothing, payments still open."""
    parts = [t(_("📄 Mutasi dibaca: {n} kredit."), n=outcome.credits)]
    if outcome.truncated:
        parts.append(t(_("File terlalu panjang: hanya baris-baris awal yang dibaca.")))
    matched = [
        f"• {m.order.code} — {m.buyer.display_name or m.buyer.profile_name or '-'} — "
        f"{t.money(m.credit.amount)}"
        for m in outcome.confirmed
    ]
    parts.append(
        t(_("✅ Dikonfirmasi ({n}), pembeli sudah dikabari:"), n=len(matched))
        + "\n"
        + _more(t, matched)
        if matched
        else t(_("✅ Tidak ada pembayaran baru yang cocok."))
    )
    if outcome.ambiguous:
        lines = [
            t(
                _("• {amount} ({date}) cocok dengan {codes}: tidak dikonfirmasi, cek manual"),
                amount=t.money(c.amount),
                date=t.date(c.date),
                codes=", ".join(o.code for o in orders_),
            )
            for c, orders_ in outcome.ambiguous
        ]
        parts.append(t(_("⚠️ Cocok dengan lebih dari satu pesanan:")) + "\n" + _more(t, lines))
    if outcome.already_paid:
        lines = [
            t(
                _("• {amount} ({date}): pesanan {code} sudah lunas, tidak ada yang berubah"),
                amount=t.money(c.amount),
                date=t.date(c.date),
                code=o.code,
            )
            for c, o in outcome.already_paid
        ]
        parts.append(t(_("ℹ️ Untuk pesanan yang sudah lunas:")) + "\n" + _more(t, lines))
    if outcome.unmatched:
        lines = [
            f"• {t.date(c.date)} {t.money(c.amount)} — {_short(c.description)}"
            for c in outcome.unmatched
        ]
        parts.append(
            t(_("❔ Kredit tanpa pesanan yang cocok ({n}):"), n=len(lines))
            + "\n"
            + _more(t, lines)
        )
    if outcome.repeated:
        parts.append(
            t(_("🔁 {n} kredit sudah dipakai dari mutasi sebelumnya."), n=outcome.repeated)
        )
    if outcome.still_open:
        lines = [
            f"• {o.code} — {u.display_name or u.profile_name or '-'} — {t.money(o.amount_due)}"
            for o, u in outcome.still_open
        ]
        parts.append(
            t(_("⏳ Pembayaran masih terbuka ({n}):"), n=len(lines)) + "\n" + _more(t, lines)
        )
    else:
        parts.append(t(_("⏳ Tidak ada pembayaran yang masih terbuka.")))
    return "\n\n".join(parts)

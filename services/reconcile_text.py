"""What a bank statement (``/mutasi``) did — :class:`Outcome`, filled by
``services/reconcile.py`` — and what the jastiper reads about it: the summary and the
offer of a late payment."""

from __future__ import annotations

import dataclasses

from locales import Translator, _
from services.statements import Account, Credit
from storage.models import Order, User


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    credit: Credit
    order: Order
    buyer: User


@dataclasses.dataclass(frozen=True, slots=True)
class Late:
    """A credit equal to one expired or cancelled order's amount, to be offered to the
    jastiper (in chat: a button carrying :class:`LateCredit`)."""

    credit: Credit
    order: Order
    buyer: User


@dataclasses.dataclass
class Outcome:
    """What one statement did."""

    credits: int = 0
    lines: int = 0  # transaction lines read, credits and debits
    truncated: bool = False
    account: Account = dataclasses.field(default_factory=Account)
    confirmed: list[Match] = dataclasses.field(default_factory=list)
    ambiguous: list[tuple[Credit, list[Order]]] = dataclasses.field(default_factory=list)
    already_paid: list[tuple[Credit, Order]] = dataclasses.field(default_factory=list)
    # a credit of an open order's amount on a statement of another account than the
    # order was told to pay into: (credit, order, the account it was told)
    wrong_account: list[tuple[Credit, Order, str]] = dataclasses.field(default_factory=list)
    qris_unrecorded: bool = False
    late: list[Late] = dataclasses.field(default_factory=list)
    unmatched: list[Credit] = dataclasses.field(default_factory=list)
    repeated: int = 0  # lines that confirmed a payment from an earlier statement
    still_open: list[tuple[Order, User]] = dataclasses.field(default_factory=list)
    unread: int = 0  # transaction lines whose direction could not be read
    unread_column: str = ""

    @property
    def unchecked(self) -> bool:
        """Confirmed without checking the account: the statement states no number."""
        return bool(self.confirmed) and self.account.number is None


SHOWN = 10  # lines per section: the whole summary stays under WhatsApp's 4096 characters
PENDING = "PEND"


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


def _when(t: Translator, credit: Credit) -> str:
    """The credit's date, or ``PEND`` for KlikBCA's not yet booked line of today."""
    return PENDING if credit.pending else t.date(credit.date)


def _name(user: object) -> str:
    return getattr(user, "display_name", None) or getattr(user, "profile_name", None) or "-"


def summary(t: Translator, outcome: Outcome, *, chat: bool = True) -> str:
    """What the jastiper is told after a statement: matched (order, buyer, amount),
    credits of another account, late payments offered, credits that matched nothing,
    payments still open. ``chat``: late payments get a button in the next message (on
    the web panel the jastiper is asked to send the file in WhatsApp instead)."""
    parts = [t(_("📄 Mutasi dibaca: {n} kredit."), n=outcome.credits)]
    if outcome.unread and not outcome.credits:
        parts.append(
            t(
                _(
                    "⚠️ Kolom nominal tidak dikenali: “{column}” ({n} transaksi). Tidak ada "
                    "tanda CR/DB, tanda +/−, atau kolom kredit, jadi tidak ada transfer "
                    "masuk yang bisa dibaca. Ekspor ulang mutasi dengan kolom Debit/Kredit "
                    "atau CR/DB, lalu kirim lagi."
                ),
                column=outcome.unread_column or "-",
                n=outcome.unread,
            )
        )
    elif outcome.unread:
        parts.append(
            t(
                _(
                    "⚠️ {n} transaksi di kolom “{column}” tidak punya tanda CR/DB atau +/−, "
                    "jadi dilewati: cek sendiri di mutasimu."
                ),
                column=outcome.unread_column or "-",
                n=outcome.unread,
            )
        )
    elif not outcome.credits:
        parts.append(
            t(
                _("Tidak ada transfer masuk di file ini: {n} transaksinya semua keluar (debit)."),
                n=outcome.lines,
            )
        )
    if outcome.truncated:
        parts.append(t(_("File terlalu panjang: hanya baris-baris awal yang dibaca.")))
    if outcome.unchecked:
        parts.append(
            t(
                _(
                    "ℹ️ Nomor rekening tidak tercantum di file ini, jadi rekening tujuannya "
                    "tidak bisa dicek: pastikan ini mutasi rekening yang kamu berikan ke "
                    "pembeli."
                )
            )
        )
    matched = [
        f"• {m.order.code} — {_name(m.buyer)} — {t.money(m.credit.amount)}"
        + (f" ({PENDING})" if m.credit.pending else "")
        for m in outcome.confirmed
    ]
    parts.append(
        t(_("✅ Dikonfirmasi ({n}), pembeli sudah dikabari:"), n=len(matched))
        + "\n"
        + _more(t, matched)
        if matched
        else t(_("✅ Tidak ada pembayaran baru yang cocok."))
    )
    if outcome.wrong_account:
        lines = [
            t(
                _(
                    "• {amount} ({date}) sama dengan {code}: tidak dikonfirmasi, karena ini "
                    "mutasi rekening {statement}, tapi pesanan ini dibayar ke {told}"
                ),
                amount=t.money(c.amount),
                date=_when(t, c),
                code=o.code,
                statement=_stated(outcome),
                told=told,
            )
            for c, o, told in outcome.wrong_account
        ]
        hint = ""
        if outcome.qris_unrecorded and outcome.account.number:
            hint = "\n" + t(
                _(
                    "Kalau ini rekening pencairan QRIS-mu, catat dulu: /qris rekening "
                    "{statement}, lalu kirim mutasinya lagi."
                ),
                statement=_stated(outcome),
            )
        parts.append(t(_("🚫 Rekening berbeda:")) + "\n" + _more(t, lines) + hint)
    if outcome.ambiguous:
        lines = [
            t(
                _("• {amount} ({date}) cocok dengan {codes}: tidak dikonfirmasi, cek manual"),
                amount=t.money(c.amount),
                date=_when(t, c),
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
                date=_when(t, c),
                code=o.code,
            )
            for c, o in outcome.already_paid
        ]
        parts.append(t(_("ℹ️ Untuk pesanan yang sudah lunas:")) + "\n" + _more(t, lines))
    if outcome.late:
        how = (
            _(
                "• {amount} ({date}) sama dengan {code} — {buyer}, yang sudah "
                "kedaluwarsa/dibatalkan: konfirmasi dengan tombol di pesan berikut"
            )
            if chat
            else _(
                "• {amount} ({date}) sama dengan {code} — {buyer}, yang sudah "
                "kedaluwarsa/dibatalkan: kirim file ini di WhatsApp dengan caption /mutasi "
                "untuk mengonfirmasinya"
            )
        )
        lines = [
            t(
                how,
                amount=t.money(late.credit.amount),
                date=_when(t, late.credit),
                code=late.order.code,
                buyer=_name(late.buyer),
            )
            for late in outcome.late
        ]
        parts.append(t(_("🕓 Transfer terlambat ({n}):"), n=len(lines)) + "\n" + _more(t, lines))
    if outcome.unmatched:
        lines = [
            f"• {_when(t, c)} {t.money(c.amount)} — {_short(c.description)}"
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
            f"• {o.code} — {_name(u)} — {t.money(o.amount_due)}" for o, u in outcome.still_open
        ]
        parts.append(
            t(_("⏳ Pembayaran masih terbuka ({n}):"), n=len(lines)) + "\n" + _more(t, lines)
        )
    else:
        parts.append(t(_("⏳ Tidak ada pembayaran yang masih terbuka.")))
    return "\n\n".join(parts)


def _stated(outcome: Outcome) -> str:
    return " ".join(p for p in (outcome.account.bank, outcome.account.number) if p) or "-"


def late_offer(t: Translator, late: Late) -> str:
    """The body of the button that confirms one late payment."""
    return t(
        _(
            "🕓 Transfer {amount} ({date}, {description}) sama persis dengan pesanan {code} "
            "— {buyer}, yang sudah {status}. Konfirmasi pembayarannya? Stoknya dipesan "
            "lagi kalau masih ada, lalu pembeli dikabari."
        ),
        amount=t.money(late.credit.amount),
        date=_when(t, late.credit),
        description=_short(late.credit.description),
        code=late.order.code,
        buyer=_name(late.buyer),
        status=t(_("kedaluwarsa")) if late.order.status == "expired" else t(_("dibatalkan")),
    )


def late_button(t: Translator, code: str) -> str:
    return t(_("Konfirmasi {code}"), code=code)

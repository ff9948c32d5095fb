"""Refunds paid back through the chat.

When an order's total falls below what its buyer paid (items not found, ``/refund``),
the difference is owed back (``orders.refund_due``). The buyer is asked where to send
it — a bank or e-wallet, its number and the account holder, kept sealed like an address
(:func:`set_account`); the jastiper sees what is owed to whom, oldest first
(``/refunds``, :func:`owed`), transfers it and confirms with ``/refunded`` — a photo of
the transfer captioned ``/refunded JP-XXXXX`` reaches the buyer with the confirmation
(:func:`confirm`).
"""

from __future__ import annotations

import dataclasses
import re

from sqlalchemy.ext.asyncio import AsyncSession

from locales import Translator, _
from services import notify, replies
from services.errors import InvalidInput, NotAllowed
from services.payloads import OrderTap
from storage.models import Jastiper, Order, Trip, User
from storage.repo import audit, users
from storage.repo import orders as repo

PROVIDER_MAX = 40
HOLDER_MAX = 80
NUMBER_DIGITS = (5, 20)  # a bank account or a phone number for an e-wallet
_SEPARATORS = re.compile(r"[,;|/\n]+")
_DIGITS = re.compile(r"^\+?[\d.\-]+$")
_HOLDER_PREFIX = re.compile(r"^(?:a\.?\s?n\.?|atas nama|an)\s+", re.IGNORECASE)
EXAMPLE = _(
    "Tulis nama bank atau e-wallet, nomornya, lalu nama pemilik rekening. Contoh: "
    "BCA 1234567890 Sari Dewi, atau GoPay 081234567890 Sari Dewi"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Owed:
    """A refund the jastiper still owes, with where it goes (None: not given yet)."""

    order: Order
    trip: Trip
    buyer: User


def parse_account(text: str) -> dict[str, str]:
    """``BCA 1234567890 Sari Dewi`` → provider, number, holder.

    Raises:
        InvalidInput: a part is missing or the number is not 5-20 digits.
    """
    words = _SEPARATORS.sub(" ", text).split()
    start = next((n for n, w in enumerate(words) if _DIGITS.match(w) and n > 0), None)
    if start is None:
        raise InvalidInput(EXAMPLE)
    end = start
    while end < len(words) and _DIGITS.match(words[end]):
        end += 1
    number = re.sub(r"\D", "", "".join(words[start:end]))
    provider = " ".join(words[:start])
    holder = _HOLDER_PREFIX.sub("", " ".join(words[end:])).strip()
    low, high = NUMBER_DIGITS
    if not provider or not holder or not low <= len(number) <= high:
        raise InvalidInput(EXAMPLE)
    return {
        "provider": provider[:PROVIDER_MAX],
        "number": number,
        "holder": holder[:HOLDER_MAX],
    }


def describe(t: Translator, account: dict[str, str] | None) -> str:
    """``BCA 1234567890 a.n. Sari Dewi``, or that none was given yet."""
    if not account:
        return t(_("rekening belum diisi pembeli"))
    return t(
        _("{provider} {number} a.n. {holder}"),
        provider=account.get("provider", ""),
        number=account.get("number", ""),
        holder=account.get("holder", ""),
    )


def owed_line(t: Translator, order: Order) -> str:
    """What the buyer is told about a refund now owed: where it goes, when known."""
    if order.refund_account:
        return t(
            _("Jastiper akan mengembalikan {amount} ke {account}."),
            amount=t.money(order.refund_due),
            account=describe(t, order.refund_account),
        )
    return t(
        _("Jastiper akan mengembalikan {amount}. Kirim rekening tujuan refund-nya ya."),
        amount=t.money(order.refund_due),
    )


def ask_account(session: AsyncSession, buyer: User, order: Order) -> None:
    """Asks the buyer where the refund owed goes (a tap, then typed words), unless they
    said it already."""
    if order.refund_account or order.refund_due <= 0:
        return
    t = notify.translator(buyer)
    notify.tell(
        session,
        buyer,
        replies.buttons(
            t(
                _("Refund {amount} untuk {code} dikirim ke mana? Ketuk tombol di bawah."),
                amount=t.money(order.refund_due),
                code=order.code,
            ),
            [(t(_("Isi rekening refund")), OrderTap("refacct", order.code))],
        ),
    )


async def set_account(
    session: AsyncSession, order: Order, account: dict[str, str], buyer: User
) -> None:
    """The buyer's bank or e-wallet for the refund owed (checked by
    :func:`parse_account`), stored sealed; the jastiper is told where to send it.

    Raises:
        NotAllowed: nothing is owed on the order (any more).
    """
    if order.refund_due <= 0 or not await repo.set_refund_account(session, order, account):
        raise NotAllowed(_("Tidak ada refund yang menunggu untuk {code}."), code=order.code)
    audit.record(
        session,
        "order.refund_account",
        actor_user_id=buyer.id,
        trip_id=order.trip_id,
        order=order.code,
    )
    trip = await repo.trip_of(session, order)
    owner = await users.get_user(session, trip.jastiper.user_id)
    if owner is not None:
        t = notify.translator(owner)
        notify.say(
            session,
            owner,
            _(
                "Rekening refund {code}: {account}. Refund {amount}; setelah transfer, "
                "kirim foto buktinya dengan caption /refunded {code}."
            ),
            code=order.code,
            account=describe(t, account),
            amount=t.money(order.refund_due),
        )


async def owed(session: AsyncSession, jastiper: Jastiper) -> list[Owed]:
    """The refunds the jastiper still owes, oldest order first."""
    return [Owed(o, t, u) for o, t, u in await repo.refunds_owed(session, jastiper.id)]


async def confirm(
    session: AsyncSession,
    order: Order,
    *,
    photo_key: str | None = None,
    actor_user_id: int | None = None,
) -> int:
    """The jastiper returned the refund owed: recorded once, and the buyer told (with
    the photo of the transfer when there is one); returns the amount.

    Raises:
        NotAllowed: nothing is owed (never was, or confirmed already).
    """
    amount = order.refund_due
    if amount <= 0 or not await repo.confirm_refund(session, order, amount):
        raise NotAllowed(
            _("Tidak ada refund yang belum dikembalikan untuk {code}."), code=order.code
        )
    audit.record(
        session,
        "order.refunded",
        actor_user_id=actor_user_id,
        trip_id=order.trip_id,
        order=order.code,
        amount=amount,
        photo=photo_key is not None,
    )
    buyer = await users.get_user(session, order.user_id)
    if buyer is not None:
        t = notify.translator(buyer)
        text = t(
            _("Jastiper sudah mengembalikan {amount} untuk pesanan {code}. Cek rekeningmu ya. 🙏"),
            amount=t.money(amount),
            code=order.code,
        )
        if order.refund_account:
            text += "\n" + t(_("Ke: {account}"), account=describe(t, order.refund_account))
        payload = replies.image(photo_key, text) if photo_key else replies.text(text)
        notify.tell(session, buyer, payload)
    return amount


def item_lines(t: Translator, order: Order, *, numbered: bool = False) -> list[str]:
    """The order's items as a buyer or jastiper reads them: what is still bought at its
    price, and what was not found (refunded) marked as such."""
    lines = []
    for n, item in enumerate(sorted(order.items, key=lambda i: i.id), start=1):
        head = f"{n}. " if numbered else "• "
        kept = item.quantity - item.refunded_quantity
        note = f" ({item.note})" if item.note else ""
        if kept > 0:
            lines.append(f"{head}{kept}× {item.name}{note} — {t.money(item.unit_price * kept)}")
        if item.refunded_quantity:
            gone = t(
                # nothing paid yet: nothing to refund, the buyer simply pays less
                _("~{n}× {name}~ — tidak didapat, refund {amount}")
                if order.paid
                else _("~{n}× {name}~ — tidak didapat"),
                n=item.refunded_quantity,
                name=item.name,
                amount=t.money(item.unit_price * item.refunded_quantity),
            )
            lines.append(("   " if kept > 0 else head) + gone)
    return lines


def refund_lines(t: Translator, order: Order) -> list[str]:
    """The refunded total: still owed and returned."""
    lines = []
    if order.refund_due:
        lines.append(t(_("Refund belum dikembalikan: {amount}"), amount=t.money(order.refund_due)))
    if order.refunded:
        lines.append(t(_("Refund sudah dikembalikan: {amount}"), amount=t.money(order.refunded)))
    return lines

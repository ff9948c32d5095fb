"""A jastiper's merchant QRIS (``/qris``) and the dynamic QRIS a payment instruction
carries: a QR for the order's exact unique amount, so the buyer scans it with any
e-wallet or m-banking app and the credit on the statement is the amount ``/mutasi``
matches.

The payload work is pure (``services/qris.py``); drawing and reading QR pictures is
``services/qris_image.py``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services import amounts, notify, qris, qris_image, replies
from services.statement_read import digits
from storage.models import Jastiper, Order, Trip, User
from storage.repo import audit, jastipers

CAPTION = _(
    "QRIS {merchant}: scan dengan e-wallet atau m-banking apa saja, nominalnya sudah "
    "terisi *{amount}* (tepat, dengan angka unik). Setelah bayar, kirim foto buktinya di sini."
)


def merchant_of(jastiper: Jastiper | None) -> qris.Merchant | None:
    """The jastiper's saved merchant QRIS, read (None: none set)."""
    if jastiper is None or not jastiper.qris:
        return None
    try:
        return qris.read_static(jastiper.qris)
    except qris.QrisError:
        return None


def set_merchant(
    session: AsyncSession,
    jastiper: Jastiper,
    merchant: qris.Merchant | None,
    *,
    actor_user_id: int | None,
) -> None:
    """Save (or, with None, remove) the merchant QRIS payment instructions carry."""
    jastiper.qris = merchant.payload if merchant is not None else None
    action = "jastiper.qris" if merchant is not None else "jastiper.qris_removed"
    audit.record(session, action, actor_user_id=actor_user_id)


_SETTLEMENT = re.compile(r"^(?P<bank>.*?\S)\s*[:\-]?\s*(?P<number>\d[\d .\-]{4,30}\d)\s*$")


def settlement_from(text: str) -> tuple[str, str] | None:
    """``BCA 123 456 7890`` → ``("BCA", "1234567890")``: the bank as typed and the
    number as digits; None when either is missing."""
    match = _SETTLEMENT.match(" ".join(text.split()))
    if not match:
        return None
    number = digits(match["number"])
    bank = match["bank"].strip(" :-")
    if number is None or not bank or bank.isdigit():
        return None
    return bank[:100], number[:64]


def settlement_of(jastiper: Jastiper | None) -> tuple[str, str] | None:
    """The account the jastiper's QRIS payments settle into, if they recorded one."""
    if jastiper is None or not jastiper.qris_account_number:
        return None
    return jastiper.qris_bank_name or "", jastiper.qris_account_number


def set_settlement(
    session: AsyncSession,
    jastiper: Jastiper,
    account: tuple[str, str] | None,
    *,
    actor_user_id: int | None,
) -> None:
    """Record (or, with None, forget) the account QRIS payments settle into: a static
    QRIS names its merchant and acquirer, not the account, so the jastiper says it, and
    ``/mutasi`` then takes that account's statement (``services/reconcile.py``)."""
    jastiper.qris_bank_name, jastiper.qris_account_number = account or (None, None)
    action = "jastiper.qris_account" if account else "jastiper.qris_account_removed"
    audit.record(session, action, actor_user_id=actor_user_id)


def key_of(payload: str) -> str:
    """The media key of a payload's picture: the same amount and merchant, the same key."""
    return f"qris/{hashlib.sha256(payload.encode()).hexdigest()[:40]}.png"


async def offer(session: AsyncSession, media: Any, buyer: User, trip: Trip, order: Order) -> bool:
    """Queue to ``buyer`` the picture of the dynamic QRIS for what ``order`` asks them to
    transfer now (``services.amounts.due_now``: the exact amount, unique digits in) when
    the trip's jastiper has set a merchant QRIS. Every payment instruction calls this
    after the text that says how much to pay.

    Returns whether a QRIS was queued.
    """
    amount = amounts.due_now(order)
    if media is None or amount <= 0:
        return False
    merchant = merchant_of(await jastipers.get(session, trip.jastiper_id))
    if merchant is None:
        return False
    payload = qris.dynamic(merchant.payload, amount)
    key = key_of(payload)
    await media.put(key, await qris_image.render_png(payload), "image/png")
    t = notify.translator(buyer)
    caption = t(CAPTION, merchant=merchant.name or "-", amount=t.money(amount))
    notify.tell(session, buyer, replies.image(key, caption))
    return True

"""A jastiper's merchant QRIS (``/qris``) and the dynamic QRIS a payment instruction
carries: a QR for the order's exact unique amount, so the buyer scans it with any
e-wallet or m-banking app and the credit on the statement is the amount ``/mutasi``
matches.

The payload work is pure (``services/qris.py``); drawing and reading QR pictures is
``services/qris_image.py``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services import amounts, notify, qris, qris_image, replies
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

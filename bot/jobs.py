"""Scheduled jobs. Each is idempotent: running it twice (two schedulers) does no harm."""

from __future__ import annotations

import logging

from sqlalchemy import select

from flows import replies
from locales import Translator, _
from storage.db import Database
from storage.models import Order, User
from storage.repo import orders as orders_repo
from storage.repo import outbox

log = logging.getLogger(__name__)


async def expire_unpaid_orders(db: Database) -> int:
    """Expire orders unpaid past their deadline, return their stock, tell each buyer once."""
    async with db.transaction() as session:
        expired = await orders_repo.expire_due(session)
        for order in expired:
            await _tell_buyer(session, order)
    if expired:
        log.info("expired unpaid orders", extra={"count": len(expired)})
    return len(expired)


async def _tell_buyer(session, order: Order) -> None:  # type: ignore[no-untyped-def]
    if order.expired_notified:
        return
    buyer = (await session.execute(select(User).where(User.id == order.user_id))).scalar_one()
    t = Translator(buyer.locale)
    outbox.enqueue(
        session,
        buyer.id,
        replies.text(
            t(
                _(
                    "Pesanan {code} dibatalkan otomatis karena belum dibayar sampai batas "
                    "waktunya. Kalau masih mau, pesan lagi lewat KATALOG ya."
                ),
                code=order.code,
            )
        ),
    )
    order.expired_notified = True

"""Who may send media: the question asked before a photo or PDF is downloaded."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import PiiCipher
from storage.models import Jastiper, JastiperStatus, Order, User

_WANTS_MEDIA = (
    select(User.id)
    .where(
        or_(User.bsuid == bindparam("bsuid"), User.phone_hash == bindparam("hash")),
        or_(
            exists().where(
                Jastiper.user_id == User.id,
                Jastiper.status == JastiperStatus.APPROVED.value,
            ),
            exists().where(
                Order.user_id == User.id,
                Order.status.in_(bindparam("statuses", expanding=True)),
            ),
        ),
    )
    .limit(1)
)


async def has_use_for_media(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    bsuid: str | None,
    wa_id: str | None,
    order_statuses: Iterable[str],
) -> bool:
    """Whether the sender is an approved jastiper (product photos, statements, QRIS) or
    has an order in ``order_statuses`` (a payment proof): one indexed SELECT. Anyone else
    (a stranger, a buyer with nothing to pay) has no use for sending a file."""
    if not bsuid and not wa_id:
        return False
    params = {
        "bsuid": bsuid or None,
        "hash": cipher.lookup_hash(wa_id) if wa_id else None,
        "statuses": list(order_statuses),
    }
    return (await session.execute(_WANTS_MEDIA, params)).first() is not None

"""What the dev-mode WhatsApp simulator shows beside the bubbles: the delivery status
Meta (here: the simulator itself) reported for each message we sent, and per person
the unread count and the last message."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import MessageStatus, OutboxMessage, OutboxStatus

READ_RANK = 3  # statuses.RANK["read"]


async def statuses(session: AsyncSession, outbox_ids: Iterable[int]) -> dict[int, str]:
    """Outbox row id → its latest reported status (``delivered``, ``read`` …); rows with
    no status reported yet are left out."""
    ids = list(outbox_ids)
    if not ids:
        return {}
    stmt = (
        select(OutboxMessage.id, MessageStatus.status)
        .join(MessageStatus, MessageStatus.wa_message_id == OutboxMessage.wa_message_id)
        .where(OutboxMessage.id.in_(ids))
    )
    return {row_id: status for row_id, status in (await session.execute(stmt)).all()}


async def unread(session: AsyncSession, user_id: int) -> list[OutboxMessage]:
    """The messages sent to the user that nobody has reported read, oldest first."""
    stmt = (
        select(OutboxMessage)
        .outerjoin(MessageStatus, MessageStatus.wa_message_id == OutboxMessage.wa_message_id)
        .where(
            OutboxMessage.user_id == user_id,
            OutboxMessage.status == OutboxStatus.SENT.value,
            (MessageStatus.rank.is_(None)) | (MessageStatus.rank < READ_RANK),
        )
        .order_by(OutboxMessage.id)
    )
    return list((await session.execute(stmt)).scalars().all())


async def last_sent(session: AsyncSession, user_id: int) -> OutboxMessage | None:
    """The latest message that left the outbox for the user."""
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.user_id == user_id, OutboxMessage.status == OutboxStatus.SENT.value)
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()

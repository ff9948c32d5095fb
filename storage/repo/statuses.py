"""Delivery statuses of the messages we sent: they only move forward."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import BroadcastDelivery, MessageStatus, OutboxMessage, OutboxStatus, utcnow
from storage.repo import messaging
from storage.repo import outbox as outbox_repo
from storage.repo._sql import insert_ignoring_conflicts, is_postgres
from storage.repo.broadcasts import stop_marketing

RE_ENGAGEMENT = 131047  # Meta: more than 24 hours since the customer last replied
MARKETING_OPT_OUT = 131050  # Meta: the user stopped marketing messages

# sent → delivered → read (played counts as read); failed can happen after sent but is
# final. A later-ranked status never goes back to an earlier one.
RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 3, "failed": 4}


# built once: Meta sends a status or three for every message we send (hot path)
_STATUS = (
    select(MessageStatus)
    .where(MessageStatus.wa_message_id == bindparam("wamid"))
    .execution_options(populate_existing=True)
)
_STATUS_PG = _STATUS.with_for_update()
_SENT_ROW = select(
    OutboxMessage.id,
    OutboxMessage.status,
    OutboxMessage.broadcast_id,
    OutboxMessage.user_id,
    OutboxMessage.sent_at,
).where(OutboxMessage.wa_message_id == bindparam("wamid"))


async def _status_row(session: AsyncSession, wa_message_id: str) -> MessageStatus:
    """The message's status row, locked on Postgres, created at its first status."""
    stmt = _STATUS_PG if is_postgres(session) else _STATUS
    row = (await session.execute(stmt, {"wamid": wa_message_id})).scalar_one_or_none()
    if row is not None:
        return row
    await session.execute(
        insert_ignoring_conflicts(session, MessageStatus, ["wa_message_id"]).values(
            wa_message_id=wa_message_id, status="unknown", rank=0, updated_at=utcnow()
        )
    )
    return (await session.execute(stmt, {"wamid": wa_message_id})).scalar_one()


async def record_status(
    session: AsyncSession,
    *,
    wa_message_id: str,
    status: str,
    error_code: int | None = None,
    error_title: str | None = None,
    pricing_category: str | None = None,
    billable: bool | None = None,
    tracker: str | None = None,
    at: dt.datetime | None = None,
    default_rate: int = 0,
) -> bool:
    """Apply a status webhook: the status moves forward only, a send whose answer was
    lost is confirmed by its tracker, and the first pricing Meta reports replaces our
    cost estimate. Returns True if it moved the status forward."""
    rank = RANK.get(status, 0)
    row = await _status_row(session, wa_message_id)
    sent = None
    if tracker and tracker.startswith("ob:") and tracker[3:].isdigit():
        sent = (
            await session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.status,
                    OutboxMessage.broadcast_id,
                    OutboxMessage.user_id,
                    OutboxMessage.sent_at,
                ).where(OutboxMessage.id == int(tracker[3:]))
            )
        ).first()
        if sent is not None and sent.status == OutboxStatus.SENDING.value:
            # a send whose answer we never got (crash, dropped connection): Meta has it
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == sent.id,
                    OutboxMessage.status == OutboxStatus.SENDING.value,
                )
                .values(
                    status=OutboxStatus.SENT.value,
                    wa_message_id=wa_message_id,
                    sent_at=utcnow(),
                    lease_until=None,
                )
            )
    else:
        sent = (await session.execute(_SENT_ROW, {"wamid": wa_message_id})).first()
    if tracker and not row.tracker:
        row.tracker = tracker
    if pricing_category and not row.pricing_category:
        row.pricing_category = pricing_category
        row.billable = billable
        if sent is not None and billable is not None:
            await messaging.meter_row(
                session,
                sent.id,
                sent_at=sent.sent_at,
                category=pricing_category,
                billable=billable,
                default_rate=default_rate,
            )
    if rank <= row.rank:
        return False
    # the free message came too late for the 24-hour window: its template goes instead
    late = status == "failed" and error_code == RE_ENGAGEMENT
    if late and await outbox_repo.fall_back(session, wa_message_id):
        row.status, row.rank, row.updated_at = status, rank, at or utcnow()
        row.error_code, row.error_title = error_code, error_title
        return True
    if sent is not None and sent.broadcast_id is not None:
        await _mirror_on_delivery(session, sent.id, status, error_code)
    if status == "failed" and error_code == MARKETING_OPT_OUT and sent is not None:
        await stop_marketing(session, sent.user_id)
    row.status = status
    row.rank = rank
    row.updated_at = at or utcnow()
    if status == "failed":
        row.error_code = error_code
        row.error_title = error_title
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.wa_message_id == wa_message_id)
            .values(
                status=OutboxStatus.FAILED.value,
                error_code=error_code,
                error_title=(error_title or "")[:2000],
            )
        )
    return True


async def get_status(session: AsyncSession, wa_message_id: str) -> MessageStatus | None:
    return (
        await session.execute(
            select(MessageStatus).where(MessageStatus.wa_message_id == wa_message_id)
        )
    ).scalar_one_or_none()


async def _mirror_on_delivery(
    session: AsyncSession, outbox_id: int, status: str, error_code: int | None
) -> None:
    """A broadcast delivery follows its message: delivered, read, or failed."""
    mapped = {"played": "read"}.get(status, status)
    await session.execute(
        update(BroadcastDelivery)
        .where(BroadcastDelivery.outbox_id == outbox_id)
        .values(status=mapped, error_code=error_code if status == "failed" else None)
    )

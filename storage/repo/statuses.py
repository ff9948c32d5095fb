"""Delivery statuses of the messages we sent: they only move forward."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    BroadcastDelivery,
    DeliveryStatus,
    MessageStatus,
    OutboxMessage,
    OutboxStatus,
    utcnow,
)
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
# what a status needs of the message it is about, found by Meta's id or by our tracker
_SENT_COLUMNS = cast(Table, OutboxMessage.__table__).c
_SENT = select(
    _SENT_COLUMNS.id,
    _SENT_COLUMNS.status,
    _SENT_COLUMNS.broadcast_id,
    _SENT_COLUMNS.user_id,
    _SENT_COLUMNS.sent_at,
    _SENT_COLUMNS.billable,
    _SENT_COLUMNS.category,
)
_SENT_ROW = _SENT.where(_SENT_COLUMNS.wa_message_id == bindparam("wamid"))


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
    if status != "failed":
        await _forward(
            session,
            wa_message_id=wa_message_id,
            status=status,
            rank=rank,
            pricing_category=pricing_category,
            billable=billable,
            tracker=tracker,
            at=at or utcnow(),
            default_rate=default_rate,
        )
        return True
    row = await _status_row(session, wa_message_id)
    sent = None
    if tracker and tracker.startswith("ob:") and tracker[3:].isdigit():
        sent = (await session.execute(_SENT_BY_ID, {"outbox_id": int(tracker[3:])})).first()
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


# sent, delivered, read — most of all the webhooks Meta sends — in one statement: the
# status row is created or moves forward (never back), the first tracker and pricing stay
_ROWS = cast(Table, MessageStatus.__table__)  # the table: no ORM machinery on this path
_EXCLUDED = sqlite.insert(_ROWS).excluded
_NOW = _ROWS.c
_FORWARD = {
    "status": case((_EXCLUDED.rank > _NOW.rank, _EXCLUDED.status), else_=_NOW.status),
    "rank": case((_EXCLUDED.rank > _NOW.rank, _EXCLUDED.rank), else_=_NOW.rank),
    "updated_at": case((_EXCLUDED.rank > _NOW.rank, _EXCLUDED.updated_at), else_=_NOW.updated_at),
    "tracker": func.coalesce(_NOW.tracker, _EXCLUDED.tracker),
    "pricing_category": func.coalesce(_NOW.pricing_category, _EXCLUDED.pricing_category),
    "billable": case((_NOW.pricing_category.is_(None), _EXCLUDED.billable), else_=_NOW.billable),
}
_UPSERT = {
    dialect: module.insert(_ROWS)
    .values(
        wa_message_id=bindparam("wamid"),
        status=bindparam("status"),
        rank=bindparam("rank"),
        updated_at=bindparam("at"),
        tracker=bindparam("tracker"),
        pricing_category=bindparam("category"),
        billable=bindparam("billable"),
    )
    .on_conflict_do_update(index_elements=["wa_message_id"], set_=_FORWARD)
    for dialect, module in (("sqlite", sqlite), ("postgresql", postgresql))
}
_SENT_BY_ID = _SENT.where(_SENT_COLUMNS.id == bindparam("outbox_id"))
# a delivery only moves forward too: for each of Meta's statuses, the delivery statuses
# as far as or past it
D = DeliveryStatus
_PAST = {
    "sent": (D.SENT, D.DELIVERED, D.READ, D.FAILED),
    "delivered": (D.DELIVERED, D.READ, D.FAILED),
    "read": (D.READ, D.FAILED),
    "played": (D.READ, D.FAILED),
}
# Meta's status → the delivery's (a voice message "played" was read)
_AS_DELIVERY = {"played": D.READ.value}


async def _forward(
    session: AsyncSession,
    *,
    wa_message_id: str,
    status: str,
    rank: int,
    pricing_category: str | None,
    billable: bool | None,
    tracker: str | None,
    at: dt.datetime,
    default_rate: int,
) -> None:
    """A status that is not a failure: two statements (the sent row, the upsert)."""
    if tracker and tracker.startswith("ob:") and tracker[3:].isdigit():
        sent = (await session.execute(_SENT_BY_ID, {"outbox_id": int(tracker[3:])})).first()
    else:
        sent = (await session.execute(_SENT_ROW, {"wamid": wa_message_id})).first()
    dialect = "postgresql" if is_postgres(session) else "sqlite"
    await session.execute(
        _UPSERT[dialect],
        {
            "wamid": wa_message_id,
            "status": status,
            "rank": rank,
            "at": at,
            "tracker": tracker,
            "category": pricing_category,
            "billable": billable,
        },
    )
    if sent is None:
        return
    if sent.status == OutboxStatus.SENDING.value:
        # a send whose answer we never got (crash, dropped connection): Meta has it
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == sent.id, OutboxMessage.status == OutboxStatus.SENDING.value)
            .values(
                status=OutboxStatus.SENT.value,
                wa_message_id=wa_message_id,
                sent_at=utcnow(),
                lease_until=None,
            )
        )
    if (
        pricing_category
        and billable is not None
        and (billable != sent.billable or pricing_category[:16] != sent.category or billable)
    ):
        # Meta's word on the cost replaces our estimate (a free reply stays as it is)
        await messaging.meter_row(
            session,
            sent.id,
            sent_at=sent.sent_at,
            category=pricing_category,
            billable=billable,
            default_rate=default_rate,
        )
    if sent.broadcast_id is not None:
        await session.execute(
            update(BroadcastDelivery)
            .where(
                BroadcastDelivery.outbox_id == sent.id,
                BroadcastDelivery.status.not_in(_PAST.get(status, ())),
            )
            .values(status=_AS_DELIVERY.get(status, status), error_code=None)
        )


async def _mirror_on_delivery(
    session: AsyncSession, outbox_id: int, status: str, error_code: int | None
) -> None:
    """A broadcast delivery follows its message: delivered, read, or failed."""
    mapped = _AS_DELIVERY.get(status, status)
    await session.execute(
        update(BroadcastDelivery)
        .where(BroadcastDelivery.outbox_id == outbox_id)
        .values(status=mapped, error_code=error_code if status == "failed" else None)
    )

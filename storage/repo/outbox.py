"""The transactional outbox: replies written with the change that caused them."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import trace, uow
from storage.models import MessageStatus, OutboxMessage, OutboxStatus, utcnow
from storage.repo._sql import is_postgres

_OPEN = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
_OUTBOX = cast(Table, OutboxMessage.__table__)


def queue(
    session: AsyncSession,
    user_id: int,
    payload: dict[str, Any],
    *,
    category: str = "service",
    priority: int = 0,
) -> None:
    """Add a reply to the current transaction: the one way to say something.

    Staged on the transaction's unit of work (``storage/uow.py``) and written with the
    others of the transaction in one multi-row INSERT just before it commits (the hot
    path: one reply per inbound message, a batch of messages per transaction;
    docs/BENCHMARKS.md); it commits or rolls back with the transaction. Rows are
    numbered in the order queued, so a recipient's messages go out in order.

    While a savepoint is open the row goes through the ORM instead, so that rolling the
    savepoint back takes the reply with it; open savepoints with :func:`savepoint`,
    which writes the replies queued before first (with a bare ``begin_nested()`` they
    are kept, but a reply said inside the savepoint may go out before them).

    ``priority`` 1: a purchase step's reply, claimed before others while replies queue
    at the number's cap (:func:`claim_batch`)."""
    now = utcnow()
    row: dict[str, Any] = {
        "user_id": user_id,
        "payload": payload,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "broadcast_id": None,
        "category": category,
        "billable": False,
        "cost": 0,
        "created_at": now,
        "priority": priority,
        **_cause(),
    }
    if session.in_nested_transaction():
        session.add(OutboxMessage(**row))  # flushed in the savepoint, rolled back with it
    else:
        uow.of(session).reply(row)


async def queue_numbered(session: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """Add messages whose row ids are needed now (a broadcast's sends, each pointed at by
    its delivery; a template in a refused message's place): the replies queued before
    are written first, then these in one INSERT; their ids, in the order given. Each
    row holds ``user_id``, ``payload`` and maybe ``broadcast_id``, ``category``."""
    if not rows:
        return []
    await uow.of(session).write_replies(session)
    now = utcnow()
    added = [
        OutboxMessage(
            user_id=r["user_id"],
            payload=r["payload"],
            status=OutboxStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            broadcast_id=r.get("broadcast_id"),
            category=r.get("category", "service"),
            priority=0,
            **_cause(),
        )
        for r in rows
    ]
    session.add_all(added)
    await session.flush()  # one multi-row insert gives every row its id
    return [row.id for row in added]


_RECENT = (
    select(_OUTBOX.c.payload)
    .where(_OUTBOX.c.user_id == bindparam("user_id"))
    .order_by(_OUTBOX.c.id.desc())
    .limit(bindparam("n"))
)


async def recent_payloads(session: AsyncSession, user_id: int, n: int) -> list[dict[str, Any]]:
    """The payloads of the last ``n`` messages to ``user_id``, newest first, those queued
    in this transaction and not written yet included."""
    written = (await session.execute(_RECENT, {"user_id": user_id, "n": n})).all()
    staged = [row["payload"] for row in uow.of(session).replies if row["user_id"] == user_id]
    staged.reverse()  # queued after every written row
    return (staged + [row.payload for row in written])[:n]


def _cause() -> dict[str, Any]:
    """What caused a reply, kept for its send's log line: the request whose work
    queued it and the trip that work is about (storage/trace.py)."""
    trip = trace.fields().get("tripId")
    return {"request_id": trace.request_id(), "trip_id": trip if isinstance(trip, int) else None}


def savepoint(session: AsyncSession) -> contextlib.AbstractAsyncContextManager[None]:
    """``session.begin_nested()`` for code that may reply inside it: the replies queued
    before are written first, outside the savepoint, so rolling it back cannot take
    them along and what is said inside comes after them (``UnitOfWork.savepoint``)."""
    return uow.of(session).savepoint(session)


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimedRow:
    id: int
    user_id: int
    payload: dict[str, Any]
    attempts: int  # including this one
    broadcast_id: int | None
    request_id: str | None = None  # what caused it (storage/trace.py)
    trip_id: int | None = None


async def claim_batch(
    session: AsyncSession,
    *,
    limit: int,
    lease: dt.timedelta,
    broadcast_limit: int | None = None,
) -> list[ClaimedRow]:
    """Claim up to ``limit`` due rows, at most one per recipient, each the oldest open
    row of its recipient (so a recipient's messages go out in order); among those, the
    purchase steps' replies (``priority`` 1) first, then the oldest: when replies queue
    at the number's cap, a buyer confirming an order is not behind a thousand browsing.

    With ``broadcast_limit``, broadcast rows are claimed separately and at most that
    many (the broadcast pace); replies to users are never held back by broadcasts.
    """
    if broadcast_limit is not None:
        replies = (
            await _claim(session, limit=limit, lease=lease, broadcast=False) if limit > 0 else []
        )
        paced = (
            await _claim(session, limit=broadcast_limit, lease=lease, broadcast=True)
            if broadcast_limit > 0
            else []
        )
        return replies + paced
    return await _claim(session, limit=limit, lease=lease, broadcast=None)


_OUTBOX = cast(Table, OutboxMessage.__table__)  # plain rows on the send path: no ORM


@functools.lru_cache(maxsize=64)
def _claim_statement(limit: int, broadcast: bool | None, postgres: bool) -> Any:
    """``UPDATE … WHERE id IN (the due heads of line) RETURNING …``: one statement and
    one round trip per claim, built once per shape (building it was a third of the
    event loop's time under load: aliasing and cache keys on every call), on the table
    rather than the mapped class (no ORM bulk-update machinery)."""
    o = _OUTBOX.c
    older = _OUTBOX.alias("older")
    same_class = []
    if broadcast is True:
        same_class = [older.c.broadcast_id.is_not(None)]
    elif broadcast is False:
        # a reply never waits behind a (paced, maybe paused) broadcast to the same person
        same_class = [older.c.broadcast_id.is_(None)]
    head_of_line = ~exists().where(
        and_(
            older.c.user_id == o.user_id,
            older.c.id < o.id,
            older.c.status.in_(_OPEN),
            *same_class,
        )
    )
    due = (
        select(o.id)
        .where(
            o.status == OutboxStatus.PENDING.value,
            o.next_attempt_at <= bindparam("now"),
            head_of_line,
        )
        .order_by(o.priority.desc(), o.id)
        .limit(limit)
    )
    if broadcast is True:
        due = due.where(o.broadcast_id.is_not(None))
    elif broadcast is False:
        due = due.where(o.broadcast_id.is_(None))
    chosen: Any = due.scalar_subquery()
    if postgres:
        # locked once, in a CTE evaluated once: as an IN (subquery) the planner may run
        # the LIMIT … FOR UPDATE SKIP LOCKED again for every outer row (a semi join with
        # loops = rows), and the claim then took every due row, not ``limit``
        locked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        chosen = select(locked.c.id).scalar_subquery()
    return (
        update(_OUTBOX)
        .where(o.id.in_(chosen), o.status == OutboxStatus.PENDING.value)
        .values(
            status=OutboxStatus.SENDING.value,
            attempts=o.attempts + 1,
            lease_until=bindparam("lease_until"),
        )
        .returning(o.id, o.user_id, o.payload, o.attempts, o.broadcast_id, o.request_id, o.trip_id)
    )


def _due_exists(broadcast: bool) -> Any:
    o = _OUTBOX.c
    kind = o.broadcast_id.is_not(None) if broadcast else o.broadcast_id.is_(None)
    return exists().where(
        o.status == OutboxStatus.PENDING.value, o.next_attempt_at <= bindparam("now"), kind
    )


_DUE = select(_due_exists(False), _due_exists(True))


async def due(session: AsyncSession) -> tuple[bool, bool]:
    """(replies due, broadcast sends due): one cheap read, so that idle senders do not
    queue for the writer, and the broadcast pace (Redis) is asked only when a broadcast
    send is due — a reply never waits for it."""
    row = (await session.execute(_DUE, {"now": utcnow()})).one()
    return bool(row[0]), bool(row[1])


async def _claim(
    session: AsyncSession, *, limit: int, lease: dt.timedelta, broadcast: bool | None
) -> list[ClaimedRow]:
    now = utcnow()
    stmt = _claim_statement(limit, broadcast, is_postgres(session))
    result = await session.execute(stmt, {"now": now, "lease_until": now + lease})
    rows = sorted(result.all(), key=lambda r: r.id)  # RETURNING keeps no order
    return [
        ClaimedRow(r.id, r.user_id, r.payload, r.attempts, r.broadcast_id, r.request_id, r.trip_id)
        for r in rows
    ]


async def mark_retry(
    session: AsyncSession, outbox_id: int, *, delay: dt.timedelta, code: int | None, title: str
) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id)
        .values(
            status=OutboxStatus.PENDING.value,
            next_attempt_at=utcnow() + delay,
            lease_until=None,
            error_code=code,
            error_title=title[:2000],
        )
    )


async def replace_payload(session: AsyncSession, outbox_id: int, payload: dict[str, Any]) -> None:
    """Send something else in this row's place, now (a template for a free message that
    Meta refused outside the 24-hour window). A broadcast delivery follows."""
    from storage.models import BroadcastDelivery

    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id)
        .values(
            payload=payload,
            status=OutboxStatus.PENDING.value,
            next_attempt_at=utcnow(),
            lease_until=None,
            category=payload.get("category", "service"),
        )
    )
    await session.execute(
        update(BroadcastDelivery)
        .where(BroadcastDelivery.outbox_id == outbox_id)
        .values(mode="template")
    )


async def fall_back(session: AsyncSession, wa_message_id: str) -> bool:
    """Meta refused a sent free message (131047): queue its ``fallback`` template as a new
    row and point the broadcast delivery at it. False when the row has no fallback."""
    from storage.models import BroadcastDelivery

    row = (
        await session.execute(
            select(OutboxMessage).where(OutboxMessage.wa_message_id == wa_message_id)
        )
    ).scalar_one_or_none()
    fallback = (row.payload or {}).get("fallback") if row is not None else None
    if row is None or not fallback:
        return False
    row.status = OutboxStatus.FAILED.value
    row.error_code = 131047
    row.error_title = "re-engagement: the template was sent instead"
    (new_id,) = await queue_numbered(
        session,
        [
            {
                "user_id": row.user_id,
                "payload": fallback,
                "broadcast_id": row.broadcast_id,
                "category": fallback.get("category", "marketing"),
            }
        ],
    )
    await session.execute(
        update(BroadcastDelivery)
        .where(BroadcastDelivery.outbox_id == row.id)
        .values(outbox_id=new_id, status="queued", mode="template", error_code=None)
    )
    return True


async def mark_uncertain(session: AsyncSession, outbox_id: int, *, title: str) -> None:
    """The send may or may not have reached Meta: hand the row to lease recovery."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id)
        .values(lease_until=utcnow(), error_title=title[:2000])
    )


async def mark_failed(
    session: AsyncSession, outbox_id: int, *, code: int | None, title: str
) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id)
        .values(
            status=OutboxStatus.FAILED.value,
            lease_until=None,
            error_code=code,
            error_title=title[:2000],
        )
    )


async def recover_expired_leases(session: AsyncSession, *, grace: dt.timedelta) -> tuple[int, int]:
    """Rows left in ``sending`` by a crashed dispatcher.

    If Meta reported a status for the row's tracker, it was sent: record that. If the
    lease ran out more than ``grace`` ago without any status, it was not: send again.
    Returns (confirmed, requeued).
    """
    now = utcnow()
    stmt = select(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.SENDING.value,
        OutboxMessage.lease_until < now,
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    confirmed = requeued = 0
    for row in (await session.execute(stmt)).scalars().all():
        status = (
            await session.execute(
                select(MessageStatus).where(MessageStatus.tracker == tracker_for(row.id))
            )
        ).scalar_one_or_none()
        if status is not None:
            row.status = OutboxStatus.SENT.value
            row.wa_message_id = status.wa_message_id
            row.sent_at = status.updated_at
            row.lease_until = None
            confirmed += 1
        elif row.lease_until is not None and row.lease_until + grace < now:
            row.status = OutboxStatus.PENDING.value
            row.lease_until = None
            row.next_attempt_at = now
            requeued += 1
    return confirmed, requeued


def tracker_for(outbox_id: int) -> str:
    """The ``biz_opaque_callback_data`` Meta echoes in status webhooks for this row."""
    return f"ob:{outbox_id}"


async def pending_count(session: AsyncSession) -> int:
    stmt = select(func.count()).where(OutboxMessage.status.in_(_OPEN))
    return int((await session.execute(stmt)).scalar_one())


async def oldest_pending_created_at(session: AsyncSession) -> dt.datetime | None:
    """When the oldest row still pending or sending was queued (None: none waits)."""
    stmt = select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status.in_(_OPEN))
    return cast("dt.datetime | None", (await session.execute(stmt)).scalar_one())


async def for_user(
    session: AsyncSession, user_id: int, *, after_id: int = 0
) -> list[OutboxMessage]:
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.user_id == user_id, OutboxMessage.id > after_id)
        .order_by(OutboxMessage.id)
    )
    return list((await session.execute(stmt)).scalars().all())


async def requeue_failed(session: AsyncSession) -> int:
    """Give every failed row another chance (an operator's decision, e.g. after a fix)."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.FAILED.value)
        .values(status=OutboxStatus.PENDING.value, attempts=0, next_attempt_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    stmt = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    return {status: n for status, n in (await session.execute(stmt)).all()}


async def mark_sent_batch(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record a batch of sends in one executemany: ``rows`` hold ``id`` and the values.
    Rows are locked in ascending id, the order status webhooks for them take too."""
    if not rows:
        return
    columns = tuple(c for c in rows[0] if c != "id")
    await session.execute(
        _mark_statement(columns),
        [
            {"row_id": r["id"], **{f"v_{c}": r[c] for c in columns}}
            for r in sorted(rows, key=lambda r: int(r["id"]))
        ],
    )


@functools.lru_cache(maxsize=8)
def _mark_statement(columns: tuple[str, ...]) -> Any:
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id == bindparam("row_id"))
        .values({c: bindparam(f"v_{c}") for c in columns})
    )


async def analyze(session: AsyncSession) -> None:
    """Fresh planner statistics after thousands of rows arrived at once (Postgres): without
    them the claim's plan took seconds instead of a millisecond."""
    if is_postgres(session):
        await session.execute(text("ANALYZE outbox"))


async def release_unsent(session: AsyncSession, ids: list[int]) -> int:
    """Hand rows this process claimed but never sent back to the queue, due now, in one
    statement (a stopping process: the next one sends them without waiting out their
    lease). The claim's attempt is given back too. Only rows still ``sending`` move."""
    if not ids:
        return 0
    o = _OUTBOX.c
    result = await session.execute(
        update(_OUTBOX)
        .where(o.id.in_(ids), o.status == OutboxStatus.SENDING.value)
        .values(
            status=OutboxStatus.PENDING.value,
            lease_until=None,
            next_attempt_at=utcnow(),
            attempts=o.attempts - 1,  # the claim counted one: at least 1
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)

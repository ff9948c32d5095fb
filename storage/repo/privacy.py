"""Personal data at rest: rewrite values stored before sealing; purge old inbox units."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

from sqlalchemy import Table, delete, exists, func, literal, or_, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import LargeBinary

from storage.crypto import DIGEST_PREFIX
from storage.models import (
    Address,
    AuditLog,
    Broadcast,
    BroadcastDelivery,
    Conversation,
    InboundStatus,
    InboundUpdate,
    InboxLease,
    Jastiper,
    MessageStatus,
    Order,
    OrderItem,
    OutboxMessage,
    OutboxStatus,
    Participant,
    Question,
    User,
    WaitlistEntry,
    utcnow,
)
from storage.sealed import is_sealed

# each model with its sealed columns
_SEALED: list[tuple[type[Any], tuple[str, ...]]] = [
    (InboundUpdate, ("body",)),
    (OutboxMessage, ("payload",)),
    (Conversation, ("data",)),
    (User, ("profile_name", "display_name")),
    (OrderItem, ("note",)),
    (Question, ("text",)),
]
_JSON = {"body", "payload", "data"}
_SEALED_MARK = literal(b"\x01", LargeBinary)


async def reseal(session: AsyncSession, *, batch: int = 500) -> int:
    """Rewrite every value still stored in plain text (written before migration 0006)
    sealed with the active cipher, and Meta's message ids as their digests; how many
    values were rewritten. Idempotent."""
    done = 0
    for model, columns in _SEALED:
        table = cast(Table, model.__table__)  # type: ignore[attr-defined]
        for name in columns:
            raw = table.c[name]
            plain_raw = func.substr(raw, 1, 1) != _SEALED_MARK
            last = 0
            while True:
                # the raw bytes (no type processing) of the rows still plain
                stmt = (
                    select(table.c.id, type_coerce(raw, LargeBinary).label("raw"))
                    .where(raw.is_not(None), plain_raw, table.c.id > last)
                    .order_by(table.c.id)
                    .limit(batch)
                )
                rows = (await session.execute(stmt)).all()
                if not rows:
                    break
                for row_id, value in rows:
                    last = row_id
                    if is_sealed(value):
                        continue
                    decoded = value if isinstance(value, str) else bytes(value).decode()
                    new: Any = json.loads(decoded) if name in _JSON else decoded
                    await session.execute(
                        update(table).where(table.c.id == row_id).values({name: new})
                    )
                    done += 1
    for model in (OutboxMessage, MessageStatus):
        table = cast(Table, model.__table__)
        column = table.c.wa_message_id
        stmt = select(table.c.id, column).where(
            column.is_not(None), column.not_like(DIGEST_PREFIX + "%")
        )
        for row_id, wamid in (await session.execute(stmt)).all():
            # the column's type digests the id on the way in
            await session.execute(
                update(table).where(table.c.id == row_id).values(wa_message_id=wamid)
            )
            done += 1
    return done


async def purge_inbox(session: AsyncSession, *, older_than: dt.timedelta) -> int:
    """Delete handled (and given-up) inbox units received before ``older_than`` ago:
    their bodies hold numbers and typed texts, and Meta redelivers for a few days at most.
    Units still pending are kept whatever their age."""
    units = cast(Table, InboundUpdate.__table__)
    result = await session.execute(
        delete(units).where(
            units.c.status.in_([InboundStatus.DONE.value, InboundStatus.FAILED.value]),
            units.c.received_at < utcnow() - older_than,
        )
    )
    # leases of lanes a process that died still held (they ran out long ago); a lane
    # digest is a keyed digest of a number: not kept longer than needed either
    leases = cast(Table, InboxLease.__table__)
    await session.execute(delete(leases).where(leases.c.until < utcnow() - dt.timedelta(hours=1)))
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_strangers(
    session: AsyncSession, *, older_than: dt.timedelta, batch: int = 500
) -> int:
    """Delete people who wrote to the number and never joined anything — no trip joined,
    no order, no waitlist entry, no question, no broadcast, not a jastiper nor an admin —
    and have not written for ``older_than``, with their conversation, their settled free
    replies and any address; an audit row that names one keeps the row, not the person.
    Someone with a billable or unsent reply is kept (the cost stays accounted). How many
    people went."""
    users = cast(Table, User.__table__)
    outbox = cast(Table, OutboxMessage.__table__)
    last_seen = func.coalesce(users.c.last_inbound_at, users.c.created_at)
    unsent = [OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]
    kept_by = [
        select(Jastiper.user_id).where(Jastiper.user_id == users.c.id),
        select(Participant.id).where(Participant.user_id == users.c.id),
        select(Order.id).where(Order.user_id == users.c.id),
        select(WaitlistEntry.id).where(WaitlistEntry.user_id == users.c.id),
        select(Question.id).where(Question.buyer_user_id == users.c.id),
        select(BroadcastDelivery.id).where(BroadcastDelivery.user_id == users.c.id),
        select(Broadcast.id).where(Broadcast.created_by == users.c.id),
        select(outbox.c.id).where(
            outbox.c.user_id == users.c.id,
            or_(outbox.c.billable.is_(True), outbox.c.status.in_(unsent)),
        ),
    ]
    stmt = (
        select(users.c.id)
        .where(
            users.c.is_admin.is_(False),
            last_seen < utcnow() - older_than,
            *(~exists(q) for q in kept_by),
        )
        .limit(batch)
    )
    ids = list((await session.execute(stmt)).scalars().all())
    if not ids:
        return 0
    await session.execute(
        update(AuditLog).where(AuditLog.actor_user_id.in_(ids)).values(actor_user_id=None)
    )
    for model in (Conversation, OutboxMessage, Address):
        table = cast(Table, model.__table__)  # type: ignore[attr-defined]
        await session.execute(delete(table).where(table.c.user_id.in_(ids)))
    result = await session.execute(delete(users).where(users.c.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)

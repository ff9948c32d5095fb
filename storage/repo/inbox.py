"""The durable inbox of webhook units."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboundStatus, InboundUpdate, utcnow
from storage.repo._sql import InsertIgnoring

MAX_ATTEMPTS = 5
# the table itself, not the mapped class: the hot statements below skip the ORM's
# bulk-persistence machinery (a third of their cost, docs/BENCHMARKS.md)
_UNITS = cast(Table, InboundUpdate.__table__)


async def store_units(session: AsyncSession, units: Sequence[dict[str, Any]]) -> list[str]:
    """Store units (``key``, ``kind``, ``field``, ``body``, optionally ``request_id``: the
    webhook's, logged again when the unit is processed); return the keys that were new.

    A unit whose key is already stored (a redelivery, even a concurrent one) is ignored
    by the unique constraint.
    """
    if not units:
        return []
    now = utcnow()
    rows = [
        {
            "key": u["key"],
            "kind": u["kind"],
            "field": u["field"],
            "body": u["body"],
            "status": InboundStatus.PENDING.value,
            "attempts": 0,
            "received_at": now,
            "request_id": u.get("request_id"),
        }
        for u in units
    ]
    # parameters passed as a list: SQLAlchemy's "insertmanyvalues" sends one multi-row
    # INSERT … RETURNING from its compiled cache (``.values(rows)`` embedded the rows
    # and compiled the statement anew every batch)
    result = await session.execute(_STORE(session), rows)
    return list(result.scalars().all())


_STORE = InsertIgnoring(_UNITS, ["key"], _UNITS.c.key)


async def get(session: AsyncSession, key: str) -> InboundUpdate | None:
    return (
        await session.execute(select(InboundUpdate).where(InboundUpdate.key == key))
    ).scalar_one_or_none()


_CLAIM = (
    update(_UNITS)
    .where(_UNITS.c.key == bindparam("unit_key"), _UNITS.c.status == InboundStatus.PENDING.value)
    .values(status=InboundStatus.DONE.value, processed_at=bindparam("at"))
)


async def claim(session: AsyncSession, key: str) -> bool:
    """Mark a pending unit done in the caller's transaction, as one conditional update:
    True when this transaction got it (its effects commit together with "done"), False
    when it was handled already — a redelivery, a sweeper, another worker."""
    result = await session.execute(_CLAIM, {"unit_key": key, "at": utcnow()})
    return int(getattr(result, "rowcount", 0) or 0) == 1


_CLAIM_MANY = (
    update(_UNITS)
    .where(
        _UNITS.c.key.in_(bindparam("keys", expanding=True)),
        _UNITS.c.status == InboundStatus.PENDING.value,
    )
    .values(status=InboundStatus.DONE.value, processed_at=bindparam("at"))
    .returning(_UNITS.c.key)
)


async def claim_many(session: AsyncSession, keys: list[str]) -> set[str]:
    """:func:`claim` for a whole batch in one statement; the keys this transaction got."""
    if not keys:
        return set()
    result = await session.execute(_CLAIM_MANY, {"keys": keys, "at": utcnow()})
    return set(result.scalars().all())


_START = (
    update(_UNITS)
    .where(
        _UNITS.c.key.in_(bindparam("keys", expanding=True)),
        _UNITS.c.status == InboundStatus.PENDING.value,
        _UNITS.c.attempts < MAX_ATTEMPTS,
    )
    .values(attempts=_UNITS.c.attempts + 1)
    .returning(_UNITS.c.key)
)

_PARK = (
    update(_UNITS)
    .where(
        _UNITS.c.key.in_(bindparam("keys", expanding=True)),
        _UNITS.c.status == InboundStatus.PENDING.value,
        _UNITS.c.attempts >= MAX_ATTEMPTS,
    )
    .values(status=InboundStatus.FAILED.value, last_error=bindparam("error"))
    .returning(_UNITS.c.key)
)

UNFINISHED = f"{MAX_ATTEMPTS} attempts started and none finished (the process died or stopped)"


async def start_attempts(session: AsyncSession, keys: list[str]) -> tuple[set[str], set[str]]:
    """Count an attempt on each pending unit *before* its work starts (the caller
    commits at once), so that a unit whose processing kills the process is counted too.

    Returns ``(started, parked)``: the units this attempt may process, and those that
    had their :data:`MAX_ATTEMPTS` attempts already and are now parked as failed (a
    poison unit: never replayed again). A unit in neither set was handled already."""
    if not keys:
        return set(), set()
    started = set((await session.execute(_START, {"keys": keys})).scalars().all())
    rest = [k for k in keys if k not in started]
    if not rest:
        return started, set()
    parked = set((await session.execute(_PARK, {"keys": rest, "error": UNFINISHED})).scalars())
    return started, parked


async def pending_units(
    session: AsyncSession, *, older_than: dt.timedelta, limit: int = 200
) -> list[tuple[str, str, dict[str, Any], int, str | None]]:
    """(key, kind, body, attempts, request id) of units left pending, oldest first, for
    the sweeper: one with attempts is suspect (it may be what killed a process before)."""
    cutoff = utcnow() - older_than
    stmt = (
        select(
            InboundUpdate.key,
            InboundUpdate.kind,
            InboundUpdate.body,
            InboundUpdate.attempts,
            InboundUpdate.request_id,
        )
        .where(
            InboundUpdate.status == InboundStatus.PENDING.value,
            InboundUpdate.received_at <= cutoff,
        )
        .order_by(InboundUpdate.id)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).all()
    return [(k, kind, body, n, request) for k, kind, body, n, request in rows]


async def record_failure(session: AsyncSession, key: str, error: str) -> None:
    """Note why an attempt failed (:func:`start_attempts` counted it); after
    ``MAX_ATTEMPTS`` the unit is parked as failed."""
    unit = await get(session, key)
    if unit is None or unit.status != InboundStatus.PENDING.value:
        return
    unit.attempts = max(unit.attempts, 1)
    unit.last_error = error[:2000]
    if unit.attempts >= MAX_ATTEMPTS:
        unit.status = InboundStatus.FAILED.value


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    from sqlalchemy import func

    stmt = select(InboundUpdate.status, func.count()).group_by(InboundUpdate.status)
    return {status: n for status, n in (await session.execute(stmt)).all()}


async def reset_failed(session: AsyncSession) -> int:
    result = await session.execute(
        update(InboundUpdate)
        .where(InboundUpdate.status == InboundStatus.FAILED.value)
        .values(status=InboundStatus.PENDING.value, attempts=0)
    )
    return int(getattr(result, "rowcount", 0) or 0)

"""The durable inbox of webhook units."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, exists, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboundStatus, InboundUpdate, InboxLease, utcnow
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
            "lane": u.get("lane"),
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


# --- lanes and their leases (Postgres) ---------------------------------------------------
#
# A lane is one user's units (``InboundUpdate.lane``, a keyed digest of the sender). On
# Postgres a process leases a lane before it parses the lane's units and gives it back
# when it has none left in hand: no two processes parse the same unit, and a user's
# units are handled by one process at a time, in order. The claim in the effects'
# transaction (:func:`claim_many`) stays what makes each unit's effects happen once; a
# lease only decides who works on it. SQLite's single process needs none of this.

_LEASES = cast(Table, InboxLease.__table__)


def lane_of(body: dict[str, Any], digest: Callable[[str], str]) -> str | None:
    """The lane of a unit's body: its sender's (a status: its recipient's), as the
    keyed ``digest`` (``PiiCipher.digest_id``: never the number at rest); None for a
    change of no user."""
    try:
        value = body["entry"][0]["changes"][0]["value"]
        if value.get("messages"):
            msg = value["messages"][0]
            user = msg.get("from_user_id") or msg.get("from")
        elif value.get("statuses"):
            st = value["statuses"][0]
            user = st.get("recipient_user_id") or st.get("recipient_id")
        else:
            return None
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return digest("lane:" + str(user)) if user else None


Unit = tuple[str, str, dict[str, Any], int, str | None, str | None]
"""(key, kind, body, attempts, request id, lane) of a pending unit."""

_UNIT_COLUMNS = (
    _UNITS.c.key,
    _UNITS.c.kind,
    _UNITS.c.body,
    _UNITS.c.attempts,
    _UNITS.c.request_id,
    _UNITS.c.lane,
)


def _units(rows: Any) -> list[Unit]:
    return [(k, kind, body, n, rid, lane) for k, kind, body, n, rid, lane in rows]


async def lease_lanes(
    session: AsyncSession, lanes: Sequence[str], holder: str, seconds: float
) -> set[str]:
    """Lease the lanes free or already ``holder``'s (renewed) for ``seconds``; the ones
    this holder now has. A lane another process holds, its lease still running, is not
    taken: the INSERT waits for a lease being written at the same moment and then finds
    it (one statement, lanes in one order for every process: no deadlock)."""
    if not lanes:
        return set()
    now = utcnow()
    until = now + dt.timedelta(seconds=seconds)
    insert = postgresql.insert(_LEASES)
    stmt = insert.on_conflict_do_update(
        index_elements=[_LEASES.c.lane],
        set_={"holder": insert.excluded.holder, "until": insert.excluded.until},
        where=or_(_LEASES.c.until < now, _LEASES.c.holder == holder),
    ).returning(_LEASES.c.lane)
    rows = [{"lane": lane, "holder": holder, "until": until} for lane in sorted(set(lanes))]
    return set((await session.execute(stmt, rows)).scalars().all())


async def release_lanes(session: AsyncSession, lanes: Sequence[str], holder: str) -> set[str]:
    """Give back the holder's lanes that have no unit waiting for a first attempt; the
    lanes released. A lane keeps its lease while a unit stored meanwhile (maybe by
    another API process, which could not lease it) waits: the holder takes that unit
    up too, after the ones it had — the user's order across processes."""
    if not lanes:
        return set()
    waiting = (
        exists()
        .where(
            _UNITS.c.lane == _LEASES.c.lane,
            _UNITS.c.status == InboundStatus.PENDING.value,
            _UNITS.c.attempts == 0,
        )
        .correlate(_LEASES)
    )
    stmt = (
        delete(_LEASES)
        .where(_LEASES.c.lane.in_(sorted(set(lanes))), _LEASES.c.holder == holder, ~waiting)
        .returning(_LEASES.c.lane)
    )
    return set((await session.execute(stmt)).scalars().all())


async def release_all(session: AsyncSession, holder: str) -> int:
    """Every lease of the holder given back (a process stopping)."""
    result = await session.execute(delete(_LEASES).where(_LEASES.c.holder == holder))
    return int(getattr(result, "rowcount", 0) or 0)


async def renew_leases(session: AsyncSession, holder: str, seconds: float) -> None:
    until = utcnow() + dt.timedelta(seconds=seconds)
    await session.execute(update(_LEASES).where(_LEASES.c.holder == holder).values(until=until))


async def pending_in_lanes(
    session: AsyncSession, lanes: Sequence[str], *, besides: Sequence[str] = ()
) -> list[Unit]:
    """The units of the lanes (the caller holds them) waiting for a first attempt,
    oldest first, but for the keys ``besides`` (units in hand). One tried before waits
    for the sweepers, as it would in one process."""
    if not lanes:
        return []
    stmt = (
        select(*_UNIT_COLUMNS)
        .where(
            _UNITS.c.lane.in_(sorted(set(lanes))),
            _UNITS.c.status == InboundStatus.PENDING.value,
            _UNITS.c.attempts == 0,
        )
        .order_by(_UNITS.c.id)
    )
    if besides:
        stmt = stmt.where(_UNITS.c.key.not_in(list(besides)))
    return _units((await session.execute(stmt)).all())


async def lease_pending(
    session: AsyncSession,
    *,
    older_than: dt.timedelta,
    holder: str,
    seconds: float,
    limit: int = 200,
    lanes: int | None = None,
) -> list[Unit]:
    """The sweeper's pass on Postgres: pending units, oldest first, of lanes no other
    process holds, their lanes leased to ``holder`` in the same transaction; the units
    whose lane it got. Rows another sweeper is reading at the same moment are skipped
    (``FOR UPDATE SKIP LOCKED``), so two workers' passes take different units. With
    ``lanes``, at most that many users (the oldest units' first): one pass does not take
    every user of a backlog while another worker idles; the rest wait for the next pass,
    this worker's or another's."""
    cutoff = utcnow() - older_than
    held = (
        exists()
        .where(
            _LEASES.c.lane == _UNITS.c.lane,
            _LEASES.c.holder != holder,
            _LEASES.c.until >= utcnow(),
        )
        .correlate(_UNITS)
    )
    stmt = (
        select(*_UNIT_COLUMNS)
        .where(
            _UNITS.c.status == InboundStatus.PENDING.value,
            _UNITS.c.received_at <= cutoff,
            ~held,
        )
        .order_by(_UNITS.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=_UNITS)
    )
    units = _units((await session.execute(stmt)).all())
    wanted = list(dict.fromkeys(lane for *_, lane in units if lane))
    if lanes is not None:
        wanted = wanted[:lanes]
    got = await lease_lanes(session, wanted, holder, seconds)
    return [u for u in units if not u[5] or u[5] in got]

"""The one session rule both panels follow (``services.websessions``), on a table kept
in a dict: no app, no database."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from services import websessions
from services.websessions import ABSOLUTE, IDLE, TOUCH_EVERY, Kind, token_hash

START = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
NO_SESSION: AsyncSession = None  # type: ignore[assignment]  # the fake table needs none


@dataclasses.dataclass
class Row:
    token_hash: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    revoked: bool = False


@dataclasses.dataclass
class Table:
    """A session table and who may still use a session (``allowed``)."""

    rows: dict[str, Row] = dataclasses.field(default_factory=dict)
    allowed: bool = True

    def kind(self) -> Kind[str]:
        async def find(_session: AsyncSession, digest: str) -> tuple[Row, str] | None:
            row = self.rows.get(digest)
            return None if row is None or row.revoked else (row, "tina")

        async def touch(_session: AsyncSession, digest: str, now: dt.datetime) -> None:
            self.rows[digest].last_seen_at = now

        async def revoke(_session: AsyncSession, digest: str, now: dt.datetime) -> None:
            self.rows[digest].revoked = True

        return Kind(find, touch, revoke, lambda _who: self.allowed)

    def start(self, token: str) -> None:
        self.rows[token_hash(token)] = Row(token_hash(token), START, START)


async def test_a_session_is_used_while_fresh_and_written_once_a_minute() -> None:
    table = Table()
    table.start("abc")
    kind = table.kind()
    soon = await websessions.current(kind, NO_SESSION, "abc", START + TOUCH_EVERY / 2)
    assert soon is not None and soon.who == "tina" and not soon.touch and not soon.expired
    later = START + TOUCH_EVERY + dt.timedelta(seconds=1)
    found = await websessions.current(kind, NO_SESSION, "abc", later)
    assert found is not None and found.touch and not found.expired
    assert await websessions.record_use(kind, NO_SESSION, "abc", later) is not None
    assert table.rows[token_hash("abc")].last_seen_at == later
    assert await websessions.current(kind, NO_SESSION, "nope", later) is None


async def test_a_session_ends_when_idle_too_old_or_its_owner_is_shut_out() -> None:
    table = Table()
    kind = table.kind()
    table.start("idle")
    idle = START + IDLE + dt.timedelta(seconds=1)
    assert (await websessions.current(kind, NO_SESSION, "idle", idle)).expired  # type: ignore[union-attr]
    assert await websessions.record_use(kind, NO_SESSION, "idle", idle) is None
    assert table.rows[token_hash("idle")].revoked
    assert await websessions.current(kind, NO_SESSION, "idle", START) is None  # gone for good

    table.start("old")
    every = dt.timedelta(minutes=20)  # used all day, never idle
    uses = [START + every * n for n in range(1, ABSOLUTE // every + 1)]
    for now in uses:
        assert await websessions.record_use(kind, NO_SESSION, "old", now) is not None
    assert await websessions.record_use(kind, NO_SESSION, "old", uses[-1] + every) is None

    table.start("shut")
    table.allowed = False
    found = await websessions.current(kind, NO_SESSION, "shut", START)
    assert found is not None and found.expired

"""Web sessions, one rule for both panels: the admin panel's (``services.admins``) and a
jastiper's own (``services.jastiper_web``) differ only in their table and in who may
still use one (:class:`Kind`).

A session is live when used within :data:`IDLE`, younger than :data:`ABSOLUTE` and its
owner still allowed in; otherwise ``expired`` (revoked at the next request, never used).
Its last use is written at most every :data:`TOUCH_EVERY`, so a page view is a read.
Only the SHA-256 of the random cookie value is stored (:func:`token_hash`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

IDLE = dt.timedelta(minutes=30)
ABSOLUTE = dt.timedelta(hours=12)
TOUCH_EVERY = dt.timedelta(seconds=60)  # last_seen_at is written at most this often

Who = TypeVar("Who")


class SessionRow(Protocol):
    """What the rule reads of a session row (``AdminSession``, ``JastiperWebSession``)."""

    @property
    def token_hash(self) -> str: ...

    @property
    def created_at(self) -> dt.datetime: ...

    @property
    def last_seen_at(self) -> dt.datetime: ...


Write = Callable[[AsyncSession, str, dt.datetime], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Kind(Generic[Who]):
    """One panel's sessions: the repository functions of its table and who may still
    use a session (an active admin, an approved jastiper)."""

    find: Callable[[AsyncSession, str], Awaitable[tuple[SessionRow, Who] | None]]
    touch: Write
    revoke: Write
    allowed: Callable[[Who], bool]


@dataclasses.dataclass(frozen=True, slots=True)
class Current(Generic[Who]):
    """Who is behind a session; ``touch``: its last use should be written; ``expired``:
    idle or too old or its owner no longer allowed in (to be revoked, not used)."""

    who: Who
    token_hash: str
    touch: bool = False
    expired: bool = False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def current(
    kind: Kind[Who], session: AsyncSession, token: str, now: dt.datetime
) -> Current[Who] | None:
    """The unrevoked session of ``token``, live or expired (reads only). When
    ``expired`` or ``touch``, the caller passes it to :func:`record_use` in a write
    transaction."""
    found = await kind.find(session, token_hash(token))
    if found is None:
        return None
    row, who = found
    expired = (
        not kind.allowed(who) or now - row.last_seen_at > IDLE or now - row.created_at > ABSOLUTE
    )
    return Current(
        who, row.token_hash, touch=now - row.last_seen_at > TOUCH_EVERY, expired=expired
    )


async def record_use(
    kind: Kind[Who], session: AsyncSession, token: str, now: dt.datetime
) -> Current[Who] | None:
    """In a write transaction: look again, then refresh the idle clock of a live session
    or revoke an expired one; the live session, or None."""
    found = await current(kind, session, token, now)
    if found is None:
        return None
    if found.expired:
        await kind.revoke(session, found.token_hash, now)
        return None
    await kind.touch(session, found.token_hash, now)
    return found

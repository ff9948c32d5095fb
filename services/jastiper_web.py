"""A jastiper's web panel without a password: ``/web`` in chat makes a one-time link
(valid :data:`LINK_TTL`, single use, and only the newest one: a new link revokes the
older ones); opening it starts a session limited to that jastiper's own trips.

Only SHA-256 digests of the random tokens are stored (the link's and the session
cookie's). A link is used up by a conditional update, so it opens one session even when
two requests race with it. Sessions follow the admin panel's rule
(``services.websessions``): idle and absolute timeouts, last use written at most once a
minute; a jastiper who is no longer approved loses the session at the next request.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from services import broadcasts, websessions
from services.websessions import token_hash
from storage.models import (
    Jastiper,
    JastiperStatus,
    Order,
    PaymentProof,
    ProofStatus,
    Trip,
    User,
)
from storage.repo import audit, jastipers, users
from storage.repo import jastiper_web as repo
from storage.repo import trips as trips_repo

LINK_TTL = dt.timedelta(minutes=10)
PATH = "/j-web/"  # the link is PUBLIC_BASE_URL + PATH + token


def _approved(jastiper: Jastiper) -> bool:
    return jastiper.status == JastiperStatus.APPROVED.value


# the jastiper's web sessions: the admin panel's rule (``services.websessions``), and a
# jastiper who is no longer approved loses theirs
SESSIONS = websessions.Kind(
    repo.session_with_jastiper, repo.touch_session, repo.revoke_session, _approved
)


async def issue_link(session: AsyncSession, jastiper: Jastiper, now: dt.datetime) -> str:
    """A new one-time token for ``jastiper`` (the caller builds the link; only its
    digest is stored, and the audit log says a link was made, never which)."""
    token = secrets.token_urlsafe(32)
    await repo.add_link(session, jastiper.id, token_hash(token), now, now + LINK_TTL)
    audit.record(session, "jastiper.web.link", actor_user_id=jastiper.user_id)
    return token


async def link_usable(session: AsyncSession, token: str, now: dt.datetime) -> bool:
    """Whether the link can still be opened (reads only)."""
    found = await repo.link(session, token_hash(token))
    return found is not None and found.used_at is None and found.expires_at > now


async def open_link(
    session: AsyncSession, token: str, now: dt.datetime, *, previous_session: str | None = None
) -> str | None:
    """Use the link up and start a session: the session's token, or None when the link
    is unknown, used or expired (or its jastiper no longer approved)."""
    jastiper_id = await repo.use_link(session, token_hash(token), now)
    if jastiper_id is None:
        return None
    if previous_session:
        await repo.revoke_session(session, token_hash(previous_session), now)
    found = await jastipers.get(session, jastiper_id)
    if found is None or found.status != JastiperStatus.APPROVED.value:
        return None
    fresh = secrets.token_urlsafe(32)
    await repo.add_session(session, jastiper_id, token_hash(fresh), now)
    audit.record(session, "jastiper.web.login", actor_user_id=found.user_id)
    return fresh


async def logout(session: AsyncSession, token: str, now: dt.datetime) -> None:
    found = await repo.session_with_jastiper(session, token_hash(token))
    await repo.revoke_session(session, token_hash(token), now)
    if found is not None:
        audit.record(session, "jastiper.web.logout", actor_user_id=found[1].user_id)


# --- what the panel shows: the jastiper's own rows only; another's answer as none -----------


async def chat_language(session: AsyncSession, jastiper: Jastiper) -> str | None:
    """The language the jastiper chats in (the panel speaks it unless the reader chose)."""
    user = await users.get_user(session, jastiper.user_id)
    return user.locale if user is not None else None


async def trips(session: AsyncSession, jastiper: Jastiper) -> list[Trip]:
    """Their trips, newest first."""
    return await repo.trips(session, jastiper.id)


async def trip(session: AsyncSession, jastiper: Jastiper, code: str) -> Trip | None:
    return await repo.trip(session, jastiper.id, code)


async def orders(
    session: AsyncSession, jastiper: Jastiper, trip: Trip | None, status: str | None
) -> list[tuple[Order, Trip, User]]:
    """Their orders (all their trips, or ``trip``'s; any status, or ``status``), newest
    first, with the buyer."""
    return await repo.orders(
        session, jastiper.id, trip_id=trip.id if trip else None, status=status
    )


async def order(
    session: AsyncSession, jastiper: Jastiper, code: str
) -> tuple[Order, Trip, User] | None:
    """One order of their trips by code, items loaded."""
    return await repo.order(session, jastiper.id, code)


async def proofs_awaiting(
    session: AsyncSession, jastiper: Jastiper
) -> list[tuple[PaymentProof, Order, Trip, User]]:
    """Proofs of their orders awaiting review, oldest first, with order, trip and buyer."""
    return await repo.proofs(session, jastiper.id, status=ProofStatus.SUBMITTED.value)


async def order_proofs(
    session: AsyncSession, jastiper: Jastiper, order: Order
) -> list[PaymentProof]:
    """The proofs sent for one order of theirs, oldest first."""
    return [p for p, *_rest in await repo.proofs(session, jastiper.id, order_id=order.id)]


async def proof(session: AsyncSession, jastiper: Jastiper, proof_id: int) -> PaymentProof | None:
    return await repo.proof(session, jastiper.id, proof_id)


async def broadcast(
    session: AsyncSession, jastiper: Jastiper, broadcast_id: int
) -> broadcasts.Progress | None:
    """One of their broadcasts past the draft stage, with its progress."""
    row = await repo.broadcast(session, jastiper.id, broadcast_id)
    found = await trips_repo.get(session, row.trip_id) if row is not None else None
    if row is None or found is None or row.status == "draft":
        return None
    return await broadcasts.progress(session, row, found)

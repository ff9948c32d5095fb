"""Admin logins, their web sessions and the login throttle: every SQL statement about them.

The rules (timeouts, how long a lock lasts) live in ``services/admins.py``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AdminLoginThrottle, AdminSession, AdminUser, AuditLog
from storage.repo._sql import insert_ignoring_conflicts


async def get_admin(session: AsyncSession, admin_id: int) -> AdminUser | None:
    return await session.get(AdminUser, admin_id)


async def add_session(
    session: AsyncSession, admin_id: int, token_hash: str, now: dt.datetime
) -> AdminSession:
    row = AdminSession(admin_id=admin_id, token_hash=token_hash, created_at=now, last_seen_at=now)
    session.add(row)
    await session.flush()
    return row


async def session_with_admin(
    session: AsyncSession, token_hash: str
) -> tuple[AdminSession, AdminUser] | None:
    """The unrevoked session with this token hash and its admin."""
    row = (
        await session.execute(
            select(AdminSession, AdminUser)
            .join(AdminUser, AdminUser.id == AdminSession.admin_id)
            .where(AdminSession.token_hash == token_hash, AdminSession.revoked_at.is_(None))
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def touch_session(session: AsyncSession, token_hash: str, now: dt.datetime) -> None:
    await session.execute(
        update(AdminSession).where(AdminSession.token_hash == token_hash).values(last_seen_at=now)
    )


async def revoke_session(session: AsyncSession, token_hash: str, now: dt.datetime) -> None:
    await session.execute(
        update(AdminSession)
        .where(AdminSession.token_hash == token_hash, AdminSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def revoke_sessions_of(session: AsyncSession, admin_id: int, now: dt.datetime) -> int:
    """Revoke every open session of an admin; how many were open."""
    result = await session.execute(
        update(AdminSession)
        .where(AdminSession.admin_id == admin_id, AdminSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def lock_throttles(
    session: AsyncSession, keys: list[str], now: dt.datetime
) -> list[AdminLoginThrottle]:
    """The throttle rows of ``keys``, created at zero failures when missing, and locked
    for the rest of the transaction (Postgres: ``FOR UPDATE``, in key order so two logins
    never wait for each other in a circle; SQLite: the insert already took the single
    writer's lock). Whoever reads them next sees what this transaction wrote."""
    ordered = sorted(set(keys))
    for key in ordered:
        await session.execute(
            insert_ignoring_conflicts(session, AdminLoginThrottle, ["key"]).values(
                key=key, failures=0, last_failure_at=now
            )
        )
    stmt = (
        select(AdminLoginThrottle)
        .where(AdminLoginThrottle.key.in_(ordered))
        .order_by(AdminLoginThrottle.key)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    rows = await session.execute(stmt.execution_options(populate_existing=True))
    return list(rows.scalars().all())


async def last_login_network(session: AsyncSession, admin_id: int) -> str | None:
    """The coarse network (audit log) the admin last logged in from, if any."""
    stmt = (
        select(AuditLog.detail)
        .where(AuditLog.actor_admin_id == admin_id, AuditLog.action == "admin.login")
        .order_by(AuditLog.id.desc())
        .limit(1)
    )
    detail = (await session.execute(stmt)).scalar_one_or_none()
    network = (detail or {}).get("network")
    return str(network) if network else None


async def refund_throttle(session: AsyncSession, key: str) -> None:
    """Give back one counted attempt (it turned out to be a good login): the key is no
    longer locked, and one failure fewer is on it."""
    await session.execute(
        update(AdminLoginThrottle)
        .where(AdminLoginThrottle.key == key, AdminLoginThrottle.failures > 0)
        .values(failures=AdminLoginThrottle.failures - 1, locked_until=None)
    )


async def clear_throttle(session: AsyncSession, key: str) -> None:
    await session.execute(
        update(AdminLoginThrottle)
        .where(AdminLoginThrottle.key == key)
        .values(failures=0, locked_until=None)
    )

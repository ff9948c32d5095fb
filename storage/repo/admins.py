"""Admin logins, their web sessions and the login throttle: every SQL statement about them.

The rules (timeouts, how long a lock lasts) live in ``services/admins.py``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AdminLoginThrottle, AdminSession, AdminUser
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


async def throttles(session: AsyncSession, keys: list[str]) -> list[AdminLoginThrottle]:
    stmt = select(AdminLoginThrottle).where(AdminLoginThrottle.key.in_(keys))
    return list((await session.execute(stmt)).scalars().all())


async def throttle_row(session: AsyncSession, key: str, now: dt.datetime) -> AdminLoginThrottle:
    """The throttle row of ``key``, created at zero failures when missing (two processes
    creating it at once both end up with the one row)."""
    await session.execute(
        insert_ignoring_conflicts(session, AdminLoginThrottle, ["key"]).values(
            key=key, failures=0, last_failure_at=now
        )
    )
    stmt = select(AdminLoginThrottle).where(AdminLoginThrottle.key == key)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row: AdminLoginThrottle = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one()
    return row


async def clear_throttle(session: AsyncSession, key: str) -> None:
    await session.execute(
        update(AdminLoginThrottle)
        .where(AdminLoginThrottle.key == key)
        .values(failures=0, locked_until=None)
    )

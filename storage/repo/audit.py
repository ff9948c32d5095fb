"""The audit log: who did what, from chat, the web or the command line."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog


def record(
    session: AsyncSession,
    action: str,
    *,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
    trip_id: int | None = None,
    **detail: Any,
) -> None:
    """Add an audit row to the caller's transaction."""
    session.add(
        AuditLog(
            actor_user_id=actor_user_id,
            actor_admin_id=actor_admin_id,
            action=action,
            trip_id=trip_id,
            detail=detail,
        )
    )

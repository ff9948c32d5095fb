"""Operators' second chances: failed sends and parked inbound units back in line.

Both go back to where the ordinary machinery picks them up (the outbox sender, the
inbox sweeper), so a retried send or unit is handled exactly like a first one; every
retry is in the audit log with the admin who asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage, User
from storage.repo import audit, inbox, outbox
from storage.repo import queues as repo


@dataclasses.dataclass(frozen=True, slots=True)
class Overview:
    outbox: dict[str, int]  # outbox rows by status
    inbound: dict[str, int]  # inbound units by status
    failed_sends: list[tuple[OutboxMessage, User | None]]  # failed for good, newest first
    failed_units: list[Any]  # parked: (id, kind, attempts, last_error, received_at)


async def overview(session: AsyncSession, *, shown: int = 100) -> Overview:
    """The outbox and the inbound units by status, and the dead letters of each kind
    (``shown`` at most, newest first; a unit's body never)."""
    return Overview(
        outbox=await outbox.count_by_status(session),
        inbound=await inbox.count_by_status(session),
        failed_sends=await repo.failed_outbox(session, limit=shown),
        failed_units=await repo.failed_units(session, limit=shown),
    )


async def retry_sends(
    session: AsyncSession, ids: Sequence[int] | None = None, *, actor_admin_id: int | None
) -> int:
    """Failed outbox rows (``ids``, or every one) back to pending with their attempts
    reset; returns how many."""
    n = await repo.retry_outbox(session, ids)
    if n:
        audit.record(
            session,
            "queue.outbox.retry",
            actor_admin_id=actor_admin_id,
            rows=n,
            ids=list(ids) if ids is not None else "all",
        )
    return n


async def requeue_units(
    session: AsyncSession, ids: Sequence[int] | None = None, *, actor_admin_id: int | None
) -> int:
    """Failed inbound units (``ids``, or every one) back to pending; returns how many."""
    n = await repo.requeue_units(session, ids)
    if n:
        audit.record(
            session,
            "queue.inbound.requeue",
            actor_admin_id=actor_admin_id,
            units=n,
            ids=list(ids) if ids is not None else "all",
        )
    return n


def jobs_retried(session: AsyncSession, n: int, *, actor_admin_id: int | None) -> None:
    """Dramatiq's dead jobs were sent back to their queues (the broker did it)."""
    if n:
        audit.record(session, "queue.jobs.retry", actor_admin_id=actor_admin_id, jobs=n)

"""Templates and rates, kept as data: Meta approves templates and changes prices outside
any release of ours, so both are rows an operator updates (``jastipin template set``,
``jastipin rates set``), never constants in code."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import MessageRate, MessageTemplate, OutboxMessage, utcnow

CATEGORIES = ("marketing", "utility", "authentication", "service")
PURPOSES = ("broadcast", "products", "summary", "reminder")


async def rates(
    session: AsyncSession, *, default: int, at: dt.datetime | None = None
) -> dict[str, int]:
    """Rupiah per message by category: the newest row valid at ``at``, else ``default``
    (``COST_ESTIMATOR_RATE``) for paid categories and 0 for service messages."""
    at = at or utcnow()
    table = {c: default for c in CATEGORIES}
    table["service"] = 0
    rows = (
        await session.execute(
            select(MessageRate)
            .where(MessageRate.valid_from <= at)
            .order_by(MessageRate.valid_from)
        )
    ).scalars()
    for row in rows:
        table[row.category] = row.rupiah  # later rows override earlier ones
    return table


async def set_rate(
    session: AsyncSession, category: str, rupiah: int, *, valid_from: dt.datetime | None = None
) -> MessageRate:
    if category not in CATEGORIES:
        raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")
    if rupiah < 0:
        raise ValueError("a rate cannot be negative")
    row = MessageRate(category=category, rupiah=rupiah, valid_from=valid_from or utcnow())
    session.add(row)
    return row


async def set_template(
    session: AsyncSession,
    purpose: str,
    *,
    locale: str,
    name: str,
    language: str,
    category: str,
) -> MessageTemplate:
    """Add or replace the template for (purpose, locale)."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}")
    if category not in ("marketing", "utility"):
        raise ValueError("category must be marketing or utility")
    row = (
        await session.execute(
            select(MessageTemplate).where(
                MessageTemplate.purpose == purpose, MessageTemplate.locale == locale
            )
        )
    ).scalar_one_or_none()
    if row is None:
        row = MessageTemplate(purpose=purpose, locale=locale)
        session.add(row)
    row.name, row.language, row.category = name, language, category
    return row


async def all_templates(session: AsyncSession) -> list[MessageTemplate]:
    stmt = select(MessageTemplate).order_by(MessageTemplate.purpose, MessageTemplate.locale)
    return list((await session.execute(stmt)).scalars())


async def meter_row(
    session: AsyncSession,
    outbox_id: int,
    *,
    sent_at: dt.datetime | None,
    category: str,
    billable: bool,
    default_rate: int,
) -> None:
    """Record what Meta says a sent message costs (the ``pricing`` of its status
    webhook): billable or not, by category, at the rate valid when it was sent. Meta's
    word replaces our estimate from the moment of sending."""
    cost = 0
    if billable:
        table = await rates(session, default=default_rate, at=sent_at)
        cost = table.get(category, default_rate)
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id)
        .values(billable=billable, cost=cost, category=category[:16])
    )


async def cost_by_day(session: AsyncSession, *, days: int = 7) -> list[tuple[str, str, int, int]]:
    """(day, category, billable messages, Rupiah) for the last ``days`` days."""
    from sqlalchemy import func

    from storage.models import OutboxMessage

    since = utcnow() - dt.timedelta(days=days)
    day = func.date(OutboxMessage.sent_at)
    stmt = (
        select(
            day,
            OutboxMessage.category,
            func.count(),
            func.coalesce(func.sum(OutboxMessage.cost), 0),
        )
        .where(OutboxMessage.sent_at >= since, OutboxMessage.billable.is_(True))
        .group_by(day, OutboxMessage.category)
        .order_by(day, OutboxMessage.category)
    )
    return [(str(d), c, int(n), int(s)) for d, c, n, s in (await session.execute(stmt)).all()]

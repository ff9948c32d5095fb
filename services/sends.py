"""What a recipient of a proactive message (broadcast, notice, summary, reminder) gets.

Inside the 24-hour customer-service window that their last message opened: a free
session message, carrying the template as its ``fallback`` in case Meta answers 131047
(the window closed in between, or our clock and Meta's disagree). Outside it: the
approved template configured for that purpose, which is billed — or nothing, when the
send allows only free messages or no template is configured.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import MessageTemplate, User
from storage.repo import messaging
from storage.repo.statuses import RE_ENGAGEMENT

WINDOW = dt.timedelta(hours=24)

__all__ = ["RE_ENGAGEMENT", "Plan", "Templates", "plan", "template_payload"]

Mode = Literal["free", "template", "skip"]


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    mode: Mode
    payload: dict[str, Any] | None


def in_window(last_inbound_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Is a free-form message allowed ``now``: did the user write in the last
    :data:`WINDOW` (Meta's customer-service window)? Outside it only a template goes."""
    return last_inbound_at is not None and now - last_inbound_at < WINDOW


def template_param(value: str) -> str:
    """Meta refuses template parameters with new lines, tabs or more than four spaces in
    a row; lines become " · " and the length stays well under the body limit."""
    value = re.sub(r"\s*\n\s*", " · ", value.strip())
    value = re.sub(r"[\t ]+", " ", value)
    return value[:900] or "-"


def template_payload(template: MessageTemplate, params: list[str]) -> dict[str, Any]:
    return {
        "type": "template",
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "params": [template_param(p) for p in params],
    }


class Templates:
    """The templates of one purpose, loaded once per batch of recipients."""

    def __init__(self, rows: dict[str, MessageTemplate]) -> None:
        self.rows = rows

    @classmethod
    async def load(cls, session: AsyncSession, purpose: str) -> Templates:
        rows = {}
        for row in await messaging.all_templates(session):
            if row.purpose == purpose:
                rows[row.locale] = row
        return cls(rows)

    def pick(self, locale: str) -> MessageTemplate | None:
        """The buyer's language first, else any (better a message in the other language
        than none)."""
        return self.rows.get(locale) or next(iter(self.rows.values()), None)

    def __bool__(self) -> bool:
        return bool(self.rows)

    @property
    def category(self) -> str:
        """Meta's category of these templates (what a paid send costs), marketing when
        none is configured."""
        return next(iter(self.rows.values())).category if self.rows else "marketing"


def plan(
    user: User,
    message: dict[str, Any],
    *,
    templates: Templates,
    params: list[str],
    allow_paid: bool,
    now: dt.datetime,
) -> Plan:
    template = templates.pick(user.locale) if allow_paid else None
    if in_window(user.last_inbound_at, now):
        if template is None:
            return Plan("free", message)
        return Plan("free", {**message, "fallback": template_payload(template, params)})
    if template is not None:
        return Plan("template", template_payload(template, params))
    return Plan("skip", None)

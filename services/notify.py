"""Telling one person something now: outbox rows written in the caller's transaction,
in the recipient's language (what every service uses to tell someone). The automatic
notices to a trip's buyers — new products, summaries, reminders — are
``services/notices.py``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from locales import Translator
from services import replies
from storage.models import User
from storage.repo import outbox


def tell(session: AsyncSession, user: User, payload: replies.Payload, **row: Any) -> None:
    """Queue a message to ``user`` (sent after the transaction commits)."""
    outbox.queue(session, user.id, payload, **row)


async def recent(session: AsyncSession, user: User, n: int) -> list[dict[str, Any]]:
    """The payloads of the last ``n`` messages to ``user``, newest first, those queued in
    this transaction included (what a label typed may still answer, flows/labels.py)."""
    return await outbox.recent_payloads(session, user.id, n)


def say(session: AsyncSession, user: User, message: str, /, **params: Any) -> None:
    """Queue a catalogue text to ``user``, translated into their language."""
    tell(session, user, replies.text(Translator(user.locale)(message, **params)))


def translator(user: User) -> Translator:
    return Translator(user.locale)

"""Buyers' questions to the jastiper, relayed under a short reference (``Q-AB12``) so
that neither side ever sees the other's number, and answered with ``/reply``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services import notify
from services.errors import NotAllowed, NotFound
from storage.models import Jastiper, Trip, User
from storage.repo import audit, jastipers, questions, users
from storage.repo import trips as trips_repo

_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
TEXT_MAX = 1000
PER_DAY = dt.timedelta(hours=24)  # the window of the daily cap: rolling, no time zone


async def ask(
    session: AsyncSession,
    trip: Trip,
    buyer: User,
    text: str,
    *,
    now: dt.datetime,
    per_day: int = 0,
) -> str:
    """Pass the buyer's question to the trip's jastiper; returns its reference.

    Raises:
        NotAllowed: the buyer relayed ``per_day`` questions to this trip in the last 24
            hours already (0: no cap); the jastiper is not messaged.
    """
    if per_day > 0:
        asked = await questions.count_since(
            session, trip_id=trip.id, buyer_user_id=buyer.id, since=now - PER_DAY
        )
        if asked >= per_day:
            raise NotAllowed(
                _(
                    "Kamu sudah mengirim {max} pertanyaan untuk trip ini dalam 24 jam "
                    "terakhir, batas per hari. Jastiper akan menjawab yang sudah ada dulu "
                    "ya; pertanyaan baru bisa dikirim lagi besok."
                ),
                max=per_day,
            )
    ref = "Q-" + "".join(secrets.choice(_REF_ALPHABET) for _c in range(4))
    await questions.add(
        session,
        ref=ref,
        trip_id=trip.id,
        buyer_user_id=buyer.id,
        text=text[:TEXT_MAX],
        created_at=now,
    )
    owner = await jastipers.owner(session, trip.jastiper_id)
    if owner is not None:
        notify.say(
            session,
            owner,
            _("Pertanyaan {ref} dari {buyer} ({trip}):\n{text}\n\nBalas: /reply {ref} jawabanmu"),
            ref=ref,
            buyer=buyer.display_name or buyer.profile_name or "-",
            trip=trip.code,
            text=text[:TEXT_MAX],
        )
    return ref


@dataclasses.dataclass(frozen=True, slots=True)
class Answered:
    ref: str


async def answer(
    session: AsyncSession, jastiper: Jastiper, ref: str, text: str, now: dt.datetime
) -> Answered:
    """The jastiper's answer goes to the buyer who asked.

    Raises:
        NotFound: no such question in this jastiper's trips.
    """
    question = await questions.by_ref(session, ref)
    trip = await trips_repo.get(session, question.trip_id) if question else None
    buyer = await users.get_user(session, question.buyer_user_id) if question else None
    if question is None or trip is None or trip.jastiper_id != jastiper.id or buyer is None:
        raise NotFound(_("Pertanyaan {ref} tidak ditemukan."), ref=ref.upper()[:12])
    question.answered_at = now
    notify.say(
        session,
        buyer,
        _("Jawaban jastiper untuk pertanyaan {ref}:\n\u201c{question}\u201d\n\n{answer}"),
        ref=question.ref,
        question=question.text[:300],
        answer=text[:TEXT_MAX],
    )
    audit.record(
        session,
        "question.reply",
        actor_user_id=jastiper.user_id,
        trip_id=trip.id,
        ref=question.ref,
    )
    return Answered(question.ref)

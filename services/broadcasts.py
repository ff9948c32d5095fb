"""Broadcasts: the estimate a jastiper sees before sending, the confirmation, the fan-out
to every recipient once, and the report when it is done.

The fan-out is safe to run twice or to resume after a crash: every recipient gets a
delivery row under a unique (broadcast, recipient) key before anything is queued, and a
delivery becomes an outbox row exactly once, in the same transaction that marks it
queued. The outbox dispatcher then sends at the broadcast pace.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services import notices, notify, sends
from services.errors import InvalidInput, NotAllowed, NotFound
from storage import trace
from storage.models import Broadcast, BroadcastStatus, DeliveryStatus, Jastiper, Trip, User
from storage.repo import audit, jastipers, messaging, outbox
from storage.repo import broadcasts as repo
from storage.repo import trips as trips_repo

B, D = BroadcastStatus, DeliveryStatus
# A broadcast's allowed moves, one table (as orders have). A move made by one worker of
# many is one conditional update from the sources this table gives (``repo.move``).
MOVES: dict[str, frozenset[str]] = {
    B.DRAFT: frozenset({B.QUEUED, B.CANCELLED}),
    B.QUEUED: frozenset({B.DISPATCHED, B.SENDING}),
    B.DISPATCHED: frozenset({B.SENDING}),
    # a summary fans out again as more of its buyers come due
    B.SENDING: frozenset({B.SENDING, B.DONE}),
    B.DONE: frozenset(),
    B.CANCELLED: frozenset(),
}
# what the fan-out does with one delivery; Meta's reports then only move it forward
# (storage/repo/statuses.py)
DELIVERY_MOVES: dict[str, frozenset[str]] = {
    D.PENDING: frozenset({D.QUEUED}),
    D.QUEUED: frozenset({D.SKIPPED, D.SENT, D.FAILED, D.DELIVERED, D.READ}),
}
# confirmed and not finished: its progress still moves
LIVE = (B.QUEUED.value, B.DISPATCHED.value, B.SENDING.value)
SENT_STATES = (D.SENT.value, D.DELIVERED.value, D.READ.value)
# waiting to be queued or sent: not settled yet
OPEN_DELIVERIES = (D.PENDING.value, D.QUEUED.value)
SEGMENTS = ("all", "ordered", "noorder", "unpaid", "active")
TEXT_MAX = 1000
CHUNK = 500

KIND_TEXT = {
    "manual": _("broadcast"),
    "products": _("produk baru"),
    "summary": _("ringkasan"),
}
STATE_TEXT = {
    B.QUEUED.value: _("antre"),
    B.DISPATCHED.value: _("antre"),
    B.SENDING.value: _("mengirim"),
    B.DONE.value: _("selesai"),
    B.CANCELLED.value: _("batal"),
}
# Meta's codes a jastiper meets most, in words
FAILURE_TEXT = {
    131026: _("nomor tidak bisa menerima pesan WhatsApp"),
    131047: _("di luar 24 jam, tanpa template"),
    131050: _("pembeli mematikan pesan promosi"),
    131049: _("dibatasi WhatsApp agar pembeli tidak kebanyakan promosi"),
    130472: _("nomor pembeli sedang dalam eksperimen WhatsApp"),
    131000: _("gangguan di WhatsApp; bisa dicoba lagi"),
    130429: _("terlalu banyak pesan sekaligus (batas kecepatan WhatsApp)"),
    131048: _("dibatasi WhatsApp karena dianggap spam"),
    131056: _("terlalu banyak pesan ke pembeli yang sama dalam waktu singkat"),
    132001: _("template tidak ada atau belum disetujui"),
    100: _("isi pesan ditolak WhatsApp (parameter tidak valid)"),
    190: _("token akses WhatsApp kedaluwarsa atau salah"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Estimate:
    recipients: int
    free: int  # inside the 24-hour window their last message opened
    paid: int  # outside it: an approved template, billed
    cost: int  # Rupiah
    skipped: int = 0  # outside it with no template allowed or configured: not sent


def estimate(recipients: int, free: int, *, rate: int, paid_possible: bool = True) -> Estimate:
    """Reach and cost before sending, from the audience and how many of it are inside
    their window. ``paid_possible``: a template is configured and the broadcast may use
    it; otherwise those outside the window are skipped."""
    outside = recipients - free
    paid = outside if paid_possible else 0
    return Estimate(recipients, free, paid, paid * rate, skipped=outside - paid)


def split_segment(text: str) -> tuple[str, str]:
    """``#unpaid Jangan lupa bayar`` → (``unpaid``, the message); no tag → ``all``.

    Raises:
        InvalidInput: an unknown segment.
    """
    text = text.strip()
    if not text.startswith("#"):
        return "all", text
    first, _sep, rest = text.partition(" ")
    if first[1:].lower() not in SEGMENTS:
        raise InvalidInput(_("Segmen yang ada: #all, #ordered, #noorder, #unpaid, #active."))
    return first[1:].lower(), rest.strip()


def sources_of(to: str) -> tuple[str, ...]:
    """The statuses a broadcast may move to ``to`` from, read off :data:`MOVES`."""
    return tuple(sorted(str(src) for src, dests in MOVES.items() if to in dests))


def _move(row: Broadcast, to: str) -> None:
    """Move a broadcast this transaction holds (a draft, or one locked for its fan-out).

    Raises:
        NotAllowed: the table does not allow it from where it is.
    """
    if row.status not in sources_of(to):
        raise NotAllowed(_("Broadcast ini sudah diproses."))
    row.status = to


def check_text(text: str) -> None:
    """A broadcast's text fits in one message, whichever door it was typed in.

    Raises:
        InvalidInput: longer than :data:`TEXT_MAX`, naming the limit and its length.
    """
    if len(text) > TEXT_MAX:
        raise InvalidInput(
            _("Pesannya {n} karakter; paling banyak {max}. Persingkat lalu kirim lagi."),
            n=len(text),
            max=TEXT_MAX,
        )


async def draft(
    session: AsyncSession,
    trip: Trip,
    author: User,
    text: str,
    *,
    segment: str,
    default_rate: int,
    now: dt.datetime,
    actor_admin_id: int | None = None,
) -> tuple[Broadcast, Estimate]:
    """A broadcast draft with its estimate (reach, free, paid, cost); nothing is sent
    until it is confirmed. ``author`` is the trip's jastiper (from the admin panel too:
    the summary goes to them); ``actor_admin_id`` the admin who composed it there.

    Raises:
        InvalidInput: the text is longer than :data:`TEXT_MAX`.
    """
    check_text(text)
    est, category = await preview(
        session, trip, segment=segment, default_rate=default_rate, now=now
    )
    row = await repo.add(
        session,
        trip_id=trip.id,
        created_by=author.id,
        text=text,
        segment=segment,
        status=B.DRAFT.value,
        category=category,
        estimated_recipients=est.recipients,
        estimated_free=est.free,
        estimated_paid=est.paid,
        estimated_cost=est.cost,
    )
    audit.record(
        session,
        "broadcast.estimate",
        actor_user_id=None if actor_admin_id else author.id,
        actor_admin_id=actor_admin_id,
        trip_id=trip.id,
        broadcast=row.id,
        recipients=est.recipients,
    )
    return row, est


async def preview(
    session: AsyncSession, trip: Trip, *, segment: str, default_rate: int, now: dt.datetime
) -> tuple[Estimate, str]:
    """The estimate of a broadcast to ``segment`` of the trip, without drafting it; and
    the template category it would use outside the window."""
    templates = await sends.Templates.load(session, "broadcast")
    category = templates.category
    total, free = await repo.audience_counts(
        session,
        trip.id,
        segment,
        marketing=category == "marketing",
        window_opened_after=now - sends.WINDOW,
    )
    table = await messaging.rates(session, default=default_rate)
    return estimate(total, free, rate=table[category], paid_possible=bool(templates)), category


async def owned_draft(
    session: AsyncSession, jastiper: Jastiper | None, broadcast_id: int
) -> tuple[Broadcast, Trip]:
    """A draft of one of the jastiper's trips (``None``: of any trip — an admin).

    Raises:
        NotFound: not theirs, or no such broadcast.
        NotAllowed: it was confirmed or cancelled already.
    """
    row = await repo.get(session, broadcast_id)
    trip = await trips_repo.get(session, row.trip_id) if row else None
    if row is None or trip is None or (jastiper is not None and trip.jastiper_id != jastiper.id):
        raise NotFound(_("Broadcast itu tidak ditemukan."))
    if row.status != B.DRAFT:
        raise NotAllowed(_("Broadcast ini sudah diproses."))
    return row, trip


def confirm(
    session: AsyncSession,
    row: Broadcast,
    *,
    paid: bool,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
) -> int:
    """Queue the draft (``paid`` False: only those inside the free window); returns the
    recipients it is meant for. The scheduler hands it to the fan-out actor."""
    _move(row, B.QUEUED)
    row.allow_paid = paid
    row.request_id = trace.request_id()  # its fan-out job logs the same id
    audit.record(
        session,
        "broadcast.confirm",
        actor_user_id=actor_user_id,
        actor_admin_id=actor_admin_id,
        trip_id=row.trip_id,
        broadcast=row.id,
        paid=paid,
    )
    return row.estimated_recipients if paid else row.estimated_free


def cancel(
    session: AsyncSession,
    row: Broadcast,
    *,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
) -> None:
    _move(row, B.CANCELLED)
    audit.record(
        session,
        "broadcast.cancel",
        actor_user_id=actor_user_id,
        actor_admin_id=actor_admin_id,
        trip_id=row.trip_id,
        broadcast=row.id,
    )


# --- fan-out ---------------------------------------------------------------------------------


async def start_fan_out(session: AsyncSession, broadcast_id: int, now: dt.datetime) -> bool:
    """Create a pending delivery per recipient due now (idempotent); False when the
    broadcast is not one to send. A broadcast already ``sending`` got its deliveries in
    the transaction that made it so: a second run (a retried or re-dispatched message)
    adds nobody — only a summary takes in the buyers who came due since."""
    broadcast = await repo.lock(session, broadcast_id)
    if broadcast is None or broadcast.status not in sources_of(B.SENDING):
        return False
    if broadcast.status != B.SENDING or broadcast.kind == "summary":
        rows = await repo.audience_rows(
            session,
            broadcast.trip_id,
            broadcast.segment,
            marketing=broadcast.category == "marketing",
        )
        if broadcast.kind == "summary":
            # the scheduler hands it over again only when somebody more comes due
            next_run = notices.summary_next_run(broadcast, (r.last_inbound_at for r in rows), now)
            broadcast.data = {
                **(broadcast.data or {}),
                "next_run": next_run.isoformat() if next_run else None,
            }
            rows = [r for r in rows if notices.summary_due(broadcast, r.last_inbound_at, now)]
        await repo.add_deliveries(session, broadcast_id, [r.id for r in rows])
    _move(broadcast, B.SENDING)
    broadcast.progress_at = now
    return True


async def due_for_dispatch(
    session: AsyncSession, now: dt.datetime
) -> list[tuple[int, str, str | None]]:
    """(id, status, the request that confirmed it) of the broadcasts to hand to the actor
    now: confirmed ones, and summaries once per moment a buyer comes due
    (``notices.summary_run_due``)."""
    return [
        (b.id, b.status, b.request_id)
        for b in await repo.due_for_dispatch(session)
        if b.kind != "summary" or b.status == B.QUEUED or notices.summary_run_due(b, now)
    ]


async def mark_dispatched(session: AsyncSession, broadcast_id: int, now: dt.datetime) -> bool:
    """A confirmed broadcast was handed to the fan-out actor (a conditional move: only
    from where :data:`MOVES` allows)."""
    return await repo.move(
        session, broadcast_id, sources_of(B.DISPATCHED), B.DISPATCHED, progress_at=now
    )


async def queue_batch(
    session: AsyncSession, broadcast_id: int, now: dt.datetime, *, limit: int = CHUNK
) -> int | None:
    """Turn up to ``limit`` pending deliveries into outbox rows (or skip them, with the
    reason); returns how many were queued, or None when none was pending. Each delivery
    is claimed with a conditional update first: of two fan-outs of the same broadcast
    running at once (a re-dispatched message beside the original), only one turns it
    into an outbox row."""
    batch = await repo.pending_deliveries(session, broadcast_id, limit)
    broadcast = await repo.get(session, broadcast_id)
    trip = await trips_repo.get(session, broadcast.trip_id) if broadcast else None
    if not batch or broadcast is None or trip is None:
        return None
    won = await repo.claim_pending(session, [delivery.id for delivery, _user in batch])
    batch = [(delivery, user) for delivery, user in batch if delivery.id in won]
    if not batch:
        return 0  # another fan-out queued them meanwhile
    render = notices.RENDERERS[broadcast.kind]
    templates = await sends.Templates.load(session, notices.PURPOSE[broadcast.kind])
    planned = []
    sends_out: list[dict[str, Any]] = []
    for delivery, user in batch:
        if user.opted_out_at is not None or (
            user.marketing_opted_out_at is not None and broadcast.category == "marketing"
        ):
            delivery.status = D.SKIPPED.value  # opted out after the estimate
            continue
        rendered = await render(session, broadcast, trip, user)
        if rendered is None:
            delivery.status = D.SKIPPED.value  # nothing for this recipient
            continue
        message, params = rendered
        plan = sends.plan(
            user,
            message,
            templates=templates,
            params=params,
            allow_paid=broadcast.allow_paid,
            now=now,
        )
        if plan.payload is None:
            # outside the 24-hour window and no template may (or can) go
            delivery.status = D.SKIPPED.value
            delivery.error_code = sends.RE_ENGAGEMENT
            continue
        sends_out.append(
            {
                "user_id": user.id,
                "payload": plan.payload,
                "broadcast_id": broadcast_id,
                "category": str(plan.payload.get("category", "service")),
            }
        )
        planned.append((delivery, plan.mode))
    ids = await outbox.queue_numbered(session, sends_out)  # one multi-row insert
    for (delivery, mode), outbox_id in zip(planned, ids, strict=True):
        delivery.outbox_id = outbox_id
        delivery.mode = mode
        delivery.status = D.QUEUED.value
    broadcast.progress_at = now
    return len(planned)


async def finish_if_done(session: AsyncSession, broadcast_id: int, now: dt.datetime) -> bool:
    """When no delivery is waiting any more: mark the broadcast done, meter its cost and
    tell the jastiper the summary (once, however many workers get here)."""
    broadcast = await repo.get(session, broadcast_id)
    if broadcast is None or broadcast.status != B.SENDING:
        return False
    if await repo.has_open_deliveries(session, broadcast_id):
        return False
    if notices.summary_pending(broadcast, now):
        return False  # more buyers come due until the evening hour
    tally = await repo.counts(session, broadcast_id)
    cost = await repo.metered_cost(session, broadcast_id)
    done = sources_of(B.DONE)
    if not await repo.move(
        session, broadcast_id, done, B.DONE, finished_at=now, metered_cost=cost
    ):
        return False
    await session.refresh(broadcast)
    if broadcast.kind != "manual":
        return True  # automatic notices: nobody asked, nobody needs the summary
    trip = await trips_repo.get(session, broadcast.trip_id)
    owner = await jastipers.owner(session, trip.jastiper_id) if trip else None
    if owner is not None and trip is not None:
        t = notify.translator(owner)
        notify.say(
            session,
            owner,
            _(
                "Broadcast {code} selesai: {sent} terkirim, {failed} gagal, "
                "{skipped} dilewati (berhenti langganan atau di luar 24 jam). "
                "Biaya: {cost}."
            ),
            code=trip.code,
            sent=sum(tally.get(k, 0) for k in SENT_STATES),
            failed=tally.get(D.FAILED, 0),
            skipped=tally.get(D.SKIPPED, 0),
            cost=t.money(broadcast.metered_cost),
        )
    return True


# --- reports ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    broadcast: Broadcast
    trip: Trip
    tally: dict[str, int]
    cost: int
    reasons: list[tuple[int | None, int]]

    @property
    def percent(self) -> int:
        total = sum(self.tally.values())
        settled = total - sum(self.tally.get(k, 0) for k in OPEN_DELIVERIES)
        return 100 * settled // total if total else 0


async def progress(session: AsyncSession, broadcast: Broadcast, trip: Trip) -> Progress:
    """The broadcast with its delivery counts, metered cost and failure reasons."""
    return Progress(
        broadcast,
        trip,
        await repo.counts(session, broadcast.id),
        await repo.metered_cost(session, broadcast.id),
        await repo.failure_reasons(session, broadcast.id),
    )


async def latest(session: AsyncSession, jastiper: Jastiper, *, limit: int = 3) -> list[Progress]:
    """The jastiper's latest broadcasts with their delivery counts, cost and reasons."""
    return [
        await progress(session, broadcast, trip)
        for broadcast, trip in await repo.latest_of_jastiper(session, jastiper.id, limit=limit)
    ]


async def report(session: AsyncSession, broadcast_id: int) -> Progress | None:
    """One broadcast with its delivery counts, metered cost and failure reasons."""
    broadcast = await repo.get(session, broadcast_id)
    trip = await trips_repo.get(session, broadcast.trip_id) if broadcast else None
    if broadcast is None or trip is None:
        return None
    return await progress(session, broadcast, trip)

"""Automatic notices to a trip's buyers: new products (gathered), scheduled summaries and
payment reminders — and how each kind of broadcast reads for one recipient. (A single
message to one person, written by any service, is ``services/notify.py``.)

New products and summaries are broadcasts of their own kind, so they share the
broadcast machinery: a delivery row per recipient under a unique key, the pace, the
24-hour window, status tracking and cost. They are free-only (inside the window) unless
the operator configured a template for that purpose — then those outside the window get
the template, billed, and metered like every paid send. Each job is idempotent: two
schedulers make the same broadcast once (``dedupe_key``) and remind an order once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from locales import Translator, _
from services import notify, replies, sends
from storage import trace
from storage.models import Broadcast, OrderGroup, Trip, TripStatus, User
from storage.repo import broadcasts as broadcasts_repo
from storage.repo import orders as orders_repo
from storage.repo import products as products_repo
from storage.repo import trips as trips_repo

JAKARTA = ZoneInfo("Asia/Jakarta")
PRODUCT_QUIET = dt.timedelta(minutes=3)  # the jastiper stopped adding: announce the lot
SUMMARY_HOUR = 19  # WIB: evening, when buyers read (and their window is likeliest open)
# From this hour on the day's summary exists: a buyer whose 24-hour window would close
# before the evening gets theirs just before it does (free), the rest at SUMMARY_HOUR.
SUMMARY_PREPARE_HOUR = 7
WINDOW_CLOSING = dt.timedelta(minutes=30)
SUMMARY_WEEKDAY = 6  # Sunday, for weekly summaries
REMIND_BEFORE = dt.timedelta(hours=6)
SHOWN = 5  # products named in a notice; the rest are counted

Rendered = tuple[dict[str, Any], list[str]]
Render = Callable[[AsyncSession, Broadcast, Trip, User], Awaitable[Rendered | None]]


# --- how each kind reads for one recipient ----------------------------------------------------


async def render_manual(
    session: AsyncSession, broadcast: Broadcast, trip: Trip, user: User
) -> Rendered:
    """The jastiper's own words under the trip's title."""
    return replies.text(f"📢 *{trip.title}*\n{broadcast.text}"), [trip.title, broadcast.text]


async def render_products(
    session: AsyncSession, broadcast: Broadcast, trip: Trip, user: User
) -> Rendered | None:
    """The products added since the last notice (the first few named)."""
    ids = (broadcast.data or {}).get("product_ids") or []
    products = await products_repo.visible_by_ids(session, ids)
    if not products:
        return None
    t = Translator(user.locale)
    lines = [f"• {p.name} — {t.money(p.price)}" for p in products[:SHOWN]]
    if len(products) > SHOWN:
        lines.append(t(_("…dan {n} lainnya"), n=len(products) - SHOWN))
    text = t(
        _("🆕 Produk baru di *{title}*:\n{lines}\n\nKetik KATALOG untuk lihat dan pesan."),
        title=trip.title,
        lines="\n".join(lines),
    )
    return replies.text(text), [trip.title, ", ".join(p.name for p in products[:SHOWN])]


async def render_summary(
    session: AsyncSession, broadcast: Broadcast, trip: Trip, user: User
) -> Rendered | None:
    """What this buyer should know: new products, the trip closing soon, what they still
    have to pay. Nothing to say: no message."""
    t = Translator(user.locale)
    since = dt.datetime.fromisoformat((broadcast.data or {})["since"])
    lines: list[str] = []
    new = await products_repo.names_since(session, trip.id, since)
    if new:
        names = ", ".join(new[:3]) + ("…" if len(new) > 3 else "")
        lines.append(t(_("🆕 {n} produk baru: {names}"), n=len(new), names=names))
    if trip.closes_on is not None:
        today = broadcast.created_at.astimezone(JAKARTA).date()
        if 0 <= (trip.closes_on - today).days <= 3:
            lines.append(t(_("⏳ Pesanan ditutup {date}"), date=t.date(trip.closes_on)))
    owed = await orders_repo.user_orders_in(
        session, user.id, OrderGroup.OPEN_FOR_PAYMENT, trip_id=trip.id
    )
    if owed:
        lines.append(
            t(
                _("💳 Belum dibayar: {amount} ({codes})"),
                amount=t.money(sum(o.amount_due for o in owed)),
                codes=", ".join(o.code for o in owed),
            )
        )
    if not lines:
        return None
    text = t(
        _("🗓️ Ringkasan *{title}*\n{lines}\n\nKetik KATALOG atau PESANAN."),
        title=trip.title,
        lines="\n".join(lines),
    )
    return replies.text(text), [trip.title, " · ".join(lines)]


# every kind of broadcast: how it reads, and the purpose its templates are configured for
RENDERERS: dict[str, Render] = {
    "manual": render_manual,
    "products": render_products,
    "summary": render_summary,
}
PURPOSE = {"manual": "broadcast", "products": "products", "summary": "summary"}


# --- new products ------------------------------------------------------------------------


async def announce_new_products(
    session: AsyncSession, now: dt.datetime, *, quiet: dt.timedelta = PRODUCT_QUIET
) -> int:
    """One notice per trip for the products added since the last one, once the jastiper
    has not added any for ``quiet`` (ten photos in a row become one message)."""
    made = 0
    for trip_id, newest, last_id in await products_repo.unannounced_by_trip(session):
        if now - newest < quiet:
            continue  # still adding
        ids = await products_repo.unannounced_ids(session, trip_id, last_id)
        made += await _queue(
            session,
            trip_id,
            now,
            kind="products",
            key=f"products:{trip_id}:{last_id}",
            data={"product_ids": ids},
        )
        await products_repo.mark_announced(session, ids, now)
    return made


# --- summaries ---------------------------------------------------------------------------


def summary_period(trip: Trip, now: dt.datetime) -> str | None:
    """The period a summary for this trip is due for now, or None (not yet, or off)."""
    local = now.astimezone(JAKARTA)
    if trip.summary_every == "daily" and local.hour >= SUMMARY_PREPARE_HOUR:
        return local.date().isoformat()
    if (
        trip.summary_every == "weekly"
        and local.weekday() == SUMMARY_WEEKDAY
        and local.hour >= SUMMARY_PREPARE_HOUR
    ):
        year, week, _day = local.isocalendar()
        return f"{year}-W{week:02d}"
    return None


async def schedule_summaries(session: AsyncSession, now: dt.datetime) -> int:
    """A summary broadcast per open trip and period (once, however often this runs)."""
    made = 0
    for trip in await trips_repo.with_status(session, TripStatus.OPEN.value):
        period = summary_period(trip, now)
        if period is None:
            continue
        days = 1 if trip.summary_every == "daily" else 7
        evening = now.astimezone(JAKARTA).replace(
            hour=SUMMARY_HOUR, minute=0, second=0, microsecond=0
        )
        made += await _queue(
            session,
            trip.id,
            now,
            kind="summary",
            key=f"summary:{trip.id}:{period}",
            data={
                "since": (evening - dt.timedelta(days=days)).isoformat(),
                "deliver_at": evening.astimezone(dt.UTC).isoformat(),
            },
        )
    return made


def summary_due(
    broadcast: Broadcast, last_inbound_at: dt.datetime | None, now: dt.datetime
) -> bool:
    """Is a buyer's summary due now, given when they last wrote? At the evening hour for
    everyone; earlier for a buyer whose window closes before then, within the next half
    hour (so it is free and says what is true that day)."""
    deliver_at = dt.datetime.fromisoformat((broadcast.data or {})["deliver_at"])
    if now >= deliver_at:
        return True
    if last_inbound_at is None:
        return False
    closes = last_inbound_at + sends.WINDOW
    return now < closes <= min(deliver_at, now + WINDOW_CLOSING)


def summary_next_run(
    broadcast: Broadcast, last_inbound: Iterable[dt.datetime | None], now: dt.datetime
) -> dt.datetime | None:
    """When the summary's fan-out has something to do again, given when each buyer last
    wrote: the first moment another buyer comes due (see :func:`summary_due`), else the
    evening hour; None once that has passed. A buyer who writes again only comes due
    later, and one who joins now not before the evening hour, so nobody is missed."""
    deliver_at = dt.datetime.fromisoformat((broadcast.data or {})["deliver_at"])
    if now >= deliver_at:
        return None
    soonest = deliver_at
    for last in last_inbound:
        if last is None:
            continue
        closes = last + sends.WINDOW
        comes_due = closes - WINDOW_CLOSING
        if now < comes_due and closes <= deliver_at:
            soonest = min(soonest, comes_due)
    return soonest


def summary_run_due(broadcast: Broadcast, now: dt.datetime) -> bool:
    """Should the scheduler hand this summary to the actor now? Before its first
    fan-out, and then once per moment :func:`summary_next_run` named: not on every
    pass from morning to evening."""
    data = broadcast.data or {}
    if "next_run" not in data:
        return True
    if data["next_run"] is None:
        return False  # its evening run is done: nobody more comes due
    when = min(data["next_run"], data["deliver_at"], key=dt.datetime.fromisoformat)
    return now >= dt.datetime.fromisoformat(when)


def summary_pending(broadcast: Broadcast, now: dt.datetime) -> bool:
    """Before the evening hour a summary is not finished: more buyers come due."""
    return broadcast.kind == "summary" and now < dt.datetime.fromisoformat(
        (broadcast.data or {})["deliver_at"]
    )


async def _queue(
    session: AsyncSession,
    trip_id: int,
    now: dt.datetime,
    *,
    kind: str,
    key: str,
    data: dict[str, Any],
) -> int:
    """A queued broadcast of ``kind`` to every subscribed participant, unless one with
    this key exists. Free-only unless a template is configured for it."""
    templates = await sends.Templates.load(session, PURPOSE[kind])
    return await broadcasts_repo.add_once(
        session,
        trip_id=trip_id,
        text=kind,
        segment="all",
        status="queued",
        kind=kind,
        category=templates.category,
        allow_paid=bool(templates),
        dedupe_key=key,
        data=data,
        request_id=trace.request_id(),  # the scheduler's run that made it (bot/jobs.py)
        created_at=now,
        estimated_recipients=0,
        estimated_free=0,
        estimated_paid=0,
        estimated_cost=0,
        metered_cost=0,
    )


# --- payment reminders -------------------------------------------------------------------


async def remind_unpaid(
    session: AsyncSession, now: dt.datetime, *, before: dt.timedelta = REMIND_BEFORE
) -> int:
    """Tell each buyer once, ``before`` their deadline, that an order is still unpaid.

    Inside the window a free message; outside it the ``reminder`` template (utility) when
    one is configured; otherwise nothing can reach them, and the order is still marked,
    so no one retries a send that cannot go."""
    rows = await orders_repo.reminders_due(
        session, OrderGroup.OPEN_FOR_PAYMENT, now=now, until=now + before
    )
    templates = await sends.Templates.load(session, "reminder")
    sent = 0
    for order, user in rows:
        order.reminded_at = now
        t = Translator(user.locale)
        amount, deadline = t.money(order.amount_due), t.datetime(order.payment_deadline)
        text = t(
            _(
                "⏰ Pesanan {code} belum dibayar. Transfer {amount} sebelum {deadline} ya, "
                "lalu kirim foto buktinya di sini. Ketik PESANAN untuk detailnya."
            ),
            code=order.code,
            amount=amount,
            deadline=deadline,
        )
        plan = sends.plan(
            user,
            replies.text(text),
            templates=templates,
            params=[order.code, amount, deadline],
            allow_paid=True,
            now=now,
        )
        if plan.payload is None:
            continue
        notify.tell(
            session, user, plan.payload, category=str(plan.payload.get("category", "service"))
        )
        sent += 1
    return sent

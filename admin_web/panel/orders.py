"""``/admin/orders``: find an order (trip, status, dates, order code or buyer name) and
one order with its items, totals, proofs, address and history; status moves through
``services.orders.advance`` only (the table of allowed moves; the buyer is told as
when the jastiper moves it in chat)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from admin_web.keys import DB
from admin_web.panel import words
from admin_web.panel.render import current_admin
from admin_web.shell import orders as shell_orders
from admin_web.shell import security
from admin_web.shell.errors import refusal_shows
from admin_web.shell.render import (
    buyer_name,
    outbox_notify,
    redirect,
    render,
    translator,
)
from locales import JAKARTA, Translator, _
from services import orders as orders_service
from services import panel as panel_service
from services import trips as trips_service
from services.payments import PROOF_TEXT
from storage.models import Order, OrderGroup, OrderStatus

PAGE = 50
# a name search decrypts the names of at most this many of the newest orders that match
# the other filters (names are sealed: no SQL can compare them)
NAME_CANDIDATES = 500
CODE_LIKE = re.compile(r"^[A-Za-z]{2,3}-[A-Za-z0-9]{1,12}$")


def proof_link(request: web.Request, proof_id: int) -> str:
    """The proof's image behind a signed link that expires (never a bare id)."""
    what = f"proof:{proof_id}"
    return f"/admin/proofs/{proof_id}/image?{security.signed_query(request, what)}"


def _day(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _start_of(day: dt.date) -> dt.datetime:
    """Midnight in Jakarta (the dates an admin types are WIB days)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(JAKARTA)).astimezone(dt.UTC)


async def trip_filter(
    session: Any, t: Translator, code: str, notes: list[str]
) -> tuple[int | None, bool]:
    """The trip a list's filter names: (its id, or None when none is named; True when
    the one named does not exist, which a note then says)."""
    if not code:
        return None, False
    trip = await trips_service.by_code(session, code)
    if trip is None:
        notes.append(t(_("Trip {code} tidak ditemukan."), code=code))
        return None, True
    return trip.id, False


async def order_list(request: web.Request) -> web.StreamResponse:
    t = translator(request)
    q = request.query
    trip_code = q.get("trip", "").strip().upper()[:16]
    status = q.get("status", "")
    raw_from, raw_to = q.get("from", "").strip(), q.get("to", "").strip()
    search = " ".join(q.get("q", "").split())[:100]
    notes: list[str] = []
    day_from, day_to = _day(raw_from), _day(raw_to)
    if (raw_from and day_from is None) or (raw_to and day_to is None):
        notes.append(t(_("Tanggal ditulis seperti 2026-12-31; filter tanggal diabaikan.")))
    statuses = (status,) if status in {s.value for s in OrderStatus} else None
    rows: list[tuple[Any, Any, Any]] = []
    async with request.config_dict[DB].read() as session:
        trip_id, missing_trip = await trip_filter(session, t, trip_code, notes)
        if not missing_trip:
            by_code = bool(search) and CODE_LIKE.match(search) is not None
            found = await panel_service.find_orders(
                session,
                trip_id=trip_id,
                statuses=statuses,
                since=_start_of(day_from) if day_from else None,
                until=_start_of(day_to + dt.timedelta(days=1)) if day_to else None,
                code=search if by_code else None,
                limit=NAME_CANDIDATES if search and not by_code else PAGE,
            )
            if search and not by_code:
                needle = search.casefold()
                found = [r for r in found if needle in buyer_name(r[2]).casefold()][:PAGE]
                if len(found) < PAGE:
                    notes.append(
                        t(
                            _("Pencarian nama melihat {n} pesanan terbaru yang cocok filter."),
                            n=NAME_CANDIDATES,
                        )
                    )
            rows = [(o, tr, buyer_name(u)) for o, tr, u in found]
    return render(
        request,
        "orders.html",
        {
            "rows": rows,
            "notes": notes,
            "filters": {
                "trip": trip_code,
                "status": status,
                "from": raw_from,
                "to": raw_to,
                "q": search,
            },
            "statuses": [(s.value, t(orders_service.status_label(s))) for s in OrderStatus],
            "status_label": lambda s: t(orders_service.status_label(s)),
        },
        active="admin.orders",
    )


async def _load(request: web.Request, session: Any) -> Order:
    order = await panel_service.order(session, request.match_info["code"][:20])
    if order is None:
        raise web.HTTPNotFound(text="Order not found")
    return order


async def order_detail(request: web.Request, *, error: str = "") -> web.StreamResponse:
    t = translator(request)
    async with request.config_dict[DB].read() as session:
        order = await _load(request, session)
        detail = await panel_service.order_detail(session, order)
    return render(
        request,
        "order.html",
        {
            **shell_orders.order_values(
                request,
                order,
                detail.trip,
                detail.buyer,
                detail.proofs,
                proof_link,
                reused=detail.reused,
                error=error,
            ),
            "history": detail.history,
            "moves": [
                (to, t(orders_service.status_label(to)))
                for to in orders_service.ADMIN_MOVES
                if order.status in orders_service.sources_of(to)
            ],
            "next_move": _next_move(order.status),
            "proof_label": lambda s: t(PROOF_TEXT.get(s) or s),
            "status_label": lambda s: t(orders_service.status_label(s)),
            "action_text": lambda code: words.action(t, code),
            "proof_kind": lambda kind: words.label(t, words.PROOF_KINDS, kind),
        },
        active="admin.orders",
        status=409 if error else 200,
    )


def _next_move(status: str) -> str:
    """The status change the form starts on: the next move of the order's road, or
    none for an unpaid order (marking it paid is a choice, never a default)."""
    if status in OrderGroup.AWAITING_MONEY:
        return ""
    for to in orders_service.ADMIN_MOVES:
        if status in orders_service.sources_of(to):
            return to
    return ""


async def order_page(request: web.Request) -> web.StreamResponse:
    return await order_detail(request)


async def order_move(request: web.Request) -> web.StreamResponse:
    """``POST /admin/orders/<code>/move``: ``to`` one of the allowed next statuses
    (``tracking`` for shipped)."""
    t = translator(request)
    admin = current_admin(request)
    form = await request.post()
    to = str(form.get("to", ""))
    if to not in orders_service.ADMIN_MOVES:
        return await order_detail(request, error=t(_("Pilih status tujuan dari daftar.")))
    refusal_shows(request, lambda error: order_detail(request, error=error))
    async with request.config_dict[DB].transaction() as session:
        order = await _load(request, session)
        await orders_service.advance(
            session,
            order,
            to,
            actor_admin_id=admin.id,
            tracking=str(form.get("tracking", "")),
        )
    outbox_notify(request)
    return redirect(f"/admin/orders/{order.code}?done=moved")


def setup(panel: web.Application) -> None:
    panel.router.add_get("/orders", order_list, name="admin.orders")
    panel.router.add_get("/orders/{code}", order_page, name="admin.order")
    panel.router.add_post("/orders/{code}/move", order_move, name="admin.order_move")

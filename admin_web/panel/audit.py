"""``/admin/audit``: who did what — from chat (a WhatsApp user, ``actor_user_id``), the
web (an admin, ``actor_admin_id``) or the system (jobs, the command line: neither) —
filterable by action, trip, kind of actor and WIB dates, newest first, paginated."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

from aiohttp import web

from admin_web.keys import DB
from admin_web.panel import words
from admin_web.panel.orders import _day, _start_of, trip_filter
from admin_web.shell.render import buyer_name, render, translator
from locales import _
from services import panel as panel_service
from storage.models import AdminUser, AuditLog, Trip, User

PAGE = 50
ACTORS = {
    "chat": _("Chat (WhatsApp)"),
    "web": _("Panel admin"),
    "system": _("Sistem / baris perintah"),
}


async def audit_page(request: web.Request) -> web.StreamResponse:
    t = translator(request)
    q = request.query
    action = q.get("action", "").strip()[:64]
    trip_code = q.get("trip", "").strip().upper()[:16]
    actor = q.get("actor", "")
    actor = actor if actor in ACTORS else ""
    raw_from, raw_to = q.get("from", "").strip(), q.get("to", "").strip()
    try:
        page = max(1, min(int(q.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    notes: list[str] = []
    day_from, day_to = _day(raw_from), _day(raw_to)
    if (raw_from and day_from is None) or (raw_to and day_to is None):
        notes.append(t(_("Tanggal ditulis seperti 2026-12-31; filter tanggal diabaikan.")))
    rows: list[AuditLog] = []
    users: dict[int, User] = {}
    admins: dict[int, AdminUser] = {}
    trips: dict[int, Trip] = {}
    entries: list[dict[str, Any]] = []
    async with request.config_dict[DB].read() as session:
        actions = await panel_service.audit_actions(session)
        trip_id, missing_trip = await trip_filter(session, t, trip_code, notes)
        if not missing_trip:
            found = await panel_service.audit_page(
                session,
                action=action or None,
                trip_id=trip_id,
                actor=actor or None,
                since=_start_of(day_from) if day_from else None,
                until=_start_of(day_to + dt.timedelta(days=1)) if day_to else None,
                offset=(page - 1) * PAGE,
                limit=PAGE + 1,
            )
            rows, users, admins, trips = found.rows, found.users, found.admins, found.trips
    for row in rows[:PAGE]:
        if row.actor_admin_id is not None:
            admin = admins.get(row.actor_admin_id)
            kind, who = "web", admin.email if admin else f"admin #{row.actor_admin_id}"
        elif row.actor_user_id is not None:
            kind, who = "chat", buyer_name(users.get(row.actor_user_id))
        else:
            kind, who = "system", "-"
        trip = trips.get(row.trip_id) if row.trip_id else None
        entries.append(
            {
                "when": row.created_at,
                "kind": t(ACTORS[kind]),
                "who": who,
                "action": words.action(t, row.action),
                "code": row.action,
                "trip": trip.code if trip else "",
                "detail": words.details(t, row.detail),
            }
        )
    filters = {"action": action, "trip": trip_code, "actor": actor, "from": raw_from, "to": raw_to}
    kept = {k: v for k, v in filters.items() if v}
    return render(
        request,
        "audit.html",
        {
            "entries": entries,
            "notes": notes,
            "filters": filters,
            "actions": [(a, words.action(t, a)) for a in actions],
            "actors": [(k, t(v)) for k, v in ACTORS.items()],
            "page": page,
            "prev_link": _link({**kept, "page": page - 1}) if page > 1 else "",
            "next_link": _link({**kept, "page": page + 1}) if len(rows) > PAGE else "",
        },
        active="admin.audit",
    )


def _link(query: dict[str, Any]) -> str:
    return "/admin/audit?" + urllib.parse.urlencode(query)


def setup(panel: web.Application) -> None:
    panel.router.add_get("/audit", audit_page, name="admin.audit")

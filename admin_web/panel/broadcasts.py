"""``/admin/broadcasts``: every broadcast with its kind, trip, audience, progress,
delivered/read/failed counts (failures in words) and estimated vs metered cost; one
broadcast with a live progress bar (``progress.json``, polled by
``static/progress.js``; without JavaScript the page shows the value and a refresh
link); and composing one for a trip: text and segment → the estimate on a confirm step
→ *Kirim* / *Gratis saja* / *Batal*, through ``services.broadcasts`` exactly like the
jastiper's ``/broadcast`` and its buttons in chat (the scheduler dispatches it as
usual, and the summary goes to the trip's jastiper)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from admin_web.keys import DB, SETTINGS
from admin_web.panel.render import current_admin
from admin_web.shell.errors import refusal_shows
from admin_web.shell.render import outbox_notify, redirect, render, translator
from locales import Translator, _
from services import accounts
from services import broadcasts as service
from services import panel as panel_service
from services import trips as trips_service
from storage.models import BroadcastStatus, DeliveryStatus, utcnow

B, D = BroadcastStatus, DeliveryStatus

ACTIVE = "admin.broadcasts"
SEGMENT_TEXT = {
    "all": _("semua peserta"),
    "ordered": _("yang sudah memesan"),
    "noorder": _("yang belum memesan"),
    "unpaid": _("yang belum membayar"),
    "active": _("yang aktif 7 hari terakhir"),
}
DONE_TEXT = {
    B.QUEUED.value: _("Broadcast masuk antrean. Progresnya tampil di sini."),
    B.CANCELLED.value: _("Broadcast dibatalkan."),
}


def reason_text(t: Translator, code: int | None, title: str | None = None) -> str:
    """Meta's error code in words (the catalogue's texts), else the code itself."""
    words = service.FAILURE_TEXT.get(code) if code is not None else None
    if words:
        return t(words)
    if code is None:
        return t(_("tidak ada jawaban dari WhatsApp")) + (f" ({title})" if title else "")
    return t(_("kode {code}"), code=code) + (f": {title}" if title else "")


def figures(p: service.Progress) -> dict[str, Any]:
    """The numbers a progress bar and its counters show."""
    tally = p.tally
    total = sum(tally.values())
    queued = sum(tally.get(k, 0) for k in service.OPEN_DELIVERIES)
    return {
        "total": total,
        "queued": queued,
        "settled": total - queued,
        "sent": sum(tally.get(k, 0) for k in service.SENT_STATES),
        "delivered": tally.get(D.DELIVERED, 0) + tally.get(D.READ, 0),
        "read": tally.get(D.READ, 0),
        "failed": tally.get(D.FAILED, 0),
        "skipped": tally.get(D.SKIPPED, 0),
        "percent": p.percent,
    }


def _labels(t: Translator, p: service.Progress) -> dict[str, str]:
    b = p.broadcast
    return {
        "kind": t(service.KIND_TEXT.get(b.kind, service.KIND_TEXT["manual"])),
        "status": t(service.STATE_TEXT[b.status]) if b.status in service.STATE_TEXT else b.status,
        "segment": t(SEGMENT_TEXT[b.segment]) if b.segment in SEGMENT_TEXT else b.segment,
    }


def _row(t: Translator, p: service.Progress) -> dict[str, Any]:
    return {
        "b": p.broadcast,
        "trip": p.trip,
        "f": figures(p),
        "labels": _labels(t, p),
        "cost": p.cost,
        "reasons": [(reason_text(t, code), n) for code, n in p.reasons],
        "live": p.broadcast.status in service.LIVE,
    }


def _id(request: web.Request) -> int:
    raw = request.match_info["broadcast_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound(text="Broadcast not found")
    return int(raw)


async def broadcast_list(request: web.Request) -> web.StreamResponse:
    t = translator(request)
    before = request.query.get("before", "")
    async with request.config_dict[DB].read() as session:
        found = await panel_service.broadcasts(
            session, limit=50, before_id=int(before) if before.isdigit() else None
        )
        rows = []
        for broadcast, _trip in found:
            p = await service.report(session, broadcast.id)
            if p is not None:
                rows.append(_row(t, p))
    return render(
        request,
        "broadcasts.html",
        {"rows": rows, "older": rows[-1]["b"].id if len(rows) == 50 else None},
        active=ACTIVE,
    )


async def _report(request: web.Request) -> service.Progress:
    async with request.config_dict[DB].read() as session:
        p = await service.report(session, _id(request))
    if p is None:
        raise web.HTTPNotFound(text="Broadcast not found")
    return p


async def broadcast_page(request: web.Request) -> web.StreamResponse:
    t = translator(request)
    p = await _report(request)
    if p.broadcast.status == B.DRAFT:
        raise web.HTTPSeeOther(f"/admin/broadcasts/{p.broadcast.id}/confirm")
    done = request.query.get("done", "")
    return render(
        request,
        "broadcast.html",
        {"r": _row(t, p), "notice": t(DONE_TEXT[done]) if done in DONE_TEXT else ""},
        active=ACTIVE,
    )


async def progress_json(request: web.Request) -> web.StreamResponse:
    """What the progress bar shows, for ``static/progress.js`` (every 2 s while live)."""
    t = translator(request)
    p = await _report(request)
    row = _row(t, p)
    body = {
        "id": p.broadcast.id,
        "status": p.broadcast.status,
        "status_text": row["labels"]["status"],
        "live": row["live"],
        "cost": t.money(p.cost),
        **row["f"],
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


# --- composing -------------------------------------------------------------------------------


async def _compose(
    request: web.Request, *, error: str = "", values: dict[str, str] | None = None
) -> web.Response:
    t = translator(request)
    async with request.config_dict[DB].read() as session:
        trips = await panel_service.open_trips(session)
    form = values or {"trip": request.query.get("trip", "").upper()[:16], "segment": "all"}
    return render(
        request,
        "broadcast_new.html",
        {
            "trips": trips,
            "segments": [(s, t(SEGMENT_TEXT[s])) for s in service.SEGMENTS],
            "form": {"text": "", **form},
            "text_max": service.TEXT_MAX,
            "error": error,
        },
        active=ACTIVE,
        status=400 if error else 200,
    )


async def compose_page(request: web.Request) -> web.StreamResponse:
    return await _compose(request)


async def compose_submit(request: web.Request) -> web.StreamResponse:
    """``POST /admin/broadcasts/new``: a draft with its estimate (nothing is sent yet),
    then the confirm step. A refused form comes back with what was typed."""
    t = translator(request)
    admin = current_admin(request)
    form = await request.post()
    code = str(form.get("trip", "")).strip().upper()[:16]
    segment = str(form.get("segment", "all"))
    text = str(form.get("text", "")).strip()
    values = {"trip": code, "segment": segment, "text": text}
    if segment not in service.SEGMENTS:
        return await _compose(request, error=t(_("Pilih segmen dari daftar.")), values=values)
    if not text:
        return await _compose(request, error=t(_("Tulis pesannya dulu.")), values=values)
    refusal_shows(request, lambda error: _compose(request, error=error, values=values))
    try:
        async with request.config_dict[DB].transaction() as session:
            trip = await trips_service.by_code(session, code)
            if trip is None:
                raise _Refused(t(_("Trip {code} tidak ditemukan."), code=code or "-"))
            owner = await accounts.owner(session, trip.jastiper_id)
            if owner is None:
                raise _Refused(t(_("Trip {code} tidak ditemukan."), code=code))
            row, _est = await service.draft(
                session,
                trip,
                owner,
                text,
                segment=segment,
                default_rate=request.config_dict[SETTINGS].cost_estimator_rate,
                now=utcnow(),
                actor_admin_id=admin.id,
            )
    except _Refused as refused:
        return await _compose(request, error=str(refused), values=values)
    return redirect(f"/admin/broadcasts/{row.id}/confirm")


async def estimate_json(request: web.Request) -> web.StreamResponse:
    """``GET /admin/broadcasts/estimate.json?trip=&segment=``: the live estimate the
    compose form shows as its choices change (``static/estimate.js``); nothing is
    drafted. The confirm step shows the same figures without JavaScript."""
    t = translator(request)
    code = request.query.get("trip", "").strip().upper()[:16]
    segment = request.query.get("segment", "all")
    if segment not in service.SEGMENTS:
        return web.json_response({"error": t(_("Pilih segmen dari daftar."))}, status=400)
    async with request.config_dict[DB].read() as session:
        trip = await trips_service.by_code(session, code)
        if trip is None:
            message = t(_("Trip {code} tidak ditemukan."), code=code or "-")
            return web.json_response({"error": message}, status=404)
        est, _category = await service.preview(
            session,
            trip,
            segment=segment,
            default_rate=request.config_dict[SETTINGS].cost_estimator_rate,
            now=utcnow(),
        )
    return web.json_response(
        {
            "recipients": est.recipients,
            "free": est.free,
            "paid": est.paid,
            "skipped": est.skipped,
            "cost": t.money(est.cost),
        },
        headers={"Cache-Control": "no-store"},
    )


class _Refused(Exception):
    """A form refused before anything was written (the message is translated)."""


async def confirm_page(request: web.Request, *, error: str = "") -> web.StreamResponse:
    """The estimate of a draft, with *Kirim* / *Gratis saja* / *Batal*."""
    t = translator(request)
    p = await _report(request)
    b = p.broadcast
    if b.status != B.DRAFT and not error:
        raise web.HTTPSeeOther(f"/admin/broadcasts/{b.id}")
    return render(
        request,
        "broadcast_confirm.html",
        {
            "b": b,
            "trip": p.trip,
            "segment": _labels(t, p)["segment"],
            "skipped": b.estimated_recipients - b.estimated_free - b.estimated_paid,
            "error": error,
        },
        active=ACTIVE,
        status=409 if error else 200,
    )


async def confirm_submit(request: web.Request) -> web.StreamResponse:
    """``POST /admin/broadcasts/<id>/confirm``: ``action`` send (everyone, paid outside
    the window), free (only those inside it) or cancel — ``services.broadcasts`` as the
    chat buttons use it."""
    t = translator(request)
    admin = current_admin(request)
    form = await request.post()
    action = str(form.get("action", ""))
    if action not in ("send", "free", "cancel"):
        return await confirm_page(request, error=t(_("Pilih Kirim, Gratis saja atau Batal.")))
    refusal_shows(request, lambda error: confirm_page(request, error=error))
    async with request.config_dict[DB].transaction() as session:
        row, _trip = await service.owned_draft(session, None, _id(request))
        if action == "cancel":
            service.cancel(session, row, actor_admin_id=admin.id)
        else:
            service.confirm(session, row, paid=action == "send", actor_admin_id=admin.id)
    outbox_notify(request)
    done = "cancelled" if action == "cancel" else "queued"
    return redirect(f"/admin/broadcasts/{row.id}?done={done}")


def setup(panel: web.Application) -> None:
    panel.router.add_get("/broadcasts", broadcast_list, name="admin.broadcasts")
    panel.router.add_get("/broadcasts/new", compose_page, name="admin.broadcast_new")
    panel.router.add_post("/broadcasts/new", compose_submit, name="admin.broadcast_new")
    panel.router.add_get(
        "/broadcasts/estimate.json", estimate_json, name="admin.broadcast_estimate"
    )
    panel.router.add_get("/broadcasts/{broadcast_id}", broadcast_page, name="admin.broadcast")
    panel.router.add_get(
        "/broadcasts/{broadcast_id}/progress.json", progress_json, name="admin.broadcast_progress"
    )
    panel.router.add_get(
        "/broadcasts/{broadcast_id}/confirm", confirm_page, name="admin.broadcast_confirm"
    )
    panel.router.add_post(
        "/broadcasts/{broadcast_id}/confirm", confirm_submit, name="admin.broadcast_confirm"
    )

"""``/admin/jastipers``: pending ``DAFTAR JASTIPER`` requests to approve or decline, and
approved jastipers to suspend or reactivate — through ``services.accounts.decide``, which
tells the person in chat (approval reads the same as when ``jastipin jastiper add``
approves a pending request) and, on suspension, closes their open trips."""

from __future__ import annotations

from aiohttp import web

from admin_web.keys import DB
from admin_web.panel.render import current_admin
from admin_web.panel.trips import flash_of
from admin_web.shell.errors import refusal_shows
from admin_web.shell.render import buyer_name, outbox_notify, redirect, render, translator
from locales import _
from services import accounts
from services import panel as panel_service
from storage.models import JastiperStatus

STATUS_LABELS = {
    JastiperStatus.PENDING.value: _("Menunggu persetujuan"),
    JastiperStatus.APPROVED.value: _("Aktif"),
    JastiperStatus.SUSPENDED.value: _("Ditangguhkan"),
    JastiperStatus.REJECTED.value: _("Ditolak"),
}
# the order the groups are shown in
GROUPS = (
    JastiperStatus.PENDING.value,
    JastiperStatus.APPROVED.value,
    JastiperStatus.SUSPENDED.value,
    JastiperStatus.REJECTED.value,
)
DONE = {
    "jastiper_approve": _("Jastiper disetujui dan sudah dikabari."),
    "jastiper_decline": _("Permintaan ditolak; pemohon sudah dikabari."),
    "jastiper_suspend": _(
        "Jastiper ditangguhkan: trip yang masih buka ditutup dan ia sudah dikabari."
    ),
    "jastiper_reactivate": _("Jastiper aktif lagi dan sudah dikabari."),
}


async def jastiper_list(request: web.Request, *, error: str = "") -> web.StreamResponse:
    t = translator(request)
    async with request.config_dict[DB].read() as session:
        rows = await panel_service.jastipers_overview(session)
    groups = [
        (
            status,
            t(STATUS_LABELS[status]),
            [
                {
                    "id": j.id,
                    "name": j.name,
                    "chat_name": buyer_name(user),
                    "trips": trips,
                    "since": j.created_at,
                }
                for j, user, trips in rows
                if j.status == status
            ],
        )
        for status in GROUPS
    ]
    return render(
        request,
        "jastipers.html",
        {"groups": groups, "error": error, **flash_of(request, DONE)},
        active="admin.jastipers",
        status=409 if error else 200,
    )


async def jastiper_page(request: web.Request) -> web.StreamResponse:
    return await jastiper_list(request)


# the verdicts that take something away: the form's confirmation box must be ticked
CONFIRMED = frozenset({"decline", "suspend"})


async def jastiper_decide(request: web.Request) -> web.StreamResponse:
    """``POST /admin/jastipers/<id>/<verdict>``: approve, decline, suspend, reactivate."""
    t = translator(request)
    admin = current_admin(request)
    verdict = request.match_info["verdict"]
    if verdict not in accounts.VERDICTS:
        raise web.HTTPNotFound(text="No such action")
    form = await request.post()
    if verdict in CONFIRMED and form.get("confirm") != "1":  # destructive: asked first
        return await jastiper_list(request, error=t(_("Centang konfirmasinya dulu.")))
    try:
        jastiper_id = int(request.match_info["jastiper_id"])
    except ValueError:
        raise web.HTTPNotFound(text="Jastiper not found") from None
    refusal_shows(request, lambda error: jastiper_list(request, error=error))
    async with request.config_dict[DB].transaction() as session:
        jastiper = await panel_service.jastiper_to_decide(session, jastiper_id)
        if jastiper is None:
            raise web.HTTPNotFound(text="Jastiper not found")
        await accounts.decide(session, jastiper, verdict, actor_admin_id=admin.id)
    outbox_notify(request)
    return redirect(f"/admin/jastipers?done=jastiper_{verdict}")


def setup(panel: web.Application) -> None:
    panel.router.add_get("/jastipers", jastiper_page, name="admin.jastipers")
    panel.router.add_post(
        "/jastipers/{jastiper_id}/{verdict}", jastiper_decide, name="admin.jastiper_decide"
    )

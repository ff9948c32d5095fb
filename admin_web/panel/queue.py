"""``/admin/queue`` — what Bull Board is to the original design: the depth of each
Dramatiq queue (off the Redis broker, or the in-process stub broker), the outbox and the
inbound units by status, and the dead letters — outbox rows failed for good and inbound
units parked after their attempts — with their error in words. Retry one or all (a
failed send back to pending, attempts reset), requeue inbound units, and send Dramatiq's
dead jobs back to their queues. All through ``services.queues`` (no SQL here).

``ADMIN_ALLOWED_IPS`` (addresses/CIDRs): when set, ``/admin/queue`` and everything under
it answers 403 to any other client address (:func:`allowlist`, before the session gate).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from admin_web.keys import DB, QUEUE_DEPTHS, RETRY_DEAD_JOBS, SETTINGS
from admin_web.panel import words
from admin_web.panel.broadcasts import reason_text
from admin_web.panel.render import current_admin
from admin_web.shell import security
from admin_web.shell.door import TRANSLATOR
from admin_web.shell.render import message_page, outbox_notify, redirect, render, translator
from locales import Translator, _
from services import queues as service
from storage.models import InboundStatus, OutboxStatus

ACTIVE = "admin.queue"
PREFIX = "/admin/queue"
SHOWN = 100  # dead letters listed per kind
DONE_TEXT = {
    "retried": _("{n} pesan gagal masuk antrean kirim lagi."),
    "requeued": _("{n} pesan masuk dari WhatsApp diproses ulang."),
    "jobs": _("{n} tugas Dramatiq dikembalikan ke antreannya."),
}


def allowed(request: web.Request) -> bool:
    """No allowlist, or the client address is in one of its networks."""
    networks = request.config_dict[SETTINGS].admin_allowed_ips
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(security.client_address(request).strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


@web.middleware
async def allowlist(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """403 for ``/admin/queue…`` from an address outside ``ADMIN_ALLOWED_IPS``."""
    path = request.path
    if (path == PREFIX or path.startswith(PREFIX + "/")) and not allowed(request):
        t = request.get(TRANSLATOR) or translator(request)
        return message_page(
            request,
            t(_("Tidak diizinkan dari alamat ini")),
            t(_("Halaman antrean hanya bisa dibuka dari alamat yang diizinkan admin.")),
            status=403,
            back="/admin/",
        )
    return await handler(request)


def unit_error(t: Translator, attempts: int, error: str | None) -> str:
    """An inbound unit's failure: how often, and the kind of error only (its message
    may quote a buyer's words)."""
    kind = (error or "").split(":", 1)[0].strip()[:80] or t(_("tanpa keterangan"))
    return t(_("gagal diproses {n} kali ({kind})"), n=attempts, kind=kind)


async def queue_page(request: web.Request) -> web.StreamResponse:
    t = translator(request)
    depths_of = request.config_dict.get(QUEUE_DEPTHS)
    depths = await asyncio.to_thread(depths_of) if depths_of is not None else []
    async with request.config_dict[DB].read() as session:
        found = await service.overview(session, shown=SHOWN)
    outbox, inbound = found.outbox, found.inbound
    done = request.query.get("done", "")
    n = request.query.get("n", "0")
    return render(
        request,
        "queue.html",
        {
            "depths": depths,
            "outbox": [
                (s.value, words.label(t, words.OUTBOX, s.value), outbox.get(s.value, 0))
                for s in OutboxStatus
            ],
            "inbound": [
                (s.value, words.label(t, words.INBOUND, s.value), inbound.get(s.value, 0))
                for s in InboundStatus
            ],
            "failed_rows": [
                (
                    row,
                    (user.display_name or user.profile_name or "-") if user else "-",
                    reason_text(t, row.error_code, row.error_title),
                )
                for row, user in found.failed_sends
            ],
            "failed_units": [
                (u, unit_error(t, u.attempts, u.last_error)) for u in found.failed_units
            ],
            "notice": t(DONE_TEXT[done], n=int(n) if n.isdigit() else 0)
            if done in DONE_TEXT
            else "",
            "shown": SHOWN,
            "unit_kind": lambda kind: words.label(t, words.UNIT_KINDS, kind),
        },
        active=ACTIVE,
    )


def _id(request: web.Request, key: str) -> int:
    raw = request.match_info[key]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound(text="Not found")
    return int(raw)


async def retry_one(request: web.Request) -> web.StreamResponse:
    """``POST /admin/queue/outbox/<id>/retry``: this failed send goes again."""
    return await _retry(request, [_id(request, "outbox_id")])


async def retry_all(request: web.Request) -> web.StreamResponse:
    """``POST /admin/queue/outbox/retry``: every failed send goes again."""
    return await _retry(request, None)


async def _retry(request: web.Request, ids: list[int] | None) -> web.StreamResponse:
    admin = current_admin(request)
    async with request.config_dict[DB].transaction() as session:
        n = await service.retry_sends(session, ids, actor_admin_id=admin.id)
    outbox_notify(request)
    return redirect(f"{PREFIX}?done=retried&n={n}")


async def requeue_one(request: web.Request) -> web.StreamResponse:
    """``POST /admin/queue/inbound/<id>/requeue``: the sweeper processes it again."""
    return await _requeue(request, [_id(request, "unit_id")])


async def requeue_all(request: web.Request) -> web.StreamResponse:
    return await _requeue(request, None)


async def _requeue(request: web.Request, ids: list[int] | None) -> web.StreamResponse:
    admin = current_admin(request)
    async with request.config_dict[DB].transaction() as session:
        n = await service.requeue_units(session, ids, actor_admin_id=admin.id)
    return redirect(f"{PREFIX}?done=requeued&n={n}")


async def retry_jobs(request: web.Request) -> web.StreamResponse:
    """``POST /admin/queue/jobs/retry``: Dramatiq's dead jobs back to their queues (every
    actor is idempotent)."""
    admin = current_admin(request)
    retry = request.config_dict.get(RETRY_DEAD_JOBS)
    n = await asyncio.to_thread(retry) if retry is not None else 0
    async with request.config_dict[DB].transaction() as session:
        service.jobs_retried(session, n, actor_admin_id=admin.id)
    return redirect(f"{PREFIX}?done=jobs&n={n}")


def setup(panel: web.Application) -> None:
    panel.router.add_get("/queue", queue_page, name="admin.queue")
    panel.router.add_post("/queue/outbox/retry", retry_all, name="admin.queue_retry_all")
    panel.router.add_post("/queue/outbox/{outbox_id}/retry", retry_one, name="admin.queue_retry")
    panel.router.add_post("/queue/inbound/requeue", requeue_all, name="admin.queue_requeue_all")
    panel.router.add_post(
        "/queue/inbound/{unit_id}/requeue", requeue_one, name="admin.queue_requeue"
    )
    panel.router.add_post("/queue/jobs/retry", retry_jobs, name="admin.queue_jobs")

"""``/admin/proofs``: payment proofs awaiting review, each image behind a signed link
that expires (:data:`security.LINK_TTL`); approve or reject through
``services.payments`` — the same functions the jastiper's buttons in chat call, so the
buyer is told exactly as from chat."""

from __future__ import annotations

from aiohttp import web

from admin_web.keys import DB
from admin_web.panel.orders import proof_link
from admin_web.panel.render import current_admin
from admin_web.shell import proofs, security
from admin_web.shell.errors import refusal_shows
from admin_web.shell.render import buyer_name, outbox_notify, redirect, render, translator
from locales import _
from services import orders as orders_service
from services import payments
from storage.models import ProofStatus, utcnow
from storage.repo import orders as orders_repo
from storage.repo import panel as panel_repo


async def proof_list(request: web.Request, *, error: str = "") -> web.StreamResponse:
    t = translator(request)
    async with request.config_dict[DB].read() as session:
        rows = await panel_repo.proofs_awaiting(session, ProofStatus.SUBMITTED.value, limit=100)
        reused = await panel_repo.reused_proofs(session, [r[0] for r in rows])
    return render(
        request,
        "proofs.html",
        {
            "rows": [
                (proof, order, trip, buyer_name(buyer), proof_link(request, proof.id))
                for proof, order, trip, buyer in rows
            ],
            "reasons": proofs.reasons(t),
            "error": error,
            "reused": reused,
            "status_label": lambda s: t(orders_service.status_label(s)),
        },
        active="admin.proofs",
        status=409 if error else 200,
    )


async def proof_page(request: web.Request) -> web.StreamResponse:
    return await proof_list(request)


async def proof_image(request: web.Request) -> web.StreamResponse:
    """The image of a proof, only through a link signed here that has not expired (and
    only with a session). Never cached; the query is never logged (``bot/logs.py``)."""
    proof_id = int(request.match_info["proof_id"])
    if not security.link_valid(request, f"proof:{proof_id}"):
        raise web.HTTPForbidden(text="This link has expired or is not valid; reload the page.")
    async with request.config_dict[DB].read() as session:
        proof = await orders_repo.get_proof(session, proof_id)
    return await proofs.proof_file(request, proof)


def _back(raw: object, proof_id: int) -> str:
    target = str(raw or "")
    if target.startswith("/admin/orders/") and "//" not in target and "?" not in target:
        return target
    return "/admin/proofs"


async def _settle(request: web.Request, approve: bool) -> web.StreamResponse:
    t = translator(request)
    admin = current_admin(request)
    proof_id = int(request.match_info["proof_id"])
    form = await request.post()
    reason = "" if approve else proofs.reject_reason(form)
    if not approve and not reason:
        return await proof_list(request, error=t(_("Pilih atau tulis alasan penolakan.")))
    refusal_shows(request, lambda error: proof_list(request, error=error))
    async with request.config_dict[DB].transaction() as session:
        review = await payments.reviewable(session, proof_id, None)
        if approve:
            await payments.approve(session, review, utcnow(), actor_admin_id=admin.id)
        else:
            await payments.reject(session, review, reason, utcnow(), actor_admin_id=admin.id)
    outbox_notify(request)
    done = "approved" if approve else "rejected"
    return redirect(f"{_back(form.get('back'), proof_id)}?done={done}")


async def approve(request: web.Request) -> web.StreamResponse:
    return await _settle(request, True)


async def reject(request: web.Request) -> web.StreamResponse:
    return await _settle(request, False)


def setup(panel: web.Application) -> None:
    one = r"/proofs/{proof_id:\d{1,12}}"
    panel.router.add_get("/proofs", proof_page, name="admin.proofs")
    panel.router.add_get(f"{one}/image", proof_image, name="admin.proof_image")
    panel.router.add_post(f"{one}/approve", approve, name="admin.proof_approve")
    panel.router.add_post(f"{one}/reject", reject, name="admin.proof_reject")

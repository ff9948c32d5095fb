"""``/admin/proofs``: payment proofs awaiting review, each image behind a signed link
that expires (:data:`security.LINK_TTL`); approve or reject through
``services.payments`` — the same functions the jastiper's buttons in chat call, so the
buyer is told exactly as from chat."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from admin_web.keys import DB
from admin_web.panel.orders import proof_link
from admin_web.panel.render import current_admin
from admin_web.shell import proofs, security
from admin_web.shell.render import buyer_name, render, translator
from services import orders as orders_service
from services import panel as panel_service
from services import payments
from storage.models import User


async def proof_list(request: web.Request, *, error: str = "") -> web.StreamResponse:
    t = translator(request)
    async with request.config_dict[DB].read() as session:
        rows, reused = await panel_service.proofs_awaiting(session, limit=100)
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
        proof = await payments.proof(session, proof_id)
    return await proofs.proof_file(request, proof)


async def _as_admin(
    request: web.Request, _session: AsyncSession
) -> tuple[User | None, dict[str, int]]:
    """An admin reviews any proof, and is the audit log's actor."""
    return None, {"actor_admin_id": current_admin(request).id}


approve, reject = proofs.settlers(proof_list, _as_admin)


def setup(panel: web.Application) -> None:
    one = r"/proofs/{proof_id:\d{1,12}}"
    panel.router.add_get("/proofs", proof_page, name="admin.proofs")
    panel.router.add_get(f"{one}/image", proof_image, name="admin.proof_image")
    panel.router.add_post(f"{one}/approve", approve, name="admin.proof_approve")
    panel.router.add_post(f"{one}/reject", reject, name="admin.proof_reject")

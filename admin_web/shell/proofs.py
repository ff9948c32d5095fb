"""What both panels do alike with a payment proof: send its file (behind the signed
link each panel checks first), read the reject form's reason, and approve or reject it
through ``services.payments`` exactly as the buttons in chat do (:func:`settle`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession

from admin_web.keys import DB, MEDIA
from admin_web.shell.door import DOOR
from admin_web.shell.errors import refusal_shows
from admin_web.shell.render import outbox_notify, redirect, translator
from locales import Translator, _
from services import payments
from storage.media import MediaNotFound
from storage.models import PaymentProof, User, utcnow

# who reviews, found in the review's transaction: the jastiper's user (None: an admin,
# who may review any proof) and the audit log's actor, as keyword arguments
Reviewer = Callable[[web.Request, AsyncSession], Awaitable[tuple[User | None, dict[str, int]]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# the panel's proofs page, shown again with an error above its forms
ProofsPage = Callable[..., Awaitable[web.StreamResponse]]


async def proof_file(request: web.Request, proof: PaymentProof | None) -> web.Response:
    """The proof's image (inline) or PDF (a download), never cached; 404 when there is
    no such proof (or it is not the reader's) or its file is gone."""
    if proof is None:
        raise web.HTTPNotFound(text="Proof not found")
    try:
        data = await request.config_dict[MEDIA].get(proof.media_key)
    except MediaNotFound:
        raise web.HTTPNotFound(text="The proof's file is gone") from None
    image = proof.mime_type.startswith("image/")
    return web.Response(
        body=data,
        content_type=proof.mime_type if image else "application/octet-stream",
        headers={
            "Content-Disposition": "inline" if image else "attachment",
            "Cache-Control": "no-store",
        },
    )


def reasons(t: Translator) -> list[tuple[int, str]]:
    """The reject form's ready reasons, numbered as the chat numbers them."""
    return [(n, t(text)) for n, text in payments.REJECT_REASONS.items()]


def reject_reason(form: MultiDictProxy[str | bytes | bytearray | web.FileField]) -> str:
    """The reason chosen from the list, else the one typed (200 characters at most);
    empty when there is neither."""
    choice = str(form.get("reason", ""))
    typed = " ".join(str(form.get("reason_text", "")).split())[:200]
    if choice.isdigit() and int(choice) in payments.REJECT_REASONS:
        return payments.REJECT_REASONS[int(choice)]
    return typed


def back_to(raw: object, root: str) -> str:
    """Where the form goes back to: the order page it was posted from, else the proofs
    page of the panel at ``root``."""
    target = str(raw or "")
    if target.startswith(f"{root}orders/") and "//" not in target and "?" not in target:
        return target
    return f"{root}proofs"


async def settle(
    request: web.Request, approve: bool, *, page: ProofsPage, reviewer: Reviewer
) -> web.StreamResponse:
    """Approve or reject the route's proof with the same service calls as the buttons in
    chat, so the buyer is told the same way; a refusal shows ``page`` again with it."""
    t = translator(request)
    proof_id = int(request.match_info["proof_id"])
    form = await request.post()
    reason = "" if approve else reject_reason(form)
    if not approve and not reason:
        return await page(request, error=t(_("Pilih atau tulis alasan penolakan.")))
    # a proof not the reviewer's is NotFound: the 404 page, as for one that does not exist
    refusal_shows(request, lambda error: page(request, error=error))
    async with request.config_dict[DB].transaction() as session:
        who, actor = await reviewer(request, session)
        review = await payments.reviewable(session, proof_id, who)
        if approve:
            await payments.approve(session, review, utcnow(), **actor)
        else:
            await payments.reject(session, review, reason, utcnow(), **actor)
    outbox_notify(request)
    done = "approved" if approve else "rejected"
    return redirect(f"{back_to(form.get('back'), request.config_dict[DOOR].root)}?done={done}")


def settlers(page: ProofsPage, reviewer: Reviewer) -> tuple[Handler, Handler]:
    """A panel's approve and reject routes: :func:`settle` by ``reviewer``, refusals
    shown on ``page``."""

    async def approve(request: web.Request) -> web.StreamResponse:
        return await settle(request, True, page=page, reviewer=reviewer)

    async def reject(request: web.Request) -> web.StreamResponse:
        return await settle(request, False, page=page, reviewer=reviewer)

    return approve, reject

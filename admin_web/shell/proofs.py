"""What both panels do alike with a payment proof: send its file (behind the signed
link each panel checks first) and read the reject form's reason."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDictProxy

from admin_web.keys import MEDIA
from locales import Translator
from services import payments
from storage.media import MediaNotFound
from storage.models import PaymentProof


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

"""``/web``: a one-time link to the jastiper's own web panel (orders, proofs, recap,
broadcasts), valid 10 minutes and for one opening. The link goes only into this reply
(sealed in the outbox like every reply) and is never logged."""

from __future__ import annotations

from flows.base import Ctx
from locales import _
from services import jastiper_web
from storage.models import Jastiper


async def cmd_web(ctx: Ctx, jastiper: Jastiper, args: list[str]) -> None:
    """A link that opens the web panel once, for 10 minutes."""
    token = await jastiper_web.issue_link(ctx.session, jastiper, ctx.now)
    base = str(ctx.resources.settings.public_base_url).rstrip("/")
    ctx.say(
        _(
            "Link panel web-mu (berlaku 10 menit, sekali pakai):\n{link}\n\n"
            "Jangan bagikan link ini. Kalau sudah kedaluwarsa, kirim /web lagi."
        ),
        link=f"{base}{jastiper_web.PATH}{token}",
    )

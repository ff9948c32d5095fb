"""Questions between buyers and jastipers (``TANYA …`` and ``/reply REF …``), and
``DAFTAR JASTIPER``, a buyer asking to become one."""

from __future__ import annotations

from flows import menu
from flows.base import Ctx
from locales import _
from services import accounts, questions
from storage.models import Jastiper, JastiperStatus, Trip

Args = list[str]


async def cmd_reply(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Answers a buyer's question by its reference."""
    if len(args) < 2:
        ctx.say(_("Format: /reply REF jawabanmu, contoh: /reply Q-AB12 Ada, ukuran M."))
        return
    answer = " ".join(ctx.incoming.text.split(None, 2)[2:])
    done = await questions.answer(ctx.session, jastiper, args[0], answer, ctx.now)
    ctx.say(_("Jawaban untuk {ref} sudah dikirim."), ref=done.ref)


async def on_question(ctx: Ctx) -> None:
    """TANYA <text>: a buyer asks the jastiper of their current trip."""
    text = " ".join(ctx.incoming.text.split()[1:])[: questions.TEXT_MAX]
    if not text:
        ctx.say(_("Tulis pertanyaanmu setelah TANYA, contoh: TANYA ada ukuran M?"))
        return
    trip = await menu.current_trip(ctx)
    if trip is None:
        await menu.show_menu(ctx)
        return
    await relay(ctx, trip, text)


async def relay(ctx: Ctx, trip: Trip, text: str) -> None:
    """Passes the buyer's question to the trip's jastiper and says under which reference."""
    ref = await questions.ask(
        ctx.session,
        trip,
        ctx.user,
        text,
        now=ctx.now,
        per_day=ctx.resources.settings.questions_per_day,
    )
    ctx.say(
        _(
            "Pertanyaanmu sudah diteruskan ke jastiper (ref {ref}). Jawabannya akan "
            "muncul di sini."
        ),
        ref=ref,
    )


async def on_register(ctx: Ctx) -> None:
    """DAFTAR JASTIPER: asks to become a jastiper; an admin approves."""
    status = await accounts.request_jastiper(ctx.session, ctx.user)
    if status == JastiperStatus.SUSPENDED.value:
        ctx.say(accounts.SUSPENDED_TEXT)
        return
    if status == JastiperStatus.APPROVED.value:
        ctx.say(_("Kamu sudah terdaftar sebagai jastiper. Ketik /help."))
        return
    ctx.say(
        _(
            "Permintaanmu jadi jastiper sudah kami terima. Admin akan memeriksanya dan "
            "mengabarimu di sini."
        )
    )

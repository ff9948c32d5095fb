"""A jastiper's broadcasts: ``/broadcast CODE [#segment] text`` shows reach and cost and
asks *Kirim* / *Gratis saja* / *Batal*; ``/broadcast status`` shows the latest ones."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from flows import menu
from flows.base import Ctx, Handler
from flows.jastiper.machine import jastipers_only, own_trip
from locales import _
from services import broadcasts, replies, tier
from services.errors import NotFound
from services.payloads import BroadcastTap
from storage.models import Broadcast, BroadcastStatus, Jastiper
from storage.models import DeliveryStatus as D

Args = list[str]


async def cmd_broadcast(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """Estimates a broadcast (reach, free inside the window, paid, cost), then asks."""
    if args and args[0].lower() == "status":
        await show_status(ctx, jastiper)
        return
    if not args:
        ctx.say(
            _(
                "Contoh: /broadcast DEMO Produk baru sudah datang! — perkiraan biaya dulu, "
                "lalu kamu pilih kirim. /broadcast status — hasil broadcast terakhir."
            )
        )
        return
    trip = await own_trip(ctx, jastiper, args[0] if args else None)
    segment, text = broadcasts.split_segment(" ".join(ctx.incoming.text.split(None, 2)[2:]))
    if not text:
        ctx.say(
            _("Tulis pesannya setelah kode trip, contoh: /broadcast {code} Produk baru!"),
            code=trip.code,
        )
        return
    row, est = await broadcasts.draft(
        ctx.session,
        trip,
        ctx.user,
        text,
        segment=segment,
        default_rate=ctx.resources.settings.cost_estimator_rate,
        now=ctx.now,
    )
    choices = [(ctx.t(_("Kirim")), BroadcastTap("send", row.id))]
    if est.paid:
        choices.append((ctx.t(_("Gratis saja")), BroadcastTap("free", row.id)))
    choices.append((ctx.t(_("Batal")), BroadcastTap("cancel", row.id)))
    body = ctx.t(
        _(
            "Broadcast ke *{code}*:\n\u201c{text}\u201d\n\n"
            "Penerima: {n}\nGratis (dalam 24 jam): {free}\nBerbayar: {paid}\n"
            "Perkiraan biaya: {cost}"
        ),
        code=trip.code,
        text=row.text,
        n=est.recipients,
        free=est.free,
        paid=est.paid,
        cost=ctx.t.money(est.cost),
    )
    if est.skipped:
        body += "\n" + ctx.t(
            _("Tidak terkirim (di luar 24 jam, belum ada template): {n}"), n=est.skipped
        )
    if est.paid:
        body += "\n\n" + ctx.t(
            _("*Gratis saja* hanya mengirim ke {free} pembeli yang masih dalam 24 jam."),
            free=est.free,
        )
    settings = ctx.resources.settings
    cap = settings.broadcast_number_cap
    launch = tier.launch_estimate(
        est.recipients,
        cap=cap,
        reply_reserve=tier.reply_reserve(cap, settings.reply_reserve),
    )
    if launch is not None:
        body += "\n\n" + ctx.t(
            _(
                "Nomor ini mengirim maksimal {cap} pesan/detik: broadcast ini keluar dalam "
                "±{send} detik, dan kalau {n} pembeli membalas sekaligus, balasan bisa "
                "tertunda ±{wait} detik."
            ),
            cap=launch.cap,
            send=launch.send_seconds,
            n=launch.recipients,
            wait=launch.reply_wait_seconds,
        )
    ctx.reply(replies.buttons(body, choices))


async def show_status(ctx: Ctx, jastiper: Jastiper) -> None:
    """``/broadcast status``: the latest broadcasts with their delivery counts."""
    progress = await broadcasts.latest(ctx.session, jastiper)
    if not progress:
        ctx.say(_("Belum ada broadcast yang dikirim."))
        return
    lines = []
    for p in progress:
        tally = p.tally
        kind = broadcasts.KIND_TEXT.get(p.broadcast.kind, broadcasts.KIND_TEXT["manual"])
        state = broadcasts.STATE_TEXT.get(
            p.broadcast.status, broadcasts.STATE_TEXT[BroadcastStatus.QUEUED]
        )
        lines.append(
            ctx.t(
                _("*#{id} {code}* — {kind}, {status} ({progress}%)"),
                id=p.broadcast.id,
                code=p.trip.code,
                kind=ctx.t(kind),
                status=ctx.t(state),
                progress=p.percent,
            )
        )
        lines.append("  \u201c" + replies.clip(p.broadcast.text or "", 50) + "\u201d")
        counts = [
            (sum(tally.get(k, 0) for k in broadcasts.OPEN_DELIVERIES), _("{n} antre")),
            (tally.get(D.SENT, 0), _("{n} terkirim")),
            (tally.get(D.DELIVERED, 0), _("{n} diterima")),
            (tally.get(D.READ, 0), _("{n} dibaca")),
            (tally.get(D.FAILED, 0), _("{n} gagal")),
            (tally.get(D.SKIPPED, 0), _("{n} dilewati")),
        ]
        said = ", ".join(ctx.t(text, n=n) for n, text in counts if n)
        lines.append(
            "  "
            + (said or ctx.t(_("belum ada yang dikirim")))
            + " · "
            + ctx.t(_("biaya {cost}"), cost=ctx.t.money(p.cost))
        )
        for code, n in p.reasons:
            reason = broadcasts.FAILURE_TEXT.get(code) if code is not None else None
            lines.append(
                f"  · {n}× "
                + (ctx.t(reason) if reason else ctx.t(_("kode {code}"), code=code or "?"))
            )
    ctx.say("\n".join(lines))


DraftStep = Callable[[Ctx, Broadcast], Awaitable[None]]


def _draft_tap(handler: DraftStep) -> Handler:
    """A button under a broadcast's estimate, given the draft: its own jastiper only
    (a broadcast not theirs is not understood)."""

    @jastipers_only
    @functools.wraps(handler)
    async def tapped(ctx: Ctx, jastiper: Jastiper) -> None:
        tap = ctx.incoming.tap
        assert isinstance(tap, BroadcastTap)
        try:
            row, _trip = await broadcasts.owned_draft(ctx.session, jastiper, tap.broadcast_id)
        except NotFound:
            await menu.not_understood(ctx)
            return
        await handler(ctx, row)

    return tapped


def _queue(ctx: Ctx, row: Broadcast, *, paid: bool) -> None:
    n = broadcasts.confirm(ctx.session, row, paid=paid, actor_user_id=ctx.user.id)
    ctx.say(_("Broadcast masuk antrean untuk {n} penerima. Kabarnya menyusul di sini."), n=n)


@_draft_tap
async def on_send(ctx: Ctx, row: Broadcast) -> None:
    """*Kirim*: queued to everyone it reaches, paid messages included."""
    _queue(ctx, row, paid=True)


@_draft_tap
async def on_send_free(ctx: Ctx, row: Broadcast) -> None:
    """*Gratis saja*: queued only to buyers still inside their free window."""
    _queue(ctx, row, paid=False)


@_draft_tap
async def on_cancel(ctx: Ctx, row: Broadcast) -> None:
    """*Batal*: the draft is dropped."""
    broadcasts.cancel(ctx.session, row, actor_user_id=ctx.user.id)
    ctx.say(_("Broadcast dibatalkan."))

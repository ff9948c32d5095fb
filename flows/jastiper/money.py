"""A jastiper's money after orders are placed: ``/ongkir`` (one order's shipping, or a
flat rate for a trip's orders without one), ``/refund`` (items not found), ``/refunds`` (what
is owed back to whom) and ``/refunded`` (the refund owed was returned, with a photo of the
transfer or without), and a bank statement captioned ``/mutasi``
confirming the payments it shows. The rules and what the buyer is told live
in ``services/money.py``."""

from __future__ import annotations

from flows.base import Ctx
from flows.jastiper.machine import jastipers_only, own_order, own_trip
from locales import _
from services import amounts, money, reconcile, reconcile_text, refunds, replies
from services.payloads import JastiperTap
from services.statements import Statement
from storage.models import Jastiper

Args = list[str]
ORDER_PREFIX = "JP-"  # order codes look like JP-ABCDE; trip codes never have the dash


async def cmd_ongkir(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """``/ongkir JP-ABCDE 25000`` or ``/ongkir DEMO 25000``."""
    if len(args) < 2:
        ctx.say(
            _(
                "Contoh: /ongkir JP-ABCDE 25000 untuk satu pesanan, atau /ongkir DEMO 25000 "
                "untuk semua pesanan trip DEMO yang belum ada ongkirnya."
            )
        )
        return
    amount = money.check_amount(" ".join(args[1:]))
    if not args[0].upper().startswith(ORDER_PREFIX):
        await _trip_ongkir(ctx, jastiper, args[0], amount)
        return
    order = await own_order(ctx, jastiper, args[0])
    if order is None:
        return
    outcome = await money.set_shipping(
        ctx.session,
        order,
        amount,
        ctx.now,
        actor_user_id=ctx.user.id,
        media=ctx.resources.media,
    )
    if outcome is None:
        ctx.say(
            _("Ongkir {code} memang sudah {amount}; tidak ada yang berubah."),
            code=order.code,
            amount=ctx.t.money(amount),
        )
        return
    ctx.say(
        _("Ongkir {code}: {amount}. Total sekarang {total}; pembeli sudah dikabari."),
        code=order.code,
        amount=ctx.t.money(amount),
        total=ctx.t.money(amounts.amount(order)),
    )


async def _trip_ongkir(ctx: Ctx, jastiper: Jastiper, code: str, amount: int) -> None:
    trip = await own_trip(ctx, jastiper, code)
    done, skipped = await money.set_trip_shipping(
        ctx.session, trip, amount, ctx.now, actor_user_id=ctx.user.id, media=ctx.resources.media
    )
    ctx.say(
        _(
            "Ongkir {amount} dipasang di {n} pesanan {code}; pembelinya sudah dikabari. "
            "Dilewati: {skipped} (sudah ada ongkir, bukti sedang dicek, atau sudah dikirim)."
        ),
        amount=ctx.t.money(amount),
        n=done,
        code=trip.code,
        skipped=skipped,
    )


async def cmd_refund(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """``/refund JP-ABCDE 1 [qty] [reason]``: item 1 (as ``/order`` numbers it) was not
    found."""
    if len(args) < 2 or not args[1].lstrip("#").isdigit():
        ctx.say(
            _(
                "Contoh: /refund JP-ABCDE 1 (barang nomor 1 tidak didapat), atau "
                "/refund JP-ABCDE 1 2 stok habis (2 buah, dengan alasan). Nomor barang "
                "ada di /order JP-ABCDE."
            )
        )
        return
    order = await own_order(ctx, jastiper, args[0])
    if order is None:
        return
    rest = args[2:]
    quantity = None
    if rest and rest[0].isdigit():
        quantity = int(rest[0][:4])
        rest = rest[1:]
    reason = " ".join(rest)[:200]
    refund = await money.refund_item(
        ctx.session,
        order,
        int(args[1].lstrip("#")[:4]),
        quantity,
        reason,
        ctx.now,
        actor_user_id=ctx.user.id,
        media=ctx.resources.media,
    )
    text = ctx.t(
        _("{qty}× {name} di {code} ditandai tidak didapat. Total turun {drop} menjadi {total}."),
        qty=refund.quantity,
        name=refund.name,
        code=order.code,
        drop=ctx.t.money(refund.drop),
        total=ctx.t.money(amounts.amount(order)),
    )
    if order.refund_due:
        text += "\n" + ctx.t(
            _(
                "Refund yang harus kamu kembalikan: {amount}. Rekening pembeli ada di "
                "/refunds; setelah transfer, kirim foto buktinya dengan caption "
                "/refunded {code} (atau ketik /refunded {code})."
            ),
            amount=ctx.t.money(order.refund_due),
            code=order.code,
        )
    ctx.reply(replies.text(text + "\n" + ctx.t(_("Pembeli sudah dikabari."))))


async def cmd_refunded(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """``/refunded JP-ABCDE``: the refund owed was returned to the buyer."""
    await _refunded(ctx, jastiper, args[0] if args else None, None)


@jastipers_only
async def on_refund_photo(ctx: Ctx, jastiper: Jastiper) -> None:
    """A photo of the transfer captioned ``/refunded JP-ABCDE``: the refund is recorded
    returned and the buyer receives the photo."""
    inc = ctx.incoming
    if inc.upload_error or not inc.media_key:
        ctx.say(BAD_TRANSFER_PHOTO)
        return
    words = (inc.caption or "").split()
    await _refunded(ctx, jastiper, words[1] if len(words) > 1 else None, inc.media_key)


async def _refunded(ctx: Ctx, jastiper: Jastiper, code: str | None, photo: str | None) -> None:
    order = await own_order(ctx, jastiper, code)
    if order is None:
        return
    amount = await refunds.confirm(ctx.session, order, photo_key=photo, actor_user_id=ctx.user.id)
    ctx.say(
        _("Refund {amount} untuk {code} dicatat sudah dikembalikan. Pembeli sudah dikabari."),
        amount=ctx.t.money(amount),
        code=order.code,
    )


async def cmd_refunds(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """``/refunds``: what is owed back to whom, oldest first, and where to send it."""
    owed = await refunds.owed(ctx.session, jastiper)
    if not owed:
        ctx.say(_("Tidak ada refund yang perlu dikembalikan. 👍"))
        return
    t = ctx.t
    lines = [
        t(
            _("{n}. {code} ({trip}) · {amount} · {buyer}\n   → {account}"),
            n=n,
            code=o.order.code,
            trip=o.trip.code,
            amount=t.money(o.order.refund_due),
            buyer=o.buyer.display_name or o.buyer.profile_name or "-",
            account=refunds.describe(t, o.order.refund_account),
        )
        for n, o in enumerate(owed, start=1)
    ]
    total = sum(o.order.refund_due for o in owed)
    ctx.reply(
        replies.text(
            t(_("Refund yang harus dikembalikan ({total}):"), total=t.money(total))
            + "\n"
            + "\n".join(lines)
            + "\n\n"
            + t(
                _(
                    "Setelah transfer, kirim foto buktinya dengan caption /refunded KODE "
                    "(atau ketik /refunded KODE)."
                )
            )
        )
    )


BAD_TRANSFER_PHOTO = _(
    "Foto bukti transfer itu tidak bisa dibuka. Kirim ulang fotonya dengan caption "
    "/refunded KODE, atau ketik /refunded KODE saja."
)


STATEMENT_HOWTO = _(
    "Kirim file mutasi rekening dari internet banking (CSV, XLS atau XLSX; BCA, Mandiri, "
    "BRI, BNI, dan lainnya) sebagai *dokumen* dengan caption /mutasi. Setiap transfer masuk "
    "ke rekening pesanan yang sama persis dengan nominal unik pesanan yang belum dibayar "
    "akan dikonfirmasi otomatis."
)


async def cmd_mutasi(ctx: Ctx, jastiper: Jastiper, args: Args) -> None:
    """``/mutasi`` typed without a file: how to send the statement."""
    ctx.say(STATEMENT_HOWTO)


@jastipers_only
async def on_statement(ctx: Ctx, jastiper: Jastiper) -> None:
    """A document captioned ``/mutasi``: its credits confirm the payments they pay, and
    the jastiper gets the summary (a buyer sending one is not understood)."""
    inc = ctx.incoming
    if inc.statement is None or ctx.resources.media is None:
        ctx.say(reconcile.refusal(inc.upload_error))
        return
    await match_statement(ctx, jastiper, inc.statement)


async def match_statement(ctx: Ctx, jastiper: Jastiper, statement: Statement) -> None:
    """Confirms the payments a statement's credits pay and tells the jastiper."""
    if ctx.resources.media is None:
        return
    outcome = await reconcile.apply(ctx.session, jastiper, statement, ctx.resources.media, ctx.now)
    ctx.reply(replies.text(reconcile.summary(ctx.t, outcome)))
    for late in outcome.late:
        credit = await reconcile.LateCredit.offer(ctx.resources.media, late)
        value = f"{late.order.id}.{credit.to_value()}"
        ctx.reply(
            replies.buttons(
                reconcile_text.late_offer(ctx.t, late),
                [(reconcile_text.late_button(ctx.t, late.order.code), JastiperTap("late", value))],
            )
        )


async def on_late_tap(ctx: Ctx, jastiper: Jastiper, value: str) -> None:
    """The jastiper confirms a late payment a statement showed: the order takes its stock
    again and is confirmed, the buyer told (or why not, and nothing changes)."""
    order_id, _sep, rest = value.partition(".")
    credit = reconcile.LateCredit.from_value(rest)
    if not order_id.isdigit() or credit is None:
        ctx.say(_("Tombol itu sudah tidak berlaku. Ketik /help."))
        return
    order = await reconcile.confirm_late(
        ctx.session, jastiper, int(order_id[:12]), credit, ctx.now
    )
    ctx.say(
        _(
            "✅ Pembayaran {amount} untuk {code} dikonfirmasi; stoknya dipesan lagi dan pembeli "
            "sudah dikabari."
        ),
        amount=ctx.t.money(credit.amount),
        code=order.code,
    )

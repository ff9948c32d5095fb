"""My orders (list, detail, cancel, ask), payment proofs from buyers and their review by
the trip's jastiper."""

from __future__ import annotations

import enum
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from flows import menu
from flows.base import Ctx, Flow, Handler, On, Table, ignore, with_tap
from flows.jastiper.questions import relay
from locales import _
from services import amounts, orders, payments, payqris, questions, refunds, replies, trips
from services.errors import NotFound
from services.payloads import MenuTap, OrderTap, ProofTap
from storage.models import OrderGroup


class State(enum.StrEnum):
    IDLE = "idle"
    CHOOSE_ORDER = "choose_order"  # a proof arrived; which order is it for?
    ASK_QUESTION = "ask_question"  # the buyer tapped "ask the jastiper" on an order
    REJECT_REASON = "reject_reason"  # the jastiper may type why a proof is rejected
    REFUND_ACCOUNT = "refund_account"  # where a refund owed goes: bank / e-wallet


# ``ctx.enter(flow)`` always lands in IDLE, so every question starts from there
TRANSITIONS = [
    {"trigger": "ask_which_order", "source": State.IDLE, "dest": State.CHOOSE_ORDER},
    {"trigger": "ask_question", "source": State.IDLE, "dest": State.ASK_QUESTION},
    {"trigger": "ask_reject_reason", "source": State.IDLE, "dest": State.REJECT_REASON},
    {"trigger": "ask_refund_account", "source": State.IDLE, "dest": State.REFUND_ACCOUNT},
]
flow = Flow("orders", State, TRANSITIONS, State.IDLE)

UPLOAD_ERRORS = {
    "too_large": _(
        "File itu terlalu besar (maks. 5 MB). Kirim foto bukti transfer yang lebih kecil ya."
    ),
    "too_many_pixels": _(
        "Ukuran gambar itu terlalu besar untuk dibuka (maks. 16 megapiksel). Kirim "
        "screenshot atau foto biasa bukti transfernya ya."
    ),
    "unsupported_type": _("Aku hanya bisa menerima foto (JPG/PNG) atau PDF bukti transfer."),
    "corrupt": _("File itu rusak atau tidak bisa dibuka. Coba kirim ulang fotonya ya."),
    "download_failed": _("Maaf, fotonya gagal kami ambil dari WhatsApp. Coba kirim ulang ya."),
}


def status_text(ctx: Ctx, status: str) -> str:
    return ctx.t(orders.status_label(status))


ORDERS_PAGE = 8  # + up to two navigation rows: never more than Meta's 10


async def show_orders(ctx: Ctx, page: int = 0) -> None:
    """Lists the buyer's orders, newest first, a page at a time; a tap shows one."""
    ctx.enter(flow)
    page = max(0, page)
    mine = await orders.buyer_orders(
        ctx.session, ctx.user, limit=ORDERS_PAGE + 1, offset=page * ORDERS_PAGE
    )
    more = len(mine) > ORDERS_PAGE
    mine = mine[:ORDERS_PAGE]
    if not mine and page > 0:
        await show_orders(ctx, 0)
        return
    if not mine:
        ctx.reply(menu.menu_buttons(ctx, ctx.t(_("Kamu belum punya pesanan."))))
        return
    rows: list[tuple[str, str | None, Any]] = [
        (
            f"{o.code} · {ctx.t.money(amounts.amount(o))}",
            status_text(ctx, o.status),
            OrderTap("view", o.code),
        )
        for o in mine
    ]
    if page > 0:
        rows.append((ctx.t(_("◀ Sebelumnya")), None, OrderTap("page", str(page - 1))))
    if more:
        rows.append((ctx.t(_("Berikutnya ▶")), None, OrderTap("page", str(page + 1))))
    body = ctx.t(_("Pesanan kamu (terbaru di atas):"))
    if page > 0 or more:
        body += "\n" + ctx.t(_("Halaman {page}"), page=page + 1)
    ctx.reply(replies.list_rows(body, ctx.t(_("Lihat pesanan")), rows))


async def show_order(ctx: Ctx, code: str) -> None:
    """Shows one order: items, amounts, status, payments and tracking."""
    order = await orders.buyer_order(ctx.session, ctx.user, code)
    trip = await trips.of_order(ctx.session, order)
    money = ctx.t.money
    lines = [f"*{order.code}* — {trip.title}", status_text(ctx, order.status)]
    lines += refunds.item_lines(ctx.t, order)
    lines.append(ctx.t(_("Total: {amount}"), amount=money(amounts.amount(order))))
    lines += refunds.refund_lines(ctx.t, order)
    if order.refund_due and order.refund_account:
        lines.append(
            ctx.t(_("Ke: {account}"), account=refunds.describe(ctx.t, order.refund_account))
        )
    if amounts.due_now(order):
        lines.append(
            ctx.t(
                _("Transfer tepat {amount} sebelum {deadline}, lalu kirim foto buktinya di sini."),
                amount=money(order.amount_due),
                deadline=ctx.t.datetime(order.payment_deadline),
            )
        )
    for proof in await payments.proofs_of(ctx.session, order):
        state = ctx.t(payments.PROOF_TEXT[proof.status])
        if proof.reject_reason:
            state += f" ({ctx.t(proof.reject_reason)})"
        lines.append(
            ctx.t(
                _("Bukti transfer {date}: {state}"),
                date=ctx.t.datetime(proof.created_at),
                state=state,
            )
        )
    if order.tracking_number:
        lines.append(ctx.t(_("Nomor resi: {tracking}"), tracking=order.tracking_number))
    choices: list[tuple[str, Any]] = [
        (ctx.t(_("Tanya jastiper")), OrderTap("ask", order.code)),
        (ctx.t(_("Pesanan saya")), MenuTap("orders")),
    ]
    if order.status in orders.CANCELLABLE:
        choices.insert(0, (ctx.t(_("Batalkan")), OrderTap("cancel", order.code)))
    elif order.refund_due and not order.refund_account:
        choices.insert(0, (ctx.t(_("Isi rekening refund")), OrderTap("refacct", order.code)))
    ctx.reply(replies.buttons("\n".join(lines), choices))
    if order.status in OrderGroup.OPEN_FOR_PAYMENT:  # with the jastiper's QRIS, if they set one
        await payqris.offer(ctx.session, ctx.resources.media, ctx.user, trip, order)


async def ask_cancel(ctx: Ctx, code: str) -> None:
    """Asks once more before cancelling."""
    ctx.reply(
        replies.buttons(
            ctx.t(_("Yakin batalkan pesanan {code}?"), code=code),
            [
                (ctx.t(_("Ya, batalkan")), OrderTap("cancelok", code)),
                (ctx.t(_("Tidak")), OrderTap("view", code)),
            ],
        )
    )


async def on_cancel(ctx: Ctx, code: str) -> None:
    """Cancels an unpaid order (its stock returns) and shows the menu."""
    order = await orders.buyer_order(ctx.session, ctx.user, code)
    await orders.cancel(ctx.session, order, ctx.now)
    ctx.reply(menu.menu_buttons(ctx, ctx.t(_("Pesanan {code} dibatalkan."), code=order.code)))


async def ask_question(ctx: Ctx, code: str) -> None:
    """Asks what the buyer wants to know about the order."""
    ctx.enter(flow)
    ctx.remember(ask_order=code)
    ctx.fire("ask_question")
    ctx.say(_("Tulis pertanyaanmu tentang pesanan {code}:"), code=code)


async def on_question_text(ctx: Ctx) -> None:
    """Relays the question typed about an order to the trip's jastiper."""
    code = ctx.data.get("ask_order", "")
    ctx.forget("ask_order")
    try:
        order = await orders.buyer_order(ctx.session, ctx.user, code)
    except NotFound:
        await menu.show_menu(ctx)
        return
    trip = await trips.of_order(ctx.session, order)
    ctx.enter(menu.flow)
    text = f"[{order.code}] {ctx.incoming.text.strip()[: questions.TEXT_MAX]}"
    await relay(ctx, trip, text)


async def on_page_tap(ctx: Ctx) -> None:
    """Another page of the buyer's orders."""
    tap = ctx.incoming.tap
    assert isinstance(tap, OrderTap)
    await show_orders(ctx, int(tap.code[:4]) if tap.code.isdigit() else 0)


# --- where a refund goes ----------------------------------------------------------------


async def ask_refund_account(ctx: Ctx, code: str) -> None:
    """Asks the bank or e-wallet, number and holder the refund of an order goes to."""
    order = await orders.buyer_order(ctx.session, ctx.user, code)
    if order.refund_due <= 0:
        ctx.say(_("Tidak ada refund yang menunggu untuk {code}."), code=order.code)
        return
    ctx.enter(flow)
    ctx.remember(refund_order=order.code)
    ctx.fire("ask_refund_account")
    ctx.say(
        _("Refund {amount} untuk {code} dikirim ke mana?"),
        amount=ctx.t.money(order.refund_due),
        code=order.code,
    )
    ctx.say(refunds.EXAMPLE)


async def on_refund_account_text(ctx: Ctx) -> None:
    """Stores the typed account (sealed) and tells the buyer where the refund goes; an
    unreadable one is asked again with an example."""
    code = str(ctx.data.get("refund_order", ""))
    # unreadable: refused, still in this state (the next text is read the same way)
    account = refunds.parse_account(ctx.incoming.text[:300])
    ctx.forget("refund_order")
    ctx.enter(menu.flow)
    order = await orders.buyer_order(ctx.session, ctx.user, code)
    await refunds.set_account(ctx.session, order, account, ctx.user)
    ctx.say(
        _("Terima kasih! Refund {amount} untuk {code} akan dikirim ke {account}."),
        amount=ctx.t.money(order.refund_due),
        code=order.code,
        account=refunds.describe(ctx.t, account),
    )


# --- payment proofs ----------------------------------------------------------------------


async def on_media(ctx: Ctx) -> None:
    """A photo or PDF from a buyer: the proof of a transfer for an order awaiting payment."""
    inc = ctx.incoming
    if inc.upload_error:
        ctx.say(UPLOAD_ERRORS.get(inc.upload_error, UPLOAD_ERRORS["corrupt"]))
        return
    awaiting = await orders.awaiting_payment(ctx.session, ctx.user)
    if not awaiting:
        ctx.say(
            _(
                "Terima kasih! Tapi kamu belum punya pesanan yang menunggu pembayaran. "
                "Ketik PESANAN untuk melihat pesananmu."
            )
        )
        return
    if not inc.media_key:  # not fetched: there was nothing awaiting payment just before
        ctx.say(UPLOAD_ERRORS["download_failed"])
        return
    upload = {
        "key": inc.media_key or "",
        "sha": inc.media_sha256 or "",
        "mime": inc.mime_type or "",
    }
    if len(awaiting) == 1:
        await _attach(ctx, awaiting[0].code, upload)
        return
    ctx.enter(flow)
    ctx.remember(proof_pending=upload)
    ask_which_order(ctx, awaiting)


def ask_which_order(ctx: Ctx, awaiting: list[Any]) -> None:
    """Asks which awaiting order the proof is for."""
    ctx.fire("ask_which_order")
    ctx.reply(
        replies.list_rows(
            ctx.t(_("Bukti transfer ini untuk pesanan yang mana?")),
            ctx.t(_("Pilih pesanan")),
            [
                (f"{o.code} · {ctx.t.money(o.amount_due)}", None, OrderTap("proof", o.code))
                for o in awaiting[:10]
            ],
        )
    )


async def on_order_chosen(ctx: Ctx, code: str) -> None:
    """Attaches the waiting proof to the order the buyer picked."""
    upload = ctx.data.get("proof_pending")
    if not upload:
        await show_order(ctx, code)
        return
    await _attach(ctx, code, upload)


async def _attach(ctx: Ctx, code: str, upload: dict[str, str]) -> None:
    order = await orders.buyer_order(ctx.session, ctx.user, code)
    await payments.attach_proof(
        ctx.session,
        order,
        payments.Upload(upload["key"], upload["sha"], upload["mime"]),
        ctx.user,
    )
    ctx.forget("proof_pending")
    if ctx.conversation.flow == flow.name:  # leave "which order?"; keep any checkout
        ctx.enter(menu.flow)
    ctx.say(
        _(
            "Terima kasih! Bukti transfer untuk {code} sudah kami terima dan sedang dicek "
            "jastiper."
        ),
        code=order.code,
    )


ReviewStep = Callable[[Ctx, payments.Review], Awaitable[None]]


def _proof_tap(handler: ReviewStep) -> Handler:
    """A button under a proof forwarded to its jastiper, given the proof's review (a
    proof no longer theirs to review is not understood)."""

    @functools.wraps(handler)
    async def tapped(ctx: Ctx) -> None:
        tap = ctx.incoming.tap
        assert isinstance(tap, ProofTap)
        review = await _reviewable(ctx, tap.proof_id)
        if review is not None:
            await handler(ctx, review)

    return tapped


def _no_typed_reason(ctx: Ctx) -> None:
    """A tap settled the review: a reason typed next is not expected any more."""
    if ctx.conversation.flow == flow.name:
        ctx.forget("reject_proof")
        ctx.enter(menu.flow)


@_proof_tap
async def on_approve(ctx: Ctx, review: payments.Review) -> None:
    """*Setujui*: the payment is approved and the buyer told."""
    _no_typed_reason(ctx)
    await payments.approve(ctx.session, review, ctx.now, actor_user_id=ctx.user.id)
    ctx.say(_("Pembayaran {code} disetujui. Pembeli sudah dikabari."), code=review.order.code)


@_proof_tap
async def on_reject(ctx: Ctx, review: payments.Review) -> None:
    """*Tolak*: asks why."""
    ask_reject_reason(ctx, review)


@_proof_tap
async def on_reject_reason(ctx: Ctx, review: payments.Review) -> None:
    """A common reason tapped: the proof is rejected with it."""
    _no_typed_reason(ctx)
    tap = ctx.incoming.tap
    assert isinstance(tap, ProofTap)
    reason = payments.REJECT_REASONS.get(tap.reason, payments.REJECT_REASONS[2])
    await _reject(ctx, review, reason)


def ask_reject_reason(ctx: Ctx, review: payments.Review) -> None:
    """Asks why the proof is rejected: a tap on a common reason, or typed words."""
    ctx.enter(flow)
    ctx.remember(reject_proof=review.proof.id)
    ctx.fire("ask_reject_reason")
    ctx.reply(
        replies.buttons(
            ctx.t(
                _("Kenapa bukti {code} ditolak? Ketuk alasan atau ketik sendiri."),
                code=review.order.code,
            ),
            [
                (ctx.t(text), ProofTap("why", review.proof.id, n))
                for n, text in payments.REJECT_REASONS.items()
            ],
        )
    )


async def on_reject_text(ctx: Ctx) -> None:
    """Rejects the proof with the reason the jastiper typed."""
    proof_id = ctx.data.get("reject_proof")
    ctx.forget("reject_proof")
    ctx.enter(menu.flow)
    review = await _reviewable(ctx, int(proof_id or 0))
    if review is not None:
        await _reject(ctx, review, " ".join(ctx.incoming.text.split())[:200])


async def _reviewable(ctx: Ctx, proof_id: int) -> payments.Review | None:
    try:
        return await payments.reviewable(ctx.session, proof_id, ctx.user)
    except NotFound:
        await menu.not_understood(ctx)
    return None


async def _reject(ctx: Ctx, review: payments.Review, reason: str) -> None:
    await payments.reject(ctx.session, review, reason, ctx.now, actor_user_id=ctx.user.id)
    ctx.say(_("Bukti {code} ditolak. Pembeli diminta mengirim ulang."), code=review.order.code)


TABLE = Table(
    flow,
    states={
        State.ASK_QUESTION: On(text=on_question_text),
        State.REJECT_REASON: On(text=on_reject_text),
        State.REFUND_ACCOUNT: On(text=on_refund_account_text),
    },
    taps={
        "ord:view": with_tap(show_order, "code"),
        "ord:page": on_page_tap,
        "ord:cancel": with_tap(ask_cancel, "code"),
        "ord:cancelok": with_tap(on_cancel, "code"),
        "ord:proof": with_tap(on_order_chosen, "code"),
        "ord:ask": with_tap(ask_question, "code"),
        "ord:refacct": with_tap(ask_refund_account, "code"),
        "ord": ignore,
        # the jastiper's review of a proof forwarded to them
        "proof:approve": on_approve,
        "proof:reject": on_reject,
        "proof:why": on_reject_reason,
        "proof": ignore,
    },
)

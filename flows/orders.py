"""My orders (list, detail, cancel), payment proofs from buyers and their review by the
trip's jastiper."""

from __future__ import annotations

import enum
from typing import Any

from flows import menu, replies
from flows.base import Ctx, Flow
from flows.payloads import MenuTap, OrderTap, ProofTap
from locales import _
from storage.models import (
    Order,
    OrderStatus,
    PaymentProof,
    PaymentType,
    ProofStatus,
    Trip,
    User,
)
from storage.repo import orders as orders_repo
from storage.repo.users import approved_jastiper


class State(enum.StrEnum):
    IDLE = "idle"
    CHOOSE_ORDER = "choose_order"  # a proof arrived; which order is it for?
    ASK_QUESTION = "ask_question"  # the buyer tapped "ask the jastiper" on an order
    REJECT_REASON = "reject_reason"  # the jastiper may type why a proof is rejected


TRANSITIONS = [
    {"trigger": "ask_which_order", "source": "*", "dest": State.CHOOSE_ORDER},
    {"trigger": "ask_question", "source": "*", "dest": State.ASK_QUESTION},
    {"trigger": "ask_reject_reason", "source": "*", "dest": State.REJECT_REASON},
    {"trigger": "done", "source": "*", "dest": State.IDLE},
]

STATUS_TEXT = {
    OrderStatus.AWAITING_PAYMENT.value: _("Menunggu pembayaran"),
    OrderStatus.PROOF_SUBMITTED.value: _("Bukti transfer sedang dicek"),
    OrderStatus.PAID.value: _("Lunas"),
    OrderStatus.DP_PAID.value: _("DP lunas"),
    OrderStatus.AWAITING_BALANCE.value: _("Menunggu pelunasan"),
    OrderStatus.BOUGHT.value: _("Sudah dibelikan"),
    OrderStatus.SHIPPED.value: _("Dikirim"),
    OrderStatus.DONE.value: _("Selesai"),
    OrderStatus.CANCELLED.value: _("Dibatalkan"),
    OrderStatus.EXPIRED.value: _("Kedaluwarsa"),
}
PROOF_TEXT = {
    ProofStatus.SUBMITTED.value: _("sedang dicek"),
    ProofStatus.APPROVED.value: _("disetujui"),
    ProofStatus.REJECTED.value: _("ditolak"),
}
REJECT_REASONS = {
    1: _("Nominal tidak sesuai"),
    2: _("Bukti tidak jelas"),
    3: _("Dana belum masuk"),
}
UPLOAD_ERRORS = {
    "too_large": _(
        "File itu terlalu besar (maks. 5 MB). Kirim foto bukti transfer yang lebih kecil ya."
    ),
    "unsupported_type": _("Aku hanya bisa menerima foto (JPG/PNG) atau PDF bukti transfer."),
    "corrupt": _("File itu rusak atau tidak bisa dibuka. Coba kirim ulang fotonya ya."),
    "download_failed": _("Maaf, fotonya gagal kami ambil dari WhatsApp. Coba kirim ulang ya."),
}


def status_text(ctx: Ctx, order: Order) -> str:
    return ctx.t(STATUS_TEXT.get(order.status, order.status))


async def show_orders(ctx: Ctx) -> None:
    """Lists the buyer's latest orders; a tap shows one."""
    ctx.enter(flow)
    orders = await orders_repo.user_orders(ctx.session, ctx.user.id, limit=10)
    if not orders:
        ctx.reply(menu.menu_buttons(ctx, ctx.t(_("Kamu belum punya pesanan."))))
        return
    rows = [
        (f"{o.code} · {ctx.t.money(o.total)}", status_text(ctx, o), OrderTap("view", o.code))
        for o in orders
    ]
    ctx.reply(
        replies.list_rows(
            ctx.t(_("Pesanan kamu (terbaru di atas):")), ctx.t(_("Lihat pesanan")), rows
        )
    )


async def show_order(ctx: Ctx, code: str) -> None:
    """Shows one order: items, amounts, status, payments and tracking."""
    try:
        order = await orders_repo.get_order(ctx.session, code, user_id=ctx.user.id)
    except orders_repo.OrderNotFound:
        ctx.say(_("Pesanan {code} tidak ditemukan."), code=code)
        return
    trip = await ctx.session.get(Trip, order.trip_id)
    money = ctx.t.money
    lines = [f"*{order.code}* — {trip.title if trip else ''}", status_text(ctx, order)]
    lines += [
        f"• {i.quantity}× {i.name} — {money(i.unit_price * i.quantity)}" for i in order.items
    ]
    lines.append(ctx.t(_("Total: {amount}"), amount=money(order.total)))
    if order.status in orders_repo.OPEN_FOR_PAYMENT:
        lines.append(
            ctx.t(
                _("Transfer tepat {amount} sebelum {deadline}, lalu kirim foto buktinya di sini."),
                amount=money(order.amount_due),
                deadline=ctx.t.datetime(order.payment_deadline),
            )
        )
    for proof in await orders_repo.proofs_of(ctx.session, order.id):
        state = ctx.t(PROOF_TEXT[proof.status])
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
    if order.status in orders_repo.CANCELLABLE:
        choices.insert(0, (ctx.t(_("Batalkan")), OrderTap("cancel", order.code)))
    ctx.reply(replies.buttons("\n".join(lines), choices))


async def on_tap(ctx: Ctx) -> None:
    """Order taps: view, cancel (asked twice), and "this proof is for that order"."""
    tap = ctx.incoming.tap
    assert isinstance(tap, OrderTap)
    if tap.action == "view":
        await show_order(ctx, tap.code)
    elif tap.action == "cancel":
        ctx.reply(
            replies.buttons(
                ctx.t(_("Yakin batalkan pesanan {code}?"), code=tap.code),
                [
                    (ctx.t(_("Ya, batalkan")), OrderTap("cancelok", tap.code)),
                    (ctx.t(_("Tidak")), OrderTap("view", tap.code)),
                ],
            )
        )
    elif tap.action == "cancelok":
        await _cancel(ctx, tap.code)
    elif tap.action == "proof":
        await _attach_pending_proof(ctx, tap.code)
    elif tap.action == "ask":
        ctx.enter(flow)
        ctx.remember(ask_order=tap.code)
        ctx.fire("ask_question")
        ctx.say(_("Tulis pertanyaanmu tentang pesanan {code}:"), code=tap.code)


async def on_question_text(ctx: Ctx) -> None:
    """The question typed after tapping "ask the jastiper" on an order."""
    from flows.jastiper import relay_question

    code = ctx.data.get("ask_order", "")
    ctx.forget("ask_order")
    try:
        order = await orders_repo.get_order(ctx.session, code, user_id=ctx.user.id)
    except orders_repo.OrderNotFound:
        await menu.show_menu(ctx)
        return
    trip = await ctx.session.get(Trip, order.trip_id)
    ctx.enter(menu.flow)
    if trip is not None:
        await relay_question(ctx, trip, f"[{order.code}] {ctx.incoming.text.strip()[:1000]}")


async def _cancel(ctx: Ctx, code: str) -> None:
    try:
        order = await orders_repo.get_order(ctx.session, code, user_id=ctx.user.id)
    except orders_repo.OrderNotFound:
        ctx.say(_("Pesanan {code} tidak ditemukan."), code=code)
        return
    if await orders_repo.cancel(ctx.session, order):
        ctx.reply(menu.menu_buttons(ctx, ctx.t(_("Pesanan {code} dibatalkan."), code=order.code)))
    else:
        ctx.say(
            _("Pesanan {code} tidak bisa dibatalkan lagi ({status}). Tanyakan ke jastiper-mu."),
            code=order.code,
            status=status_text(ctx, order),
        )


# --- payment proofs ----------------------------------------------------------------------


async def on_media(ctx: Ctx) -> None:
    """A photo or PDF from a buyer: the proof of a transfer for an order awaiting payment."""
    inc = ctx.incoming
    if inc.upload_error:
        ctx.say(UPLOAD_ERRORS.get(inc.upload_error, UPLOAD_ERRORS["corrupt"]))
        return
    awaiting = await orders_repo.awaiting_payment(ctx.session, ctx.user.id)
    if not awaiting:
        ctx.say(
            _(
                "Terima kasih! Tapi kamu belum punya pesanan yang menunggu pembayaran. "
                "Ketik PESANAN untuk melihat pesananmu."
            )
        )
        return
    proof = {
        "key": inc.media_key or "",
        "sha": inc.media_sha256 or "",
        "mime": inc.mime_type or "",
    }
    if len(awaiting) == 1:
        await _attach(ctx, awaiting[0], proof)
        return
    ctx.enter(flow)
    ctx.remember(proof_pending=proof)
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


async def _attach_pending_proof(ctx: Ctx, code: str) -> None:
    proof = ctx.data.get("proof_pending")
    if not proof:
        await show_order(ctx, code)
        return
    try:
        order = await orders_repo.get_order(ctx.session, code, user_id=ctx.user.id)
    except orders_repo.OrderNotFound:
        ctx.say(_("Pesanan {code} tidak ditemukan."), code=code)
        return
    if order.status not in orders_repo.OPEN_FOR_PAYMENT:
        ctx.say(_("Pesanan {code} tidak sedang menunggu pembayaran."), code=code)
        return
    ctx.forget("proof_pending")
    await _attach(ctx, order, proof)


async def _attach(ctx: Ctx, order: Order, proof: dict[str, str]) -> None:
    row, duplicate = await orders_repo.add_proof(
        ctx.session, order, media_key=proof["key"], sha256=proof["sha"], mime_type=proof["mime"]
    )
    if ctx.conversation.flow == flow.name:  # leave "which order?"; keep any checkout
        ctx.enter(menu.flow)
    ctx.say(
        _(
            "Terima kasih! Bukti transfer untuk {code} sudah kami terima dan sedang dicek "
            "jastiper."
        ),
        code=order.code,
    )
    trip = await orders_repo.trip_of(ctx.session, order)
    jastiper_user = await ctx.session.get(User, trip.jastiper.user_id)
    if jastiper_user is None:
        return
    t = ctx.translator_for(jastiper_user)
    buyer = ctx.user.display_name or ctx.user.profile_name or "-"
    caption = t(
        _("Bukti transfer *{code}* dari {buyer}: seharusnya {amount}."),
        code=order.code,
        buyer=buyer,
        amount=t.money(order.amount_due),
    )
    if duplicate:
        caption += "\n⚠️ " + t(
            _("Gambar ini sama dengan bukti di pesanan lain. Cek dengan teliti.")
        )
    if proof["mime"] == "application/pdf":
        ctx.send_to(jastiper_user, replies.document(proof["key"], f"{order.code}.pdf", caption))
    else:
        ctx.send_to(jastiper_user, replies.image(proof["key"], caption))
    ctx.send_to(
        jastiper_user,
        replies.buttons(
            t(_("Setujui pembayaran {code}?"), code=order.code),
            [
                (t(_("Setujui")), ProofTap("approve", row.id, 0)),
                (t(_("Tolak")), ProofTap("reject", row.id, 0)),
            ],
        ),
    )


async def on_review(ctx: Ctx) -> None:
    """The jastiper approves or rejects a proof (with a reason from a short list)."""
    tap = ctx.incoming.tap
    assert isinstance(tap, ProofTap)
    found = await _reviewable(ctx, tap.proof_id)
    if found is None:
        return
    proof, order, trip, buyer = found
    bt = ctx.translator_for(buyer)
    if tap.action in ("approve", "why") and ctx.conversation.flow == flow.name:
        ctx.forget("reject_proof")
        ctx.enter(menu.flow)  # no typed reason expected any more
    if tap.action == "approve":
        _approve(proof, order, trip)
        proof.reviewed_at = ctx.now
        ctx.say(_("Pembayaran {code} disetujui. Pembeli sudah dikabari."), code=order.code)
        ctx.send_to(
            buyer,
            replies.text(
                bt(
                    _(
                        "Pembayaran untuk pesanan {code} sudah dikonfirmasi jastiper. "
                        "Terima kasih! 🙏"
                    ),
                    code=order.code,
                )
            ),
        )
    elif tap.action == "reject":
        ctx.enter(flow)
        ctx.remember(reject_proof=proof.id)
        ctx.fire("ask_reject_reason")
        ctx.reply(
            replies.buttons(
                ctx.t(
                    _("Kenapa bukti {code} ditolak? Ketuk alasan atau ketik sendiri."),
                    code=order.code,
                ),
                [
                    (ctx.t(text), ProofTap("why", proof.id, n))
                    for n, text in REJECT_REASONS.items()
                ],
            )
        )
    elif tap.action == "why":
        await _reject(ctx, proof, order, buyer, REJECT_REASONS.get(tap.reason, REJECT_REASONS[2]))


async def on_reject_text(ctx: Ctx) -> None:
    """A rejection reason the jastiper typed instead of tapping one."""
    proof_id = ctx.data.get("reject_proof")
    ctx.forget("reject_proof")
    ctx.enter(menu.flow)
    found = await _reviewable(ctx, int(proof_id or 0))
    if found is None:
        return
    proof, order, _trip, buyer = found
    await _reject(ctx, proof, order, buyer, " ".join(ctx.incoming.text.split())[:200])


async def _reviewable(ctx: Ctx, proof_id: int) -> tuple[PaymentProof, Order, Trip, User] | None:
    """The proof, its order, trip and buyer — if this user is the trip's jastiper and the
    proof still awaits review; otherwise answers and returns None."""
    proof = await orders_repo.get_proof(ctx.session, proof_id)
    order = await orders_repo.get_order_by_id(ctx.session, proof.order_id) if proof else None
    trip = await orders_repo.trip_of(ctx.session, order) if order else None
    jastiper = await approved_jastiper(ctx.session, ctx.user.id)
    if (
        proof is None
        or order is None
        or trip is None
        or jastiper is None
        or (trip.jastiper_id != jastiper.id)
    ):
        await menu.not_understood(ctx)
        return None
    if proof.status != ProofStatus.SUBMITTED.value:
        ctx.say(_("Bukti untuk {code} sudah diproses sebelumnya."), code=order.code)
        return None
    buyer = await ctx.session.get(User, order.user_id)
    assert buyer is not None
    return proof, order, trip, buyer


async def _reject(ctx: Ctx, proof: PaymentProof, order: Order, buyer: User, reason: str) -> None:
    """Rejects a proof: the order awaits payment again and the buyer is told why."""
    bt = ctx.translator_for(buyer)
    proof.status = ProofStatus.REJECTED.value
    proof.reject_reason = reason
    proof.reviewed_at = ctx.now
    order.status = (
        OrderStatus.AWAITING_BALANCE.value
        if proof.kind == "balance"
        else OrderStatus.AWAITING_PAYMENT.value
    )
    ctx.say(_("Bukti {code} ditolak. Pembeli diminta mengirim ulang."), code=order.code)
    ctx.send_to(
        buyer,
        replies.text(
            bt(
                _(
                    "Bukti transfer untuk {code} ditolak jastiper: {reason}. Kirim foto "
                    "bukti yang benar di sini ya (transfer tepat {amount})."
                ),
                code=order.code,
                reason=bt(reason),
                amount=bt.money(order.amount_due),
            )
        ),
    )


def _approve(proof: PaymentProof, order: Order, trip: Trip) -> None:
    proof.status = ProofStatus.APPROVED.value
    if proof.kind == "balance" or trip.payment_type != PaymentType.DP.value:
        order.status = OrderStatus.PAID.value
    else:
        order.status = OrderStatus.DP_PAID.value


flow = Flow(
    "orders",
    State,
    TRANSITIONS,
    State.IDLE,
    on_text={State.ASK_QUESTION: on_question_text, State.REJECT_REASON: on_reject_text},
    on_tap=on_tap,
)

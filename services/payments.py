"""Payments: a buyer's proof of transfer, the jastiper's review, and the DP balance bill.

Attaching a proof forwards it to the trip's jastiper with *Setujui* / *Tolak*;
approving or rejecting tells the buyer. A proof leaves review with one conditional
update, so two taps (or the admin panel and chat) cannot both settle it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services import amounts, notify, orders, payqris, replies
from services.errors import InvalidMove, NotAllowed, NotFound
from services.payloads import ProofTap
from storage.models import (
    Order,
    OrderGroup,
    OrderStatus,
    PaymentProof,
    PaymentType,
    ProofStatus,
    Trip,
    User,
)
from storage.repo import audit, jastipers, outbox, users
from storage.repo import orders as orders_repo
from storage.repo import panel as panel_repo

PROOF_TEXT = {
    ProofStatus.SUBMITTED.value: _("sedang dicek"),
    ProofStatus.APPROVED.value: _("disetujui"),
    ProofStatus.REJECTED.value: _("ditolak"),
}
# a DP order's balance is billed whether or not the goods were bought yet
BALANCE_FROM = (OrderStatus.DP_PAID.value, OrderStatus.BOUGHT.value)
REJECT_REASONS = {
    1: _("Nominal tidak sesuai"),
    2: _("Bukti tidak jelas"),
    3: _("Dana belum masuk"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Upload:
    """A checked, stored file: where it is, its fingerprint and its type."""

    key: str
    sha256: str
    mime_type: str


@dataclasses.dataclass(frozen=True, slots=True)
class Review:
    """A proof awaiting review with everything around it."""

    proof: PaymentProof
    order: Order
    trip: Trip
    buyer: User


async def attach_proof(session: AsyncSession, order: Order, upload: Upload, buyer: User) -> None:
    """Attach a proof to an order awaiting payment and forward it to the jastiper with
    approve / reject buttons (flagged when the same picture paid another order).

    Raises:
        InvalidMove: the order no longer awaits a payment.
    """
    kind = "balance" if order.status == OrderStatus.AWAITING_BALANCE.value else "full"
    if order.status not in OrderGroup.OPEN_FOR_PAYMENT or not await orders.move(
        session, order, OrderStatus.PROOF_SUBMITTED
    ):
        raise InvalidMove(_("Pesanan {code} tidak sedang menunggu pembayaran."), code=order.code)
    proof = await orders_repo.insert_proof(
        session,
        order_id=order.id,
        kind=kind,
        media_key=upload.key,
        content_sha256=upload.sha256,
        mime_type=upload.mime_type,
        status=ProofStatus.SUBMITTED.value,
    )
    duplicate = await orders_repo.proof_seen_elsewhere(session, upload.sha256, order.id)
    trip = await orders_repo.trip_of(session, order)
    owner = await users.get_user(session, trip.jastiper.user_id)
    if owner is None:
        return
    t = notify.translator(owner)
    caption = t(
        _("Bukti transfer *{code}* dari {buyer}: seharusnya {amount}."),
        code=order.code,
        buyer=buyer.display_name or buyer.profile_name or "-",
        amount=t.money(order.amount_due),
    )
    if duplicate:
        caption += "\n⚠️ " + t(
            _("Gambar ini sama dengan bukti di pesanan lain. Cek dengan teliti.")
        )
    if upload.mime_type == "application/pdf":
        notify.tell(session, owner, replies.document(upload.key, f"{order.code}.pdf", caption))
    else:
        notify.tell(session, owner, replies.image(upload.key, caption))
    notify.tell(
        session,
        owner,
        replies.buttons(
            t(_("Setujui pembayaran {code}?"), code=order.code),
            [
                (t(_("Setujui")), ProofTap("approve", proof.id, 0)),
                (t(_("Tolak")), ProofTap("reject", proof.id, 0)),
            ],
        ),
    )


async def proofs_of(session: AsyncSession, order: Order) -> list[PaymentProof]:
    """The transfer proofs sent for an order, oldest first."""
    return await orders_repo.proofs_of(session, order.id)


async def proof(session: AsyncSession, proof_id: int) -> PaymentProof | None:
    """Any proof by id (the admin panel's image link; the reviewer's rights are the
    caller's to check)."""
    return await orders_repo.get_proof(session, proof_id)


async def reused(session: AsyncSession, proofs: Iterable[PaymentProof]) -> dict[int, list[str]]:
    """The proofs among ``proofs`` whose picture was also sent as the proof of another
    order, each with those orders' codes (the warning :func:`attach_proof` gives the
    jastiper in chat), for wherever a proof is shown."""
    return await panel_repo.reused_proofs(session, proofs)


async def reviewable(session: AsyncSession, proof_id: int, reviewer: User | None) -> Review:
    """The proof with its order, trip and buyer, if it still awaits review and the
    reviewer is the trip's jastiper (``reviewer`` None: an admin, who may review any).

    Raises:
        NotFound: no such proof, or not the reviewer's trip.
        NotAllowed: it was reviewed already.
    """
    proof = await orders_repo.get_proof(session, proof_id)
    order = await orders_repo.get_order_by_id(session, proof.order_id) if proof else None
    trip = await orders_repo.trip_of(session, order) if order else None
    if proof is None or order is None or trip is None:
        raise NotFound(_("Bukti transfer itu tidak ditemukan."))
    if reviewer is not None:
        jastiper = await jastipers.approved(session, reviewer.id)
        if jastiper is None or trip.jastiper_id != jastiper.id:
            raise NotFound(_("Bukti transfer itu tidak ditemukan."))
    if proof.status != ProofStatus.SUBMITTED.value:
        raise NotAllowed(_("Bukti untuk {code} sudah diproses sebelumnya."), code=order.code)
    buyer = await users.get_user(session, order.user_id)
    assert buyer is not None
    return Review(proof, order, trip, buyer)


async def approve(
    session: AsyncSession,
    review: Review,
    now: dt.datetime,
    *,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
) -> None:
    """Approve a proof: the order is paid (or its DP is), and the buyer is told."""
    proof, order, trip = review.proof, review.order, review.trip
    paid_in_full = proof.kind == "balance" or trip.payment_type != PaymentType.DP.value
    to = OrderStatus.PAID.value if paid_in_full else OrderStatus.DP_PAID.value
    async with outbox.savepoint(session):  # the proof and its order move together, or neither
        if not await orders_repo.settle_proof(
            session,
            proof,
            (ProofStatus.SUBMITTED.value,),
            ProofStatus.APPROVED.value,
            reviewed_at=now,
        ):
            raise NotAllowed(_("Bukti untuk {code} sudah diproses sebelumnya."), code=order.code)
        if not await orders.move(session, order, to, paid=order.paid + order.amount_due):
            raise InvalidMove(
                _("Pesanan {code} sedang \u201c{status}\u201d, jadi belum bisa diubah ke sini."),
                code=order.code,
                status=orders.status_label(order.status),
            )
    audit.record(
        session,
        "proof.approve",
        actor_user_id=actor_user_id,
        actor_admin_id=actor_admin_id,
        trip_id=trip.id,
        order=order.code,
    )
    notify.say(session, review.buyer, orders.BUYER_TEXT[to], code=order.code)


async def reject(
    session: AsyncSession,
    review: Review,
    reason: str,
    now: dt.datetime,
    *,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
) -> None:
    """Reject a proof: the order awaits payment again and the buyer is told why.
    ``reason``: a catalogue msgid from :data:`REJECT_REASONS` or the reviewer's words."""
    proof, order = review.proof, review.order
    if not await orders_repo.settle_proof(
        session,
        proof,
        (ProofStatus.SUBMITTED.value,),
        ProofStatus.REJECTED.value,
        reject_reason=reason,
        reviewed_at=now,
    ):
        raise NotAllowed(_("Bukti untuk {code} sudah diproses sebelumnya."), code=order.code)
    back = (
        OrderStatus.AWAITING_BALANCE.value
        if proof.kind == "balance"
        else OrderStatus.AWAITING_PAYMENT.value
    )
    await orders.move(session, order, back)
    audit.record(
        session,
        "proof.reject",
        actor_user_id=actor_user_id,
        actor_admin_id=actor_admin_id,
        trip_id=order.trip_id,
        order=order.code,
    )
    bt = notify.translator(review.buyer)
    notify.say(
        session,
        review.buyer,
        _(
            "Bukti transfer untuk {code} ditolak jastiper: {reason}. Kirim foto "
            "bukti yang benar di sini ya (transfer tepat {amount})."
        ),
        code=order.code,
        reason=bt(reason),
        amount=bt.money(order.amount_due),
    )


def _tell_balance(
    session: AsyncSession, buyer: User, trip: Trip, order: Order, *, dp_paid: int, bought: bool
) -> None:
    """The balance bill: words that match the order's status (bought only after
    ``/bought``), shipping only once it is billed."""
    bt = notify.translator(buyer)
    head = (
        _("Barang untuk pesanan {code} sudah dibelikan! Rincian:")
        if bought
        else _("Tagihan pelunasan pesanan {code}. Rincian:")
    )
    shipping = (
        bt(_("Ongkir: {amount}"), amount=bt.money(order.shipping))
        if order.shipping
        else bt(_("Ongkir: belum ditagih (menyusul)"))
    )
    lines = [
        bt(head, code=order.code),
        bt(_("Subtotal: {amount}"), amount=bt.money(order.subtotal)),
        bt(_("Fee jastip: {amount}"), amount=bt.money(order.fee)),
        shipping,
        bt(_("Total: {amount}"), amount=bt.money(order.total)),
        bt(_("DP sudah dibayar: {amount}"), amount=bt.money(dp_paid)),
        "",
        bt(
            _(
                "Transfer pelunasan *tepat {amount}* ke {bank} {account} a.n. {holder} "
                "sebelum {deadline}, lalu kirim foto buktinya di sini."
            ),
            amount=bt.money(order.amount_due),
            bank=trip.bank_name or "-",
            account=trip.bank_account_number or "-",
            holder=trip.bank_account_name or "-",
            deadline=bt.datetime(order.payment_deadline),
        ),
    ]
    notify.tell(session, buyer, replies.text("\n".join(lines)))


async def bill_balance(
    session: AsyncSession,
    trip: Trip,
    now: dt.datetime,
    *,
    actor_user_id: int | None = None,
    media: Any = None,
) -> int:
    """Ask every buyer whose DP is paid for the balance, with the breakdown and a new
    unique amount (and, given the media store, the jastiper's QRIS for it); returns how
    many were billed.

    Raises:
        NotAllowed: the trip is not a DP trip.
    """
    if trip.payment_type != PaymentType.DP.value:
        raise NotAllowed(
            _("Trip {code} bukan trip DP: pembeli sudah bayar lunas."), code=trip.code
        )
    billed = 0
    for order in await orders_repo.trip_orders(session, trip.id, BALANCE_FROM, limit=None):
        dp_paid = amounts.received(order) - order.unique_cents  # goods paid, digits aside
        if order.total <= dp_paid:
            continue  # paid off, or items not found (/refund) left nothing to pay
        bought = order.status == OrderStatus.BOUGHT.value
        unique = orders.unique_amount()
        deadline = now + dt.timedelta(hours=trip.payment_window_hours)
        if not await orders_repo.move(  # a paid order is billed by /ongkir, not here
            session,
            order,
            (order.status,),
            OrderStatus.AWAITING_BALANCE.value,
            amount_due=order.total - dp_paid + unique,
            unique_cents=unique,
            payment_deadline=deadline,
        ):
            continue
        billed += 1
        buyer = await users.get_user(session, order.user_id)
        if buyer is not None:
            _tell_balance(session, buyer, trip, order, dp_paid=dp_paid, bought=bought)
            await payqris.offer(session, media, buyer, trip, order)
    audit.record(
        session, "trip.balance", actor_user_id=actor_user_id, trip_id=trip.id, orders=billed
    )
    return billed


async def confirm_by_statement(
    session: AsyncSession,
    order: Order,
    upload: Upload,
    now: dt.datetime,
    *,
    actor_user_id: int | None = None,
) -> None:
    """A credit on the jastiper's bank statement paid this order: approve it exactly as
    the jastiper's *Setujui* would (the buyer is told the same way). A proof awaiting
    review is approved; an order awaiting payment gets the statement line as its proof.

    Raises:
        InvalidMove / NotAllowed: the order no longer awaits a payment (another door won).
    """
    proof = None
    if order.status == OrderStatus.PROOF_SUBMITTED.value:
        submitted = [
            p
            for p in await orders_repo.proofs_of(session, order.id)
            if p.status == ProofStatus.SUBMITTED.value
        ]
        proof = submitted[-1] if submitted else None
    if proof is None:
        kind = "balance" if order.status == OrderStatus.AWAITING_BALANCE.value else "full"
        if order.status not in OrderGroup.OPEN_FOR_PAYMENT or not await orders.move(
            session, order, OrderStatus.PROOF_SUBMITTED
        ):
            raise InvalidMove(
                _("Pesanan {code} tidak sedang menunggu pembayaran."), code=order.code
            )
        proof = await orders_repo.insert_proof(
            session,
            order_id=order.id,
            kind=kind,
            media_key=upload.key,
            content_sha256=upload.sha256,
            mime_type=upload.mime_type,
            status=ProofStatus.SUBMITTED.value,
        )
    await approve(
        session, await reviewable(session, proof.id, None), now, actor_user_id=actor_user_id
    )

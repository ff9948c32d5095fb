"""Trips: opening one, its join link and QR, closing and reopening, joining as a buyer,
and the figures a jastiper sees."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import secrets
import urllib.parse
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services import amounts, links, notify
from services.errors import InvalidInput, NotAllowed, NotFound
from storage import trace
from storage.models import (
    Jastiper,
    Order,
    OrderGroup,
    OrderStatus,
    Participant,
    PaymentType,
    Trip,
    TripStatus,
    User,
)
from storage.repo import audit, jastipers
from storage.repo import orders as orders_repo
from storage.repo import panel as panel_repo
from storage.repo import trips as repo

SUMMARY_EVERY = ("daily", "weekly", "off")
CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,15}$")


def join_link(business_number: str, code: str) -> str:
    """The ``wa.me`` link that pre-fills ``JOIN <CODE>``."""
    return f"https://wa.me/{business_number}?text={urllib.parse.quote(f'JOIN {code}')}"


def qr_png(data: str) -> bytes:
    """A QR code of ``data`` as PNG bytes (for an Instagram story)."""
    import qrcode  # heavy: loaded the first time a trip is opened, not at start-up

    image = qrcode.make(data, box_size=10, border=3)
    buf = io.BytesIO()
    image.save(buf)
    return buf.getvalue()


@dataclasses.dataclass(frozen=True, slots=True)
class Fee:
    per_item: int = 0
    percent: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Bank:
    name: str
    number: str
    holder: str


BANK_RE = re.compile(
    r"(\w[\w ]{1,20}?)\s+([\d\- ]{6,30})\s+(?:a\.?n\.?|an)\s+(.{2,100})", re.IGNORECASE
)


def parse_bank(text: str) -> Bank:
    """``BCA 1234567890 a.n. Tina Wijaya``.

    Raises:
        InvalidInput: it does not read as bank, number and holder.
    """
    m = BANK_RE.fullmatch(" ".join(text.split()))
    if not m:
        raise InvalidInput(_("Tulis seperti: BCA 1234567890 a.n. Tina Wijaya"))
    return Bank(m.group(1).strip().upper(), re.sub(r"[\s\-]", "", m.group(2)), m.group(3).strip())


async def _new_code(session: AsyncSession, title: str) -> str:
    letters = re.sub(r"[^A-Z]", "", title.upper().replace("JASTIP", ""))[:4] or "TRIP"
    for _attempt in range(50):
        code = f"{letters}{secrets.randbelow(90) + 10}"
        if not await repo.code_taken(session, code):
            return code
    return "T" + secrets.token_hex(4).upper()


async def create_trip(
    session: AsyncSession,
    jastiper: Jastiper,
    *,
    title: str,
    destination: str,
    closes_on: dt.date | None,
    payment: str = PaymentType.FULL.value,
    dp_percent: int | None = None,
    fee: Fee = Fee(),
    bank: Bank | None = None,
) -> Trip:
    """Open a trip with a fresh code and its short link; a new bank account is
    remembered for next time."""
    if bank is not None:
        jastiper.bank_name = bank.name
        jastiper.bank_account_number = bank.number
        jastiper.bank_account_name = bank.holder
    trip = await repo.add(
        session,
        jastiper_id=jastiper.id,
        code=await _new_code(session, title),
        title=title,
        destination=destination,
        closes_on=closes_on,
        status=TripStatus.OPEN.value,
        payment_type=payment,
        dp_percent=dp_percent,
        fee_per_item=fee.per_item,
        fee_percent=fee.percent,
        bank_name=jastiper.bank_name,
        bank_account_number=jastiper.bank_account_number,
        bank_account_name=jastiper.bank_account_name,
    )
    await links.ensure_for_trip(session, trip)
    audit.record(
        session, "trip.create", actor_user_id=jastiper.user_id, trip_id=trip.id, code=trip.code
    )
    return trip


async def owned_trip(session: AsyncSession, jastiper: Jastiper, code: str | None) -> Trip:
    """The jastiper's trip with that code.

    Raises:
        InvalidInput: no code given.
        NotFound: no such trip among theirs.
    """
    if not code:
        raise InvalidInput(_("Sebutkan kode trip-nya, contoh: /trip DEMO"))
    try:
        trip = await repo.get_trip_by_code(session, code)
    except repo.TripNotFound:
        trip = None
    if trip is None or trip.jastiper_id != jastiper.id:
        raise NotFound(
            _("Trip {code} tidak ada di daftar trip-mu. Ketik /trips."), code=code.upper()[:20]
        )
    trace.bind(tripId=trip.id)  # the jastiper's command is about it
    return trip


async def set_status(
    session: AsyncSession,
    trip: Trip,
    status: str,
    *,
    actor_user_id: int | None = None,
    actor_admin_id: int | None = None,
) -> None:
    """Close a trip to new orders, or open it again. Buyers are not told (from chat or
    the panel alike); when an admin does it, the trip's jastiper is told (in chat they
    did it themselves and got the answer)."""
    trip.status = status
    audit.record(
        session,
        f"trip.{status}",
        actor_user_id=actor_user_id,
        actor_admin_id=actor_admin_id,
        trip_id=trip.id,
        code=trip.code,
    )
    if actor_admin_id is None:
        return
    owner = await jastipers.owner(session, trip.jastiper_id)
    if owner is not None:
        notify.say(session, owner, ADMIN_STATUS_TEXT[status], code=trip.code)


# what the jastiper is told when an admin closes or reopens their trip from the panel
ADMIN_STATUS_TEXT = {
    TripStatus.CLOSED.value: _(
        "Admin Jastipin menutup trip {code}: tidak ada pesanan baru. Pesanan yang sudah "
        "masuk tetap berjalan."
    ),
    TripStatus.OPEN.value: _("Admin Jastipin membuka lagi trip {code}: pembeli bisa memesan."),
}


async def set_summary(
    session: AsyncSession, trip: Trip, every: str, *, actor_user_id: int | None = None
) -> None:
    """How often the trip's buyers get the automatic summary: daily, weekly or off."""
    if every not in SUMMARY_EVERY:
        raise ValueError(every)
    trip.summary_every = every
    audit.record(
        session, "trip.summary", actor_user_id=actor_user_id, trip_id=trip.id, every=every
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Stats:
    participants: int
    orders: int  # live ones: not cancelled, not expired
    revenue: int  # money received, refunds taken off (services/amounts.py)


async def stats(session: AsyncSession, trip: Trip) -> Stats:
    participants = await repo.count_participants(session, trip.id)
    rows = [
        r
        for r in await orders_repo.totals_by_status(session, trip.id)
        if r[0] not in OrderGroup.CLOSED
    ]
    money = amounts.figures(await panel_repo.orders_money(session, trip.id))
    return Stats(
        participants=participants,
        orders=sum(n for _s, n, _t in rows),
        revenue=money.received,  # a DP counts, a refund is taken off: as the rows show
    )


# --- buyers --------------------------------------------------------------------------------


async def find_open(session: AsyncSession, code: str) -> Trip:
    """The trip a buyer wants to join.

    Raises:
        NotFound: no trip with that code.
        NotAllowed: it is closed.
    """
    trip = await by_code(session, code) if CODE_RE.match(code) else None
    if trip is None:
        raise NotFound(
            _(
                "Kode trip *{code}* tidak ditemukan. Cek lagi kodenya di link dari "
                "jastiper-mu ya, contoh: JOIN DEMO"
            ),
            code=code[:20],
        )
    if trip.status != TripStatus.OPEN.value:
        raise NotAllowed(
            _(
                "Trip *{title}* sudah ditutup dan tidak menerima pesanan baru. Tanyakan "
                "trip berikutnya ke jastiper-mu ya."
            ),
            title=trip.title,
        )
    return trip


async def by_code(session: AsyncSession, code: str) -> Trip | None:
    try:
        return await repo.get_trip_by_code(session, code)
    except repo.TripNotFound:
        return None


async def join(session: AsyncSession, trip: Trip, buyer: User) -> Participant:
    """Make the buyer a participant (idempotent)."""
    participant, _new = await repo.join_trip(session, trip, buyer.id)
    trace.bind(tripId=trip.id, participantId=participant.id)  # on the lines that follow
    return participant


def set_consent(participant: Participant, consent: bool, now: dt.datetime) -> None:
    """Trip updates yes or no (no: only messages about their own orders)."""
    participant.consent_at = now if consent else None
    participant.unsubscribed_at = None if consent else now


async def joined_trips(session: AsyncSession, buyer: User) -> list[Trip]:
    """The buyer's trips, the most recently active first."""
    return await repo.user_trips(session, buyer.id)


async def jastiper_trips(
    session: AsyncSession, jastiper: Jastiper, *, open_only: bool = False
) -> list[Trip]:
    status = TripStatus.OPEN.value if open_only else None
    return await repo.of_jastiper(session, jastiper.id, status=status)


async def jastiper_name(session: AsyncSession, trip: Trip) -> str:
    jastiper = await jastipers.get(session, trip.jastiper_id)
    return jastiper.name if jastiper else "-"


async def of_order(session: AsyncSession, order: Order) -> Trip:
    """The trip an order belongs to, its jastiper loaded."""
    return await orders_repo.trip_of(session, order)


async def trip_orders(
    session: AsyncSession, trip: Trip, statuses: Iterable[str] | None, *, limit: int, offset: int
) -> list[Order]:
    """A page of the trip's orders, newest first, optionally only in some statuses."""
    return await orders_repo.trip_orders(session, trip.id, statuses, limit=limit, offset=offset)


async def jastiper_overview(
    session: AsyncSession, jastiper: Jastiper, since: dt.datetime
) -> tuple[int, int]:
    """(orders whose transfer proof waits for review, orders placed since ``since``)
    across the jastiper's trips."""
    return await orders_repo.jastiper_overview(
        session, jastiper.id, since, OrderStatus.PROOF_SUBMITTED.value
    )


async def jastiper_orders(
    session: AsyncSession,
    jastiper: Jastiper,
    *,
    status: str | None = None,
    since: dt.datetime | None = None,
) -> list[Order]:
    """The latest orders across the jastiper's trips: in one status or placed since a time."""
    return await orders_repo.jastiper_orders(session, jastiper.id, status=status, since=since)


async def purge_unsubscribed(session: AsyncSession, now: dt.datetime, *, days: int = 90) -> int:
    """Remove participants who unsubscribed more than ``days`` ago (PII retention).
    Their orders stay (bookkeeping); only the trip membership goes."""
    return await repo.purge_unsubscribed(session, now - dt.timedelta(days=days))

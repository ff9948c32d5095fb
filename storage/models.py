"""SQLAlchemy 2 models for the whole Jastipin domain.

Types are chosen to work on SQLite and Postgres alike: integers for money (Rupiah),
``JSON`` for free-form data, timezone-aware timestamps stored as UTC.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.sealed import HashedId, SealedJSON, SealedText

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that always comes back timezone-aware in UTC (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use storage.models.utcnow()")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON}

    def __repr__(self) -> str:
        # the row's id only: never a column that could hold a name, a number or a text
        return f"<{type(self).__name__} {self.__dict__.get('id')}>"


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


# --- people -------------------------------------------------------------------------


class Locale(enum.StrEnum):
    ID = "id"
    EN = "en"


class User(TimestampMixin, Base):
    """Anyone who writes to the official number. Keyed by WhatsApp's business-scoped
    user id when the update carries one, else by the phone number's keyed hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bsuid: Mapped[str | None] = mapped_column(String(128), unique=True)
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    profile_name: Mapped[str | None] = mapped_column(SealedText)
    display_name: Mapped[str | None] = mapped_column(SealedText)
    locale: Mapped[str] = mapped_column(String(5), default=Locale.ID.value)
    last_inbound_at: Mapped[dt.datetime | None]
    opted_out_at: Mapped[dt.datetime | None]
    # Meta answered 131050: the user stopped marketing messages in WhatsApp itself
    marketing_opted_out_at: Mapped[dt.datetime | None]
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)

    jastiper: Mapped[Jastiper | None] = relationship(back_populates="user", uselist=False)


class JastiperStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"  # an admin took the commands away for now (services/accounts.py)


class Jastiper(TimestampMixin, Base):
    __tablename__ = "jastipers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # the public page ``/j/<slug>``: made from the name once, unique, kept when the name
    # changes (a link in an Instagram bio must not break)
    slug: Mapped[str | None] = mapped_column(String(48), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=JastiperStatus.APPROVED.value)
    bank_name: Mapped[str | None] = mapped_column(String(100))
    bank_account_number: Mapped[str | None] = mapped_column(String(64))
    bank_account_name: Mapped[str | None] = mapped_column(String(200))
    # the merchant's static QRIS (``/qris``): payment instructions carry its dynamic QRIS
    # for the exact amount (services/payqris.py); sealed, it names the merchant
    qris: Mapped[str | None] = mapped_column(SealedText)
    # the account QRIS payments settle into (``/qris rekening BANK NOMOR``): a static QRIS
    # names the merchant and its acquirer, never the account, so the jastiper says it;
    # ``/mutasi`` takes a statement of this account like one of the trip's account
    # (services/reconcile.py)
    qris_bank_name: Mapped[str | None] = mapped_column(String(100))
    qris_account_number: Mapped[str | None] = mapped_column(String(64))
    # the public page's profile, set from chat with /profile: sealed like every text a
    # person writes about themselves; the avatar is a media key (like a product photo)
    bio: Mapped[str | None] = mapped_column(SealedText)
    links: Mapped[list[str] | None] = mapped_column(SealedJSON)
    avatar_key: Mapped[str | None] = mapped_column(String(300))

    user: Mapped[User] = relationship(back_populates="jastiper")
    trips: Mapped[list[Trip]] = relationship(back_populates="jastiper")


class AdminUser(TimestampMixin, Base):
    """A web-panel login (separate from WhatsApp users)."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class AdminSession(Base):
    """A logged-in admin's web session. Only a SHA-256 of the random id in the cookie is
    stored, so a copy of the database opens no session."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]


class JastiperWebLink(Base):
    """A one-time link a jastiper asked for with ``/web``: only a SHA-256 of its random
    token is kept; it opens the jastiper's own panel once (``used_at``), before
    ``expires_at`` (10 minutes)."""

    __tablename__ = "jastiper_web_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    jastiper_id: Mapped[int] = mapped_column(ForeignKey("jastipers.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class JastiperWebSession(Base):
    """A jastiper's web session, started by opening a one-time link (the same rules as
    an admin's session: only a SHA-256 of the cookie's id, idle and absolute timeouts)."""

    __tablename__ = "jastiper_web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    jastiper_id: Mapped[int] = mapped_column(ForeignKey("jastipers.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]


class AdminLoginThrottle(Base):
    """Admin login attempts per account, per account and network, and per client address
    (each a digest, never the address itself), counted *before* the password is checked
    and given back when it matches: 5 lock the key for a minute, each further one doubles
    the wait. Kept in the database so a restart or a second process does not reset it."""

    __tablename__ = "admin_login_throttle"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[dt.datetime | None]


# --- trips and catalogue ---------------------------------------------------------------


class TripStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    ARCHIVED = "archived"


class PaymentType(enum.StrEnum):
    FULL = "full"
    DP = "dp"


class Trip(TimestampMixin, Base):
    __tablename__ = "trips"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    jastiper_id: Mapped[int] = mapped_column(ForeignKey("jastipers.id"), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str] = mapped_column(String(200))
    closes_on: Mapped[dt.date | None]
    status: Mapped[str] = mapped_column(String(16), default=TripStatus.OPEN.value)
    payment_type: Mapped[str] = mapped_column(String(8), default=PaymentType.FULL.value)
    dp_percent: Mapped[int | None]
    fee_per_item: Mapped[int] = mapped_column(Integer, default=0)
    fee_percent: Mapped[int] = mapped_column(Integer, default=0)
    bank_name: Mapped[str | None] = mapped_column(String(100))
    bank_account_number: Mapped[str | None] = mapped_column(String(64))
    bank_account_name: Mapped[str | None] = mapped_column(String(200))
    transfer_note: Mapped[str | None] = mapped_column(Text)
    payment_window_hours: Mapped[int] = mapped_column(Integer, default=24)
    # the scheduled summary to participants: "daily", "weekly" or "off"
    summary_every: Mapped[str] = mapped_column(
        String(8), default="weekly", server_default="weekly"
    )

    jastiper: Mapped[Jastiper] = relationship(back_populates="trips")
    products: Mapped[list[Product]] = relationship(
        back_populates="trip", order_by="Product.position"
    )


class Product(TimestampMixin, Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("trip_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    image_key: Mapped[str | None] = mapped_column(String(300))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    # set when the gathered new-product notice to the trip's participants was made
    announced_at: Mapped[dt.datetime | None]

    trip: Mapped[Trip] = relationship(back_populates="products")


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"  # on the list, in line
    OFFERED = "offered"  # a freed unit is held for them until ``hold_until``
    ORDERED = "ordered"  # they ordered the product: off the list
    LAPSED = "lapsed"  # their hold ran out: off the list (they may join again)


class WaitlistEntry(TimestampMixin, Base):
    """A buyer waiting for a sold-out product (one row per product and buyer; joining
    again after it lapsed puts the same row back at the end of the line)."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (UniqueConstraint("product_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(
        String(16), default=WaitlistStatus.WAITING.value, index=True
    )
    joined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # the place in line
    # the units taken from the product's stock for this buyer while the offer holds
    held: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    offered_at: Mapped[dt.datetime | None]
    hold_until: Mapped[dt.datetime | None]


class Participant(TimestampMixin, Base):
    """A user who joined a trip."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("trip_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    consent_at: Mapped[dt.datetime | None]
    unsubscribed_at: Mapped[dt.datetime | None]
    last_active_at: Mapped[dt.datetime | None]

    trip: Mapped[Trip] = relationship()
    user: Mapped[User] = relationship()


class Address(TimestampMixin, Base):
    """A buyer's saved shipping address (PII: encrypted)."""

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    data_enc: Mapped[bytes] = mapped_column(LargeBinary)


# --- orders and payments ---------------------------------------------------------------


class OrderStatus(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PROOF_SUBMITTED = "proof_submitted"
    PAID = "paid"
    DP_PAID = "dp_paid"
    AWAITING_BALANCE = "awaiting_balance"
    BOUGHT = "bought"
    SHIPPED = "shipped"
    DONE = "done"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class OrderGroup:
    """Named groups of order statuses, defined only here (storage filters by them too):
    services and both doors use these and spell no group of their own
    (``tests/test_architecture.py``). Which move is allowed from where is
    ``services/orders.py`` ``MOVES``."""

    # a transfer is asked for now: the order, or the balance of a DP order
    OPEN_FOR_PAYMENT = (OrderStatus.AWAITING_PAYMENT.value, OrderStatus.AWAITING_BALANCE.value)
    # money still owed, a proof perhaps under review (the panel's "unpaid")
    AWAITING_MONEY = (
        OrderStatus.AWAITING_PAYMENT.value,
        OrderStatus.PROOF_SUBMITTED.value,
        OrderStatus.AWAITING_BALANCE.value,
    )
    # some money confirmed (a DP, or all of it)
    PAID = (
        OrderStatus.PAID.value,
        OrderStatus.BOUGHT.value,
        OrderStatus.SHIPPED.value,
        OrderStatus.DONE.value,
        OrderStatus.DP_PAID.value,
    )
    # paid, not on its way yet
    PAID_NOT_SHIPPED = (
        OrderStatus.PAID.value,
        OrderStatus.DP_PAID.value,
        OrderStatus.BOUGHT.value,
    )
    SHIPPED = (OrderStatus.SHIPPED.value, OrderStatus.DONE.value)
    PAID_IN_FULL = (
        OrderStatus.PAID.value,
        OrderStatus.BOUGHT.value,
        OrderStatus.SHIPPED.value,
        OrderStatus.DONE.value,
    )
    NOT_PAID_IN_FULL = (
        OrderStatus.AWAITING_PAYMENT.value,
        OrderStatus.PROOF_SUBMITTED.value,
        OrderStatus.DP_PAID.value,
        OrderStatus.AWAITING_BALANCE.value,
    )
    # over without a sale: left out of recaps, totals and trip-wide changes
    CLOSED = (OrderStatus.CANCELLED.value, OrderStatus.EXPIRED.value)


class Order(TimestampMixin, Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(
        String(24), default=OrderStatus.AWAITING_PAYMENT.value, index=True
    )
    subtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_due: Mapped[int] = mapped_column(BigInteger, default=0)
    unique_cents: Mapped[int] = mapped_column(Integer, default=0)
    payment_deadline: Mapped[dt.datetime | None]
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    expired_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    jastiper_notified_at: Mapped[dt.datetime | None]
    reminded_at: Mapped[dt.datetime | None]  # the payment reminder before the deadline
    # items the jastiper could not buy (/refund): what the buyer is owed back and has not
    # been confirmed returned yet, and what was confirmed returned (/refunded)
    refund_due: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    refunded: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # where the buyer wants a refund sent: {"provider", "number", "holder"} (PII: sealed)
    refund_account: Mapped[dict[str, Any] | None] = mapped_column(SealedJSON)
    refund_owed_at: Mapped[dt.datetime | None]  # since when the refund_due is owed
    # what was received for the order, unique digits included (every approved transfer)
    paid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    items: Mapped[list[OrderItem]] = relationship(back_populates="order")


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    name: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(SealedText)  # typed by the buyer
    # how many of ``quantity`` the jastiper could not buy (/refund); the rest count
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    order: Mapped[Order] = relationship(back_populates="items")


class ProofStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class PaymentProof(TimestampMixin, Base):
    __tablename__ = "payment_proofs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="full")  # full | dp | balance
    media_key: Mapped[str] = mapped_column(String(300))
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    mime_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=ProofStatus.SUBMITTED.value)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[dt.datetime | None]
    backed_up_at: Mapped[dt.datetime | None]


# --- conversation engine ---------------------------------------------------------------


class Conversation(Base):
    """Where a user is in a flow. One row per user; the row is the per-user lock."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    flow: Mapped[str] = mapped_column(String(32), default="menu")
    state: Mapped[str] = mapped_column(String(48), default="idle")
    data: Mapped[dict[str, Any]] = mapped_column(SealedJSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # the per-user rate limit (services/ratelimit.py), kept on the row every message
    # already locks and updates: when the user's current burst window began (Meta's
    # timestamp of its first message) and how many messages fell into it
    burst_started_at: Mapped[dt.datetime | None]
    burst_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # the choices of the last interactive message the bot sent this user in this
    # conversation, while it is current (flows/labels.py): the flow:state it was sent
    # in and [keyed digest of the normalised title, payload id] per button or row; a
    # title may hold a name, so it is never kept in clear
    choices: Mapped[dict[str, Any] | None] = mapped_column(JSON)


@dataclasses.dataclass(slots=True, repr=False)
class ConversationRow:
    """A ``conversations`` row as the flows see it (the columns of :class:`Conversation`):
    a plain row, not an ORM object, read and written back by
    ``storage/repo/conversations.py``."""

    id: int
    user_id: int
    flow: str
    state: str
    data: dict[str, Any]
    version: int
    updated_at: dt.datetime
    burst_started_at: dt.datetime | None
    burst_count: int
    # the last interactive message's choices while current (flows/labels.py)
    choices: dict[str, Any] | None = None

    def __repr__(self) -> str:
        # ids only: ``data`` holds what the person typed (an address, a name)
        return f"<ConversationRow {self.id} user={self.user_id} {self.flow}:{self.state}>"


class InboundStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class InboundUpdate(Base):
    """A webhook unit stored before Meta gets its 200. ``key`` is the ``wamid`` for
    messages; a second delivery of the same key changes nothing."""

    __tablename__ = "inbound_updates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # message | status | other
    field: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(SealedJSON)
    status: Mapped[str] = mapped_column(
        String(16), default=InboundStatus.PENDING.value, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[dt.datetime | None]
    # the X-Request-Id of the webhook that stored it: its processing logs the same id
    request_id: Mapped[str | None] = mapped_column(String(64))
    # whose unit it is, as a keyed digest of the sender (the recipient, for a status):
    # on Postgres one process at a time holds a lane (InboxLease), so a user's units
    # are parsed once and handled in order by several processes. None: a unit of no
    # user (another change), or stored before migration 0028
    lane: Mapped[str | None] = mapped_column(String(64), index=True)


class InboxLease(Base):
    """A lane of inbound units (one user's) held by one process for a while (Postgres;
    ``bot/inbox.py``): no other process parses them, and the holder handles them in the
    order they were written. Renewed while held, deleted when the lane is done; one left
    by a process that died runs out at ``until``."""

    __tablename__ = "inbox_leases"

    lane: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    until: Mapped[dt.datetime]


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(Base):
    """A reply waiting to be sent, written in the same transaction as the change that
    caused it. Sent in ``id`` order per recipient."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(SealedJSON)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[dt.datetime | None]
    wa_message_id: Mapped[str | None] = mapped_column(HashedId, index=True)
    error_code: Mapped[int | None]
    error_title: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16), default="service")
    billable: Mapped[bool] = mapped_column(Boolean, default=False)
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    broadcast_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    # what caused it, for its send's log line: the request and the trip (storage/trace.py)
    request_id: Mapped[str | None] = mapped_column(String(64))
    trip_id: Mapped[int | None] = mapped_column(BigInteger)
    # claimed first when replies queue at the number's cap: 1 for a purchase step's reply
    priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")


class MessageStatus(Base):
    """The latest delivery status Meta reported for a message we sent."""

    __tablename__ = "message_statuses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wa_message_id: Mapped[str] = mapped_column(HashedId, unique=True)
    status: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[int | None]
    error_title: Mapped[str | None] = mapped_column(Text)
    pricing_category: Mapped[str | None] = mapped_column(String(32))
    billable: Mapped[bool | None]
    tracker: Mapped[str | None] = mapped_column(String(512))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- broadcasts, audit, short links ----------------------------------------------------------


class BroadcastStatus(enum.StrEnum):
    """A broadcast's road; the allowed moves are ``services/broadcasts.py`` ``MOVES``."""

    DRAFT = "draft"  # estimated, waiting for the jastiper's yes
    QUEUED = "queued"  # confirmed, for the scheduler to hand over
    DISPATCHED = "dispatched"  # handed to the fan-out actor
    SENDING = "sending"  # deliveries written, being turned into outbox rows
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryStatus(enum.StrEnum):
    """One recipient's copy of a broadcast; the moves a fan-out makes are
    ``services/broadcasts.py`` ``DELIVERY_MOVES``, Meta's reports only move it forward
    (``storage/repo/statuses.py``)."""

    PENDING = "pending"
    QUEUED = "queued"  # an outbox row
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    SKIPPED = "skipped"  # not sent: opted out meanwhile, nothing for them, or no template


class Broadcast(TimestampMixin, Base):
    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    segment: Mapped[str] = mapped_column(String(32), default="subscribed")
    status: Mapped[str] = mapped_column(String(16), default=BroadcastStatus.DRAFT.value)
    estimated_recipients: Mapped[int] = mapped_column(Integer, default=0)
    estimated_free: Mapped[int] = mapped_column(Integer, default=0)
    estimated_paid: Mapped[int] = mapped_column(Integer, default=0)
    estimated_cost: Mapped[int] = mapped_column(BigInteger, default=0)
    metered_cost: Mapped[int] = mapped_column(BigInteger, default=0)
    finished_at: Mapped[dt.datetime | None]
    # last time the fan-out moved (dispatched, started, a batch of recipients queued): a
    # broadcast dispatched or sending that stays still is dispatched again
    progress_at: Mapped[dt.datetime | None]
    # manual (a jastiper's /broadcast), products (gathered new-product notice), summary
    kind: Mapped[str] = mapped_column(String(16), default="manual", server_default="manual")
    # Meta's category of the template used outside the 24-hour window
    category: Mapped[str] = mapped_column(
        String(16), default="marketing", server_default="marketing"
    )
    # False: only free session messages (recipients outside the window are skipped)
    allow_paid: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # scheduled broadcasts are keyed by trip and period, so a second scheduler adds nothing
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # e.g. the announced products
    # the request that confirmed it: its fan-out job logs the same id
    request_id: Mapped[str | None] = mapped_column(String(64))


class BroadcastDelivery(Base):
    __tablename__ = "broadcast_deliveries"
    __table_args__ = (UniqueConstraint("broadcast_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    outbox_id: Mapped[int | None] = mapped_column(BigInteger)
    error_code: Mapped[int | None]
    mode: Mapped[str | None] = mapped_column(String(16))  # free | template


class MessageTemplate(TimestampMixin, Base):
    """An approved WhatsApp template, by what it is for and the buyer's language.

    Configured as data (``jastipin template set``): Meta approves templates outside any
    release, so adding or renaming one is an update, not a deploy.
    """

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("purpose", "locale"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))  # broadcast | products | summary | reminder
    locale: Mapped[str] = mapped_column(String(8))  # the buyer's locale: id | en
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))  # Meta's code: id, en_US, ...
    category: Mapped[str] = mapped_column(String(16))  # marketing | utility


class MessageRate(TimestampMixin, Base):
    """What one message of a category costs (Rupiah), from ``valid_from`` on.

    The newest row not in the future wins; Meta's price changes are a new row.
    """

    __tablename__ = "message_rates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    category: Mapped[str] = mapped_column(String(16), index=True)
    rupiah: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_admin_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    trip_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ShortLink(TimestampMixin, Base):
    __tablename__ = "short_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    target: Mapped[str] = mapped_column(Text)
    hits: Mapped[int] = mapped_column(Integer, default=0)  # unused: clicks are per day below
    # a trip's short link redirects to the trip's join link (built at redirect time from
    # the business number of the day); ``target`` is kept for links without a trip
    trip_id: Mapped[int | None] = mapped_column(ForeignKey("trips.id"), index=True)


class LinkClick(Base):
    """Clicks on a short link during one day (Jakarta time), upserted by one statement a click."""

    __tablename__ = "link_clicks"

    link_id: Mapped[int] = mapped_column(ForeignKey("short_links.id"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Question(TimestampMixin, Base):
    """A buyer's question relayed to the trip's jastiper under a short reference, so that
    neither sees the other's number."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ref: Mapped[str] = mapped_column(String(12), unique=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"), index=True)
    buyer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    text: Mapped[str] = mapped_column(SealedText)  # typed by the buyer
    answered_at: Mapped[dt.datetime | None]


class StatementCredit(TimestampMixin, Base):
    """A bank statement line (a credit) that confirmed a payment (``/mutasi``): kept so
    that the same statement sent again changes nothing. ``line_key`` is the digest of the
    line (date, amount, description, running balance, occurrence)."""

    __tablename__ = "statement_credits"
    __table_args__ = (UniqueConstraint("jastiper_id", "line_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    jastiper_id: Mapped[int] = mapped_column(ForeignKey("jastipers.id"))
    line_key: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    credited_on: Mapped[dt.date]


class KeyCanary(Base):
    """A known text sealed with the PII key the database's data is sealed with: a process
    holding another key refuses to start (``storage/keycheck.py``). While ``jastipin keys
    rotate`` runs, ``next_*`` holds the same text sealed with the new key; it replaces
    ``sealed`` once every value is resealed."""

    __tablename__ = "pii_key_canary"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    next_key_id: Mapped[str | None] = mapped_column(String(32))
    next_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

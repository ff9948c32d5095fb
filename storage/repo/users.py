"""Users: found by business-scoped user id, else by the phone number's keyed hash."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import PiiCipher, normalise_phone
from storage.models import Address, Locale, User, utcnow
from storage.repo._sql import InsertIgnoring, adopt

_USERS = cast(Table, User.__table__)  # plain rows: no ORM machinery on the hot paths

# built once: every inbound message looks its user up (hot path, docs/BENCHMARKS.md)
_BY_BSUID = select(User).where(User.bsuid == bindparam("bsuid"))
_BY_PHONE = select(User).where(User.phone_hash == bindparam("hash"))


async def find_user(
    session: AsyncSession, cipher: PiiCipher, *, bsuid: str | None, wa_id: str | None
) -> User | None:
    if bsuid:
        user = (await session.execute(_BY_BSUID, {"bsuid": bsuid})).scalar_one_or_none()
        if user is not None:
            return user
    if wa_id:
        phone_hash = cipher.lookup_hash(wa_id)
        return (await session.execute(_BY_PHONE, {"hash": phone_hash})).scalar_one_or_none()
    return None


async def upsert_user(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    bsuid: str | None,
    wa_id: str | None,
    profile_name: str | None = None,
    touch_inbound: bool = True,
) -> User:
    """The user behind an update, created on first contact; attributes filled in as
    they become known (a number that appears later, a new profile name).

    Every inbound message comes through here (the hot path, docs/BENCHMARKS.md): one
    SELECT finds the user by either key; a new user is one ``INSERT … ON CONFLICT DO
    NOTHING RETURNING id`` (no savepoint, no unit-of-work flush)."""
    if not bsuid and not wa_id:
        raise ValueError("an update without any user identifier")
    phone_hash = cipher.lookup_hash(wa_id) if wa_id else None
    found = (await session.execute(_BY_EITHER, {"bsuid": bsuid, "hash": phone_hash})).scalars()
    user = _pick(found.all(), bsuid)
    if user is None:
        created = await _create(
            session, cipher, bsuid, wa_id, phone_hash, profile_name, touch_inbound
        )
        if created is not None:
            return created
        # created concurrently by another instance: take theirs
        user = await find_user(session, cipher, bsuid=bsuid, wa_id=wa_id)
        if user is None:
            raise LookupError("a user created concurrently could not be found")
    _refresh(user, cipher, bsuid, wa_id, profile_name, touch_inbound)
    return user


def _refresh(
    user: User,
    cipher: PiiCipher,
    bsuid: str | None,
    wa_id: str | None,
    profile_name: str | None,
    touch_inbound: bool,
) -> None:
    """What a message from a known user changes on their row (only what differs)."""
    _fill(user, cipher, bsuid=bsuid, wa_id=wa_id, profile_name=profile_name)
    if touch_inbound:
        now = utcnow()
        # the 24-hour window, to the minute: one UPDATE a minute per user, not one a tap
        # (an older value only ever makes the window look shorter, never longer)
        if user.last_inbound_at is None or now - user.last_inbound_at >= INBOUND_PRECISION:
            user.last_inbound_at = now


@dataclasses.dataclass(frozen=True, slots=True)
class Sender:
    """Who an inbound message is from, as the update says."""

    bsuid: str | None
    wa_id: str | None
    profile_name: str | None = None


async def upsert_users(
    session: AsyncSession, cipher: PiiCipher, senders: Sequence[Sender]
) -> list[User]:
    """:func:`upsert_user` for a batch of messages, in one SELECT and (for the new ones)
    one multi-row INSERT: the users in the order of ``senders``."""
    hashes = [cipher.lookup_hash(s.wa_id) if s.wa_id else None for s in senders]
    bsuids = [s.bsuid for s in senders if s.bsuid]
    found = (
        await session.execute(
            _BY_EITHER_MANY,
            {"bsuids": bsuids, "hashes": [h for h in hashes if h]},
        )
    ).scalars()
    by_bsuid: dict[str, User] = {}
    by_hash: dict[str, User] = {}
    for user in found.all():
        if user.bsuid:
            by_bsuid[user.bsuid] = user
        if user.phone_hash:
            by_hash[user.phone_hash] = user

    def known(i: int) -> User | None:
        s, h = senders[i], hashes[i]
        return (by_bsuid.get(s.bsuid) if s.bsuid else None) or (by_hash.get(h) if h else None)

    missing = [i for i in range(len(senders)) if known(i) is None]
    # the new users' rows, by the keys they were written with
    created: dict[tuple[str | None, str | None], User] = {}
    if missing:
        now = utcnow()
        rows: dict[tuple[str | None, str | None], dict[str, Any]] = {}
        for i in missing:
            s = senders[i]
            key = (s.bsuid or None, hashes[i])
            if key not in rows:  # the same new person twice in one batch: one row
                rows[key] = _new_row(cipher, s.bsuid, s.wa_id, hashes[i], s.profile_name, now)
        inserted = (await session.execute(_INSERT_MANY(session), list(rows.values()))).all()
        for new_id, bsuid, phone_hash in inserted:
            user = adopt(session, User(id=new_id, **rows[(bsuid, phone_hash)]))
            created[(bsuid, phone_hash)] = user
            if bsuid:
                by_bsuid[bsuid] = user
            if phone_hash:
                by_hash[phone_hash] = user
    out: list[User] = []
    for i, s in enumerate(senders):
        have = known(i)
        if have is None:  # inserted meanwhile by another instance: the one-by-one way
            have = await upsert_user(
                session, cipher, bsuid=s.bsuid, wa_id=s.wa_id, profile_name=s.profile_name
            )
        elif created.get((s.bsuid or None, hashes[i])) is not have:
            # known before, or created from another message of this batch that carried
            # other keys (a number alone, then the number with a bsuid): fill them in
            _refresh(have, cipher, s.bsuid, s.wa_id, s.profile_name, True)
        out.append(have)
    return out


_BY_EITHER = select(User).where(
    or_(User.bsuid == bindparam("bsuid"), User.phone_hash == bindparam("hash"))
)
_BY_EITHER_MANY = select(User).where(
    or_(
        User.bsuid.in_(bindparam("bsuids", expanding=True)),
        User.phone_hash.in_(bindparam("hashes", expanding=True)),
    )
)


def _pick(rows: Sequence[User], bsuid: str | None) -> User | None:
    """Of the (at most two) users matching either key, the one with the business-scoped
    id first, as :func:`find_user` does."""
    for row in rows:
        if bsuid and row.bsuid == bsuid:
            return row
    return rows[0] if rows else None


async def _create(
    session: AsyncSession,
    cipher: PiiCipher,
    bsuid: str | None,
    wa_id: str | None,
    phone_hash: str | None,
    profile_name: str | None,
    touch_inbound: bool,
) -> User | None:
    """Insert a new user as a plain row and hand the session the object it would have
    loaded (persistent, nothing to flush); None when another instance inserted them
    first (either key taken)."""
    values = _new_row(cipher, bsuid, wa_id, phone_hash, profile_name, utcnow())
    if not touch_inbound:
        values["last_inbound_at"] = None
    new_id = (await session.execute(_INSERT(session), values)).scalar_one_or_none()
    if new_id is None:
        return None
    return adopt(session, User(id=new_id, **values))


_INSERT = InsertIgnoring(_USERS, None, _USERS.c.id)
_INSERT_MANY = InsertIgnoring(_USERS, None, _USERS.c.id, _USERS.c.bsuid, _USERS.c.phone_hash)


def _new_row(
    cipher: PiiCipher,
    bsuid: str | None,
    wa_id: str | None,
    phone_hash: str | None,
    profile_name: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """Every column of a new user's row (so the object can be adopted as loaded)."""
    return {
        "bsuid": bsuid or None,
        "phone_hash": phone_hash,
        "phone_enc": cipher.encrypt(normalise_phone(wa_id)) if wa_id else None,
        "profile_name": profile_name[:200] if profile_name else None,
        "display_name": None,
        "locale": Locale.ID.value,
        "last_inbound_at": now,
        "opted_out_at": None,
        "marketing_opted_out_at": None,
        "is_admin": False,
        "created_at": now,
    }


INBOUND_PRECISION = dt.timedelta(minutes=1)


def _fill(
    user: User,
    cipher: PiiCipher,
    *,
    bsuid: str | None,
    wa_id: str | None,
    profile_name: str | None,
) -> None:
    if bsuid and not user.bsuid:
        user.bsuid = bsuid
    if wa_id and not user.phone_hash:
        user.phone_hash = cipher.lookup_hash(wa_id)
        user.phone_enc = cipher.encrypt(normalise_phone(wa_id))
    if profile_name:
        user.profile_name = profile_name[:200]


def send_address(user: Any, cipher: PiiCipher) -> str:
    """Where WhatsApp sends to: the number when we know it, else the business-scoped id.
    ``user``: a User, or a row with its id, phone_enc and bsuid."""
    if user.phone_enc:
        return cipher.decrypt(user.phone_enc)
    if user.bsuid:
        return user.bsuid
    raise ValueError(f"user {user.id} has no address")


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def addresses_of(session: AsyncSession, user_id: int) -> Address | None:
    """The buyer's saved shipping address row (its data encrypted)."""
    stmt = select(Address).where(Address.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def save_address(session: AsyncSession, user_id: int, data_enc: bytes) -> None:
    """Keep the buyer's (encrypted) address for next time, replacing the old one."""
    row = await addresses_of(session, user_id)
    if row is None:
        session.add(Address(user_id=user_id, data_enc=data_enc))
    else:
        row.data_enc = data_enc


_SEND_COLUMNS = select(
    _USERS.c.id, _USERS.c.bsuid, _USERS.c.phone_enc, _USERS.c.last_inbound_at
).where(_USERS.c.id.in_(bindparam("ids", expanding=True)))


async def send_columns(session: AsyncSession, ids: Iterable[int]) -> dict[int, Any]:
    """What sending needs of each user: id, bsuid, encrypted number, last inbound."""
    wanted = tuple(ids)
    if not wanted:
        return {}
    found = await session.execute(_SEND_COLUMNS, {"ids": wanted})
    return {row.id: row for row in found.all()}

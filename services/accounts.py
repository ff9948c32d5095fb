"""Accounts: admin logins, jastiper approval and a buyer's request to become one, and
an admin's verdicts on a jastiper: approve, decline, suspend, reactivate.

Suspension (an admin's decision, from the panel): the jastiper's commands are refused
with :data:`SUSPENDED_TEXT`, their open trips are closed to new orders (orders already
placed go on; the admin handles them in the panel), and reactivation gives the commands
back without reopening the trips (the jastiper reopens the ones they want with /open).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services import notify
from services import trips as trips_service
from services.errors import InvalidInput, NotAllowed
from storage.crypto import PiiCipher, normalise_phone
from storage.models import Jastiper, JastiperStatus, TripStatus, User
from storage.repo import audit, jastipers, users
from storage.repo import trips as trips_repo

# argon2id with the library's defaults (RFC 9106's second recommended profile: 3 passes,
# 64 MiB, 4 lanes); scrypt hashes made before are still verified, and replaced at the
# admin's next successful login (services/admins.py)
_ARGON2 = PasswordHasher()
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_password(password: str) -> str:
    """An argon2id hash (``$argon2id$v=19$m=…``)."""
    return _ARGON2.hash(password)


def scrypt_hash(password: str) -> str:
    """The hash this project stored before argon2id (kept to test the upgrade path)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    """Does ``password`` match ``stored`` (argon2id, or the older scrypt format)?"""
    if stored.startswith("$argon2"):
        try:
            return _ARGON2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def needs_rehash(stored: str) -> bool:
    """A hash not made with today's argon2id parameters (scrypt, or older settings)."""
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return _ARGON2.check_needs_rehash(stored)
    except InvalidHashError:
        return True


async def create_admin(session: AsyncSession, email: str, password: str) -> None:
    """An admin login (or a new password and reactivation for an existing one)."""
    admin = await jastipers.admin_by_email(session, email)
    if admin is None:
        admin = await jastipers.add_admin(session, email, hash_password(password))
    else:
        admin.password_hash = hash_password(password)
        admin.is_active = True
    audit.record(session, "admin.create_user", actor_admin_id=admin.id)


async def add_jastiper(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    phone: str,
    name: str,
    bank_name: str | None = None,
    account_number: str | None = None,
    account_name: str | None = None,
) -> bool:
    """Make the owner of ``phone`` an approved jastiper; True when newly added.

    Raises:
        InvalidInput: it is not a phone number.
    """
    if len(normalise_phone(phone)) < 8:
        raise InvalidInput(_("Nomor HP-nya kurang pas. Ketik angka saja, contoh: 081234567890"))
    user = await users.upsert_user(
        session, cipher, bsuid=None, wa_id=phone, profile_name=name, touch_inbound=False
    )
    user.display_name = user.display_name or name
    jastiper = await jastipers.of_user(session, user.id)
    created = jastiper is None
    asked = jastiper is not None and jastiper.status == JastiperStatus.PENDING.value
    if jastiper is None:
        jastiper = await jastipers.add(session, user.id, name, JastiperStatus.APPROVED.value)
    jastiper.name = name
    jastiper.status = JastiperStatus.APPROVED.value
    if bank_name:
        jastiper.bank_name = bank_name
    if account_number:
        jastiper.bank_account_number = account_number
    if account_name:
        jastiper.bank_account_name = account_name
    await session.flush()
    audit.record(session, "jastiper.add", jastiper=jastiper.id)
    if asked:  # they asked with DAFTAR JASTIPER: told as when approved from the panel
        notify.say(session, user, APPROVED_TEXT)
    return created


async def approved_jastiper(session: AsyncSession, user: User) -> Jastiper | None:
    """The user's jastiper account, if an admin approved it."""
    return await jastipers.approved(session, user.id)


async def owner(session: AsyncSession, jastiper_id: int) -> User | None:
    """The user behind a jastiper account (whom WhatsApp messages go to)."""
    return await jastipers.owner(session, jastiper_id)


async def request_jastiper(session: AsyncSession, user: User) -> str:
    """``DAFTAR JASTIPER``: a pending request for an admin (again after a decline).
    Returns the account's status after it: ``pending``, or ``approved`` / ``suspended``
    when it is a jastiper already (then nothing changes)."""
    existing = await jastipers.of_user(session, user.id)
    if existing is None:
        name = user.display_name or user.profile_name or "Jastiper"
        await jastipers.add(session, user.id, name, JastiperStatus.PENDING.value)
        audit.record(session, "jastiper.request", actor_user_id=user.id)
        return JastiperStatus.PENDING.value
    if existing.status == JastiperStatus.REJECTED.value:
        existing.status = JastiperStatus.PENDING.value
        audit.record(session, "jastiper.request", actor_user_id=user.id, jastiper=existing.id)
    return existing.status


async def is_suspended(session: AsyncSession, user: User) -> bool:
    """Whether the user is a jastiper an admin suspended."""
    jastiper = await jastipers.of_user(session, user.id)
    return jastiper is not None and jastiper.status == JastiperStatus.SUSPENDED.value


# --- an admin's verdicts (the panel's Jastipers page) ---------------------------------------

APPROVED_TEXT = _(
    "Selamat, permintaanmu jadi jastiper sudah disetujui admin! Ketik /trip new untuk "
    "membuka trip pertamamu, atau /help untuk semua perintah."
)
DECLINED_TEXT = _(
    "Maaf, permintaanmu jadi jastiper belum bisa disetujui admin. Kalau ada pertanyaan, "
    "hubungi admin Jastipin."
)
SUSPENDED_TEXT = _(
    "Akun jastiper-mu sedang ditangguhkan admin, jadi perintah jastiper belum bisa "
    "dipakai. Hubungi admin Jastipin untuk info lebih lanjut."
)
SUSPEND_NOTICE = _(
    "Akun jastiper-mu ditangguhkan admin. Trip yang masih buka ditutup untuk pesanan "
    "baru: {codes}. Pesanan yang sudah masuk tetap diurus. Hubungi admin Jastipin untuk "
    "info lebih lanjut."
)
SUSPEND_NOTICE_NO_TRIPS = _(
    "Akun jastiper-mu ditangguhkan admin. Hubungi admin Jastipin untuk info lebih lanjut."
)
REACTIVATED_TEXT = _(
    "Akun jastiper-mu aktif lagi. Ketik /trips untuk melihat trip-mu; buka lagi trip "
    "yang ditutup dengan /open KODE."
)
WRONG_STATUS = _("Status jastiper {name} sudah berubah. Muat ulang halamannya.")

# verdict -> (statuses it applies to, status after it, audit action)
VERDICTS = {
    "approve": (
        (JastiperStatus.PENDING.value, JastiperStatus.REJECTED.value),
        JastiperStatus.APPROVED.value,
        "jastiper.approve",
    ),
    "decline": (
        (JastiperStatus.PENDING.value,),
        JastiperStatus.REJECTED.value,
        "jastiper.decline",
    ),
    "suspend": (
        (JastiperStatus.APPROVED.value,),
        JastiperStatus.SUSPENDED.value,
        "jastiper.suspend",
    ),
    "reactivate": (
        (JastiperStatus.SUSPENDED.value,),
        JastiperStatus.APPROVED.value,
        "jastiper.reactivate",
    ),
}


async def decide(
    session: AsyncSession, jastiper: Jastiper, verdict: str, *, actor_admin_id: int | None
) -> None:
    """Apply an admin's ``verdict`` (a key of :data:`VERDICTS`) and tell the person in
    chat. Suspending closes their open trips to new orders.

    Raises:
        NotAllowed: the account is not in a status the verdict applies to (another admin
            or the command line got there first).
    """
    sources, to, action = VERDICTS[verdict]
    if jastiper.status not in sources:
        raise NotAllowed(WRONG_STATUS, name=jastiper.name)
    user = await users.get_user(session, jastiper.user_id)
    jastiper.status = to
    closed: list[str] = []
    if verdict == "suspend":
        for trip in await trips_repo.of_jastiper(
            session, jastiper.id, status=TripStatus.OPEN.value
        ):
            await trips_service.set_status(session, trip, TripStatus.CLOSED.value)
            closed.append(trip.code)
    detail: dict[str, Any] = {"jastiper": jastiper.id}
    if closed:
        detail["closed"] = closed
    audit.record(session, action, actor_admin_id=actor_admin_id, **detail)
    if user is None:
        return
    if verdict == "approve":
        notify.say(session, user, APPROVED_TEXT)
    elif verdict == "decline":
        notify.say(session, user, DECLINED_TEXT)
    elif verdict == "reactivate":
        notify.say(session, user, REACTIVATED_TEXT)
    elif closed:
        notify.say(session, user, SUSPEND_NOTICE, codes=", ".join(closed))
    else:
        notify.say(session, user, SUSPEND_NOTICE_NO_TRIPS)

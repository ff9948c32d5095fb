"""Accounts: admin logins, jastiper approval and a buyer's request to become one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services.errors import InvalidInput
from storage.crypto import PiiCipher, normalise_phone
from storage.models import Jastiper, JastiperStatus, User
from storage.repo import audit, jastipers, users

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
    return created


async def approved_jastiper(session: AsyncSession, user: User) -> Jastiper | None:
    """The user's jastiper account, if an admin approved it."""
    return await jastipers.approved(session, user.id)


async def request_jastiper(session: AsyncSession, user: User) -> bool:
    """``DAFTAR JASTIPER``: a pending request for an admin; False when the user is a
    jastiper already."""
    existing = await jastipers.of_user(session, user.id)
    if existing is not None and existing.status == JastiperStatus.APPROVED.value:
        return False
    if existing is None:
        name = user.display_name or user.profile_name or "Jastiper"
        await jastipers.add(session, user.id, name, JastiperStatus.PENDING.value)
        audit.record(session, "jastiper.request", actor_user_id=user.id)
    return True

"""Operator commands: admin logins and jastiper accounts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sqlalchemy import select

from bot.settings import Settings
from storage.crypto import PiiCipher, normalise_phone
from storage.db import Database
from storage.models import AdminUser, AuditLog, Jastiper, JastiperStatus
from storage.repo.users import upsert_user

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


async def create_admin(settings: Settings, email: str, password: str) -> None:
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            user = (
                await session.execute(select(AdminUser).where(AdminUser.email == email.lower()))
            ).scalar_one_or_none()
            if user is None:
                user = AdminUser(email=email.lower(), password_hash=hash_password(password))
                session.add(user)
            else:
                user.password_hash = hash_password(password)
                user.is_active = True
            await session.flush()
            session.add(AuditLog(actor_admin_id=user.id, action="admin.create_user", detail={}))
    finally:
        await db.dispose()


async def add_jastiper(
    settings: Settings,
    *,
    phone: str,
    name: str,
    bank_name: str | None = None,
    account_number: str | None = None,
    account_name: str | None = None,
) -> bool:
    """Make the owner of ``phone`` an approved jastiper; return True when newly added."""
    if len(normalise_phone(phone)) < 8:
        raise SystemExit("jastipin: that does not look like a phone number")
    db = Database(settings.database_url)
    cipher = PiiCipher(settings.pii_key)
    try:
        async with db.transaction() as session:
            user = await upsert_user(
                session, cipher, bsuid=None, wa_id=phone, profile_name=name, touch_inbound=False
            )
            user.display_name = user.display_name or name
            jastiper = (
                await session.execute(select(Jastiper).where(Jastiper.user_id == user.id))
            ).scalar_one_or_none()
            created = jastiper is None
            if jastiper is None:
                jastiper = Jastiper(user_id=user.id, name=name)
                session.add(jastiper)
            jastiper.name = name
            jastiper.status = JastiperStatus.APPROVED.value
            if bank_name:
                jastiper.bank_name = bank_name
            if account_number:
                jastiper.bank_account_number = account_number
            if account_name:
                jastiper.bank_account_name = account_name
            await session.flush()
            session.add(
                AuditLog(
                    actor_user_id=None, action="jastiper.add", detail={"jastiper": jastiper.id}
                )
            )
            return created
    finally:
        await db.dispose()

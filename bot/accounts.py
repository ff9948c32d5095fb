"""Operator commands: admin logins and jastiper accounts, each in its own transaction."""

from __future__ import annotations

from bot.settings import Settings
from services import accounts, admins
from services.errors import InvalidInput
from storage.db import Database
from storage.models import utcnow
from storage.sealed import open_cipher


async def create_admin(settings: Settings, email: str, password: str) -> None:
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            await accounts.create_admin(session, email, password)
    finally:
        await db.dispose()


async def disable_admin(settings: Settings, email: str) -> bool:
    """Disable an admin login and end its web sessions; False when there is none."""
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            return await admins.disable(session, email, utcnow())
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
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            return await accounts.add_jastiper(
                session,
                open_cipher(settings.pii_key),
                phone=phone,
                name=name,
                bank_name=bank_name,
                account_number=account_number,
                account_name=account_name,
            )
    except InvalidInput:
        raise SystemExit("jastipin: that does not look like a phone number") from None
    finally:
        await db.dispose()

"""Jastiper accounts (a user allowed to run trips) and admin logins."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AdminUser, Jastiper, JastiperStatus, User


async def approved(session: AsyncSession, user_id: int) -> Jastiper | None:
    """The user's jastiper account when an admin approved it."""
    return (
        await session.execute(
            select(Jastiper).where(
                Jastiper.user_id == user_id, Jastiper.status == JastiperStatus.APPROVED.value
            )
        )
    ).scalar_one_or_none()


async def of_user(session: AsyncSession, user_id: int) -> Jastiper | None:
    """The user's jastiper account in any status."""
    stmt = select(Jastiper).where(Jastiper.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get(session: AsyncSession, jastiper_id: int) -> Jastiper | None:
    return await session.get(Jastiper, jastiper_id)


async def owner(session: AsyncSession, jastiper_id: int) -> User | None:
    """The user behind a jastiper account (whom WhatsApp messages go to)."""
    jastiper = await session.get(Jastiper, jastiper_id)
    return await session.get(User, jastiper.user_id) if jastiper is not None else None


async def add(session: AsyncSession, user_id: int, name: str, status: str) -> Jastiper:
    jastiper = Jastiper(user_id=user_id, name=name, status=status)
    session.add(jastiper)
    await session.flush()
    return jastiper


async def admin_by_email(session: AsyncSession, email: str) -> AdminUser | None:
    stmt = select(AdminUser).where(AdminUser.email == email.lower())
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_admin(session: AsyncSession, email: str, password_hash: str) -> AdminUser:
    admin = AdminUser(email=email.lower(), password_hash=password_hash)
    session.add(admin)
    await session.flush()
    return admin

"""Jastiper accounts (a user allowed to run trips) and admin logins."""

from __future__ import annotations

import re
import unicodedata

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


def slugify(name: str) -> str:
    """``Tina Wijaya`` → ``tina-wijaya``: lower-case ASCII letters, digits and hyphens."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")
    return slug or "jastiper"


async def free_slug(session: AsyncSession, name: str) -> str:
    """A slug made from ``name`` that no jastiper has yet (``tina``, ``tina-2``, …)."""
    base = slugify(name)
    stmt = select(Jastiper.slug).where(Jastiper.slug.like(f"{base}%"))
    taken = set((await session.execute(stmt)).scalars().all())
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


async def by_slug(session: AsyncSession, slug: str) -> Jastiper | None:
    stmt = select(Jastiper).where(Jastiper.slug == slug.lower())
    return (await session.execute(stmt)).scalar_one_or_none()


async def add(session: AsyncSession, user_id: int, name: str, status: str) -> Jastiper:
    jastiper = Jastiper(
        user_id=user_id, name=name, status=status, slug=await free_slug(session, name)
    )
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

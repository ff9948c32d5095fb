"""A jastiper's public profile (``/j/<slug>``): a short bio, a few links and an avatar,
set from chat with ``/profile``."""

from __future__ import annotations

import re
import urllib.parse

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services.errors import InvalidInput
from storage.models import Jastiper
from storage.repo import audit, jastipers

BIO_MAX = 300
LINKS_MAX = 5
LINK_MAX = 200
_HANDLE = re.compile(r"@([A-Za-z0-9._]{1,30})")


async def by_slug(session: AsyncSession, slug: str) -> Jastiper | None:
    """The jastiper whose page is ``/j/<slug>`` (whatever their status)."""
    return await jastipers.by_slug(session, slug)


def check_bio(text: str) -> str:
    """The bio as it will show (spaces tidied, line breaks kept).

    Raises:
        InvalidInput: empty or longer than :data:`BIO_MAX`.
    """
    bio = "\n".join(" ".join(line.split()) for line in text.strip().splitlines()).strip()
    if not bio:
        raise InvalidInput(
            _("Tulis bio-nya setelah /profile bio, contoh: /profile bio Jastip Jepang tiap bulan")
        )
    if len(bio) > BIO_MAX:
        raise InvalidInput(_("Bio maksimal {n} huruf (punyamu {m})."), n=BIO_MAX, m=len(bio))
    return bio


def check_link(text: str) -> str:
    """An ``http(s)`` address (``@handle`` is an Instagram account).

    Raises:
        InvalidInput: not a web address, or too long.
    """
    raw = text.strip()
    handle = _HANDLE.fullmatch(raw)
    if handle:
        return f"https://instagram.com/{handle.group(1)}"
    if "://" not in raw and "." in raw and " " not in raw:
        raw = "https://" + raw
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or "." not in parts.netloc or " " in raw:
        raise InvalidInput(
            _("Itu bukan alamat web. Contoh: /profile link https://instagram.com/tinajastip")
        )
    if len(raw) > LINK_MAX:
        raise InvalidInput(_("Link maksimal {n} huruf."), n=LINK_MAX)
    return raw


def set_bio(
    session: AsyncSession, jastiper: Jastiper, bio: str | None, *, actor_user_id: int | None
) -> None:
    jastiper.bio = bio
    audit.record(
        session, "jastiper.bio" if bio else "jastiper.bio_removed", actor_user_id=actor_user_id
    )


def add_link(
    session: AsyncSession, jastiper: Jastiper, link: str, *, actor_user_id: int | None
) -> list[str]:
    """The links after adding ``link`` (kept once; the oldest go past :data:`LINKS_MAX`)."""
    links = [x for x in (jastiper.links or []) if x != link] + [link]
    jastiper.links = links[-LINKS_MAX:]
    audit.record(session, "jastiper.link", actor_user_id=actor_user_id)
    return list(jastiper.links)


def clear_links(session: AsyncSession, jastiper: Jastiper, *, actor_user_id: int | None) -> None:
    jastiper.links = None
    audit.record(session, "jastiper.links_removed", actor_user_id=actor_user_id)


def set_avatar(
    session: AsyncSession, jastiper: Jastiper, media_key: str | None, *, actor_user_id: int | None
) -> None:
    jastiper.avatar_key = media_key
    audit.record(
        session,
        "jastiper.avatar" if media_key else "jastiper.avatar_removed",
        actor_user_id=actor_user_id,
    )

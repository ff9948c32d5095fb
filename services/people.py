"""A buyer's own details and wishes, whichever door sets them: whether they want trip
news (STOP / START), the name they go by, and their shipping address (sealed at rest)."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services.errors import InvalidInput
from storage.crypto import PiiCipher
from storage.models import User
from storage.repo import users as users_repo

NAME_MAX = 60
Address = dict[str, str]

_ADDRESS_ERRORS = {
    "phone": _("Nomor HP-nya kurang pas. Ketik angka saja, contoh: 081234567890"),
    "postal": _("Kode pos terdiri dari 5 angka, contoh: 12345"),
    "street": _("Alamatnya terlalu pendek. Tulis jalan, nomor rumah dan kelurahan."),
}
_ADDRESS_ERROR = _("Isiannya kurang pas, coba lagi ya.")


# --- trip news: STOP / START -------------------------------------------------------------


def opt_out(user: User, now: dt.datetime) -> None:
    """No more trip news or promos for ``user`` (order updates still come); the first
    STOP's time is kept."""
    user.opted_out_at = user.opted_out_at or now


def opt_in(user: User) -> None:
    """Trip news again; asking for messages also lifts a marketing stop Meta reported."""
    user.opted_out_at = None
    user.marketing_opted_out_at = None


# --- the name a buyer goes by ------------------------------------------------------------


def check_name(text: str) -> str:
    """The typed name, spaces tidied.

    Raises:
        InvalidInput: empty, longer than :data:`NAME_MAX` or without a letter.
    """
    name = " ".join(text.split())
    if not name or len(name) > NAME_MAX or not any(ch.isalpha() for ch in name):
        raise InvalidInput(
            _("Nama itu kurang pas. Ketik nama kamu (maksimal {n} huruf)."), n=NAME_MAX
        )
    return name


def name_from_profile(profile_name: str | None) -> str | None:
    """The WhatsApp profile name as a display name (cut to :data:`NAME_MAX`), if any."""
    return (profile_name or "").strip()[:NAME_MAX] or None


async def shown_name(session: AsyncSession, user_id: int) -> str:
    """A buyer's name as their jastiper sees it: the name they gave, else their WhatsApp
    profile name, else "-"."""
    buyer = await users_repo.get_user(session, user_id)
    return (buyer.display_name or buyer.profile_name or "-") if buyer else "-"


# --- the shipping address ----------------------------------------------------------------


def check_address_field(field: str, value: str) -> str:
    """One address field, cleaned (a phone number keeps only its digits).

    Raises:
        InvalidInput: the value does not look like that field.
    """
    value = " ".join(value.split())
    cleaned: str | None
    if field == "phone":
        digits = re.sub(r"[\s\-+().]", "", value)
        cleaned = digits if re.fullmatch(r"\d{8,15}", digits) else None
    elif field == "postal":
        cleaned = value if re.fullmatch(r"\d{5}", value) else None
    elif field == "street":
        cleaned = value if 8 <= len(value) <= 300 else None
    else:
        cleaned = value if 2 <= len(value) <= 100 else None
    if cleaned is None:
        raise InvalidInput(_ADDRESS_ERRORS.get(field, _ADDRESS_ERROR))
    return cleaned


def seal_address(cipher: PiiCipher, address: Address) -> bytes:
    """The address as it is stored (an order's copy or the saved one): encrypted."""
    return cipher.encrypt_json(address)


async def saved_address(session: AsyncSession, cipher: PiiCipher, user_id: int) -> Address | None:
    """The address the buyer saved last time, opened; None when there is none."""
    row = await users_repo.addresses_of(session, user_id)
    opened = cipher.decrypt_json(row.data_enc) if row else None
    return opened or None


async def save_address(
    session: AsyncSession, cipher: PiiCipher, user_id: int, address: Address
) -> None:
    """Keeps the address, sealed, for the buyer's next order (replacing the old one)."""
    await users_repo.save_address(session, user_id, seal_address(cipher, address))

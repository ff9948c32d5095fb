"""A buyer's own details and wishes (``services/people.py``), whichever door sets them."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services import people
from services.errors import InvalidInput
from storage.crypto import PiiCipher
from storage.models import Address, User

NOON = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_stop_keeps_the_first_time_and_uses_the_clock_given() -> None:
    """STOP records when it was said, by the caller's clock; a second STOP keeps the first."""
    user = User(locale="id")
    people.opt_out(user, NOON)
    people.opt_out(user, NOON + dt.timedelta(days=1))
    assert user.opted_out_at == NOON


def test_start_lifts_both_stops() -> None:
    """START asks for messages again: the buyer's STOP and Meta's marketing stop go."""
    user = User(locale="id", opted_out_at=NOON, marketing_opted_out_at=NOON)
    people.opt_in(user)
    assert user.opted_out_at is None
    assert user.marketing_opted_out_at is None


def test_a_name_is_tidied_and_must_read_as_a_name() -> None:
    """Spaces are tidied; empty, digits only or over the limit are refused, naming it."""
    assert people.check_name("  Siti   Aminah ") == "Siti Aminah"
    for bad in ("", "   ", "12345", "x" * (people.NAME_MAX + 1)):
        with pytest.raises(InvalidInput) as refused:
            people.check_name(bad)
        assert refused.value.params == {"n": people.NAME_MAX}
    assert people.check_name("x" * people.NAME_MAX) == "x" * people.NAME_MAX


def test_the_whatsapp_profile_name_is_cut_to_the_limit() -> None:
    """The one-tap name is the profile name, cut to the limit; no profile name, no name."""
    assert people.name_from_profile(" Budi ") == "Budi"
    assert people.name_from_profile("y" * 80) == "y" * people.NAME_MAX
    assert people.name_from_profile(None) is None
    assert people.name_from_profile("   ") is None


def test_address_fields_are_cleaned_or_refused_with_what_is_wrong() -> None:
    """A phone keeps its digits, a postal code is five digits, a street is long enough."""
    assert people.check_address_field("phone", "+62 812-3456-7890") == "6281234567890"
    assert people.check_address_field("postal", " 12345 ") == "12345"
    assert people.check_address_field("city", "Kota   Bandung") == "Kota Bandung"
    refusals = {
        ("phone", "0812"): "Nomor HP",
        ("postal", "1234"): "Kode pos",
        ("street", "Jl. A"): "terlalu pendek",
        ("recipient", "A"): "kurang pas",
    }
    for (field, value), words in refusals.items():
        with pytest.raises(InvalidInput) as refused:
            people.check_address_field(field, value)
        assert words in refused.value.message


async def test_a_saved_address_is_sealed_at_rest_and_replaced_by_the_next(
    session: AsyncSession,
) -> None:
    """The address is stored encrypted (no street in the row), opened for the next order,
    and a new one replaces it."""
    cipher = PiiCipher(secrets.token_bytes(32))
    user = User(locale="id")
    session.add(user)
    await session.flush()
    assert await people.saved_address(session, cipher, user.id) is None
    first = {"recipient": "Siti", "phone": "081234567890", "street": "Jl. Melati 12 RT 3"}
    await people.save_address(session, cipher, user.id, first)
    await session.flush()
    (row,) = (await session.execute(select(Address))).scalars()
    assert b"Melati" not in row.data_enc
    assert await people.saved_address(session, cipher, user.id) == first
    second = {**first, "street": "Jl. Mawar 3 RT 1"}
    await people.save_address(session, cipher, user.id, second)
    await session.flush()
    assert await people.saved_address(session, cipher, user.id) == second
    assert len((await session.execute(select(Address))).scalars().all()) == 1

"""A buyer's own details and wishes (``services/people.py``), whichever door sets them."""

from __future__ import annotations

import datetime as dt

from services import people
from storage.models import User

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

"""A buyer's own details and wishes, whichever door sets them: whether they want trip
news (STOP / START), the name they go by, and their shipping address (sealed at rest)."""

from __future__ import annotations

import datetime as dt

from storage.models import User

# --- trip news: STOP / START -------------------------------------------------------------


def opt_out(user: User, now: dt.datetime) -> None:
    """No more trip news or promos for ``user`` (order updates still come); the first
    STOP's time is kept."""
    user.opted_out_at = user.opted_out_at or now


def opt_in(user: User) -> None:
    """Trip news again; asking for messages also lifts a marketing stop Meta reported."""
    user.opted_out_at = None
    user.marketing_opted_out_at = None

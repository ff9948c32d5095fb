"""Meta's 24-hour window (``services/sends.py``), the one rule the outbox and the
services both read."""

from __future__ import annotations

import datetime as dt

from services import sends

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_the_window_is_open_for_24_hours_after_the_users_last_message() -> None:
    """Free-form up to just before 24 hours; at 24 hours, and for someone who never
    wrote, only a template goes."""
    assert sends.in_window(NOW - dt.timedelta(hours=24) + dt.timedelta(seconds=1), NOW)
    assert not sends.in_window(NOW - dt.timedelta(hours=24), NOW)
    assert not sends.in_window(None, NOW)

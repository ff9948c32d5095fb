"""The per-user rate limit: a burst window kept on the user's conversation row.

Every inbound message already locks its user's conversation row (``SELECT … FOR
UPDATE`` on Postgres, the one writer on SQLite) and updates it in the same
transaction, so the window's start and count live there: no extra statement per
message, and it stays right with any number of worker processes (one user's messages
are serialised by that lock wherever they run).

The clock is Meta's timestamp of the message (when the user sent it), not the time it
is processed: a backlog redelivered after an outage, or drained by a worker after a
restart, is not mistaken for a flood, and only the person's own pace counts.

Within a window of ``window`` seconds that begins with a user's first message, the
first ``limit`` messages are answered; the next one gets one friendly "slow down";
later ones in the same window are dropped silently (their units are still marked done:
nothing is retried or lost track of). The first message after the window starts a new
one and is answered again. ``STOP`` is always let through: an opt-out is never lost.
"""

from __future__ import annotations

import datetime as dt
import enum

from locales import _
from storage.models import ConversationRow

SLOW_DOWN = _(
    "Pelan-pelan ya… 🙏 Pesanmu banyak sekali dalam waktu singkat. Tunggu sebentar, "
    "lalu kirim lagi pesan yang belum dijawab."
)
ALWAYS_ADMITTED = frozenset({"STOP"})


class Verdict(enum.Enum):
    ADMIT = "admit"  # answer it
    WARN = "warn"  # the first one over the limit: "slow down", nothing else
    DROP = "drop"  # over the limit and already warned: silence


def admit(
    conv: ConversationRow,
    sent_at: dt.datetime,
    *,
    limit: int,
    window: float,
    text: str | None = None,
) -> Verdict:
    """Count this message in the user's current window (moving the window on when it has
    passed) and say what to do with it. ``limit`` 0 or less: no limit."""
    if limit <= 0:
        return Verdict.ADMIT
    start = conv.burst_started_at
    if start is None or sent_at >= start + dt.timedelta(seconds=window):
        conv.burst_started_at = sent_at
        conv.burst_count = 1
        return Verdict.ADMIT
    # a message written earlier but handled later counts in the current window
    count = (conv.burst_count or 0) + 1
    conv.burst_count = count
    if count <= limit or (text is not None and text.strip().upper() in ALWAYS_ADMITTED):
        return Verdict.ADMIT
    return Verdict.WARN if count == limit + 1 else Verdict.DROP


def throttled_until(conv: ConversationRow, *, limit: int, window: float) -> dt.datetime | None:
    """When the user's current window ends if they are over the limit in it, else None
    (a hint for skipping work, such as a download, for a message that will be dropped)."""
    if limit <= 0 or conv.burst_started_at is None or (conv.burst_count or 0) <= limit:
        return None
    return conv.burst_started_at + dt.timedelta(seconds=window)

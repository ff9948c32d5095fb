"""What the phone number's tier (``BROADCAST_NUMBER_CAP``, messages a second for replies
and broadcasts together) means for a launch, told to the jastiper before it (issue #28)."""

from __future__ import annotations

import math
from dataclasses import dataclass


def default_reply_reserve(cap: int) -> int:
    """Of the number's per-second cap, what broadcasts leave to replies by default: a
    tenth, at least 1 and at most 10 (replies beyond it go first in the next second)."""
    return min(10, max(1, cap // 10)) if cap > 1 else 0


def reply_reserve(cap: int, configured: int | None) -> int:
    """``BROADCAST_REPLY_RESERVE`` as configured, else the default for the cap."""
    return default_reply_reserve(cap) if configured is None else configured


@dataclass(frozen=True, slots=True)
class LaunchEstimate:
    """``send_seconds``: how long the broadcast itself takes to go out at the broadcasts'
    share of the cap; ``reply_wait_seconds``: how long the last of the recipients could
    wait for an answer if they all wrote back in the same moment (replies go first but
    share the cap)."""

    recipients: int
    cap: int
    send_seconds: int
    reply_wait_seconds: int


def launch_estimate(recipients: int, *, cap: int, reply_reserve: int) -> LaunchEstimate | None:
    """The estimate when ``recipients`` exceed what the number answers in one second,
    else None (nothing worth a warning)."""
    if cap < 1 or recipients <= cap:
        return None
    broadcast_share = max(1, cap - reply_reserve)
    return LaunchEstimate(
        recipients=recipients,
        cap=cap,
        send_seconds=math.ceil(recipients / broadcast_share),
        reply_wait_seconds=math.ceil(recipients / cap),
    )

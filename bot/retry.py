"""How long a loop that keeps failing waits before its next try.

A loop whose every pass fails (the database unreachable) must not retry at its normal
pace: it would write an error, a traceback and an error report each time. The wait
doubles after each failure in a row, up to a cap, and is back to normal after a pass
that worked; a little jitter keeps several loops from retrying in step.
"""

from __future__ import annotations

import random

MAX_WAIT_SECONDS = 60.0


class Backoff:
    """Failures in a row, and the wait they call for: ``base`` × 2^(failures-1), up to
    ``cap`` seconds, ±10 %."""

    def __init__(self, base: float, cap: float = MAX_WAIT_SECONDS) -> None:
        self.base = max(base, 0.01)
        self.cap = cap
        self.failures = 0

    def failed(self) -> float:
        """Count a failure; the seconds to wait before the next try."""
        self.failures += 1
        wait = min(self.cap, self.base * 2 ** min(self.failures - 1, 32))
        return wait * random.uniform(0.9, 1.1)

    def succeeded(self) -> None:
        self.failures = 0

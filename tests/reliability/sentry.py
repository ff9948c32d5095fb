"""A Sentry transport that keeps events in memory, for tests of what leaves the app."""

from __future__ import annotations

from typing import Any

from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

LOCAL_DSN = "http://public@127.0.0.1:9/1"  # never contacted: the transport is local


class LocalTransport(Transport):
    """Collects every envelope the SDK would have sent."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        return [e.get_event() for e in self.envelopes if e.get_event() is not None]  # type: ignore[misc]

    def text(self) -> str:
        """Everything that would have gone over the wire, as text."""
        return "\n".join(e.serialize().decode("utf-8", "replace") for e in self.envelopes)

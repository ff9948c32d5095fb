"""The Dramatiq broker, chosen in exactly one place before any actor is imported.

``REDIS_URL`` set: a Redis broker (several ``jastipin worker`` processes may share it).
Unset: Dramatiq's in-process stub broker, for the embedded default and tests.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker


def build_broker(settings: Any) -> dramatiq.Broker:
    """Create the broker for these settings and make it Dramatiq's global broker."""
    broker: dramatiq.Broker
    if settings.redis_url:
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=settings.redis_url, namespace=f"{settings.queue_prefix}-dramatiq")
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    return broker


def check_broker(broker: dramatiq.Broker) -> None:
    """Raise unless the broker answers (a Redis ping; the stub always does)."""
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()


def broker_kind(broker: dramatiq.Broker) -> str:
    return "redis" if getattr(broker, "client", None) is not None else "stub"

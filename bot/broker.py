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


def dead_letters(broker: dramatiq.Broker) -> list[dramatiq.Message[Any]]:
    """Messages whose actor failed past its retries (Dramatiq's dead-letter queue)."""
    from dramatiq import Message

    client = getattr(broker, "client", None)
    if client is None:
        return [proxy._message for proxy in getattr(broker, "dead_letters", [])]
    found: list[dramatiq.Message[Any]] = []
    for queue in sorted(_canonical_queues(broker)):
        key = f"{broker.namespace}:{queue}.XQ"  # type: ignore[attr-defined]
        ids = client.zrange(key, 0, -1)
        if ids:
            for data in client.hmget(f"{key}.msgs", ids):
                if data is not None:
                    found.append(Message.decode(data))
    return found


def retry_dead_letter(broker: dramatiq.Broker, message_id: str) -> bool:
    """Send a dead-lettered message to its queue again, with fresh retries. Safe because
    every actor is idempotent. False when no such dead letter exists."""
    from dramatiq import Message

    for message in dead_letters(broker):
        if message.message_id != message_id:
            continue
        skip = ("retries", "traceback", "redis_message_id")
        options = {k: v for k, v in message.options.items() if k not in skip}
        client = getattr(broker, "client", None)
        if client is not None:
            key = f"{broker.namespace}:{message.queue_name}.XQ"  # type: ignore[attr-defined]
            redis_id = message.options.get("redis_message_id", message_id)
            if not client.zrem(key, redis_id):
                return False  # another operator retried it a moment ago
            client.hdel(f"{key}.msgs", redis_id)
        else:
            for queue in broker.dead_letters_by_queue.values():  # type: ignore[attr-defined]
                queue[:] = [p for p in queue if p.message_id != message_id]
        broker.enqueue(
            Message(
                queue_name=message.queue_name,
                actor_name=message.actor_name,
                args=message.args,
                kwargs=message.kwargs,
                options=options,
            )
        )
        return True
    return False


def retry_dead_letters(broker: dramatiq.Broker) -> int:
    """Every dead-lettered message back to its queue; how many went."""
    return sum(retry_dead_letter(broker, m.message_id) for m in dead_letters(broker))


def _canonical_queues(broker: dramatiq.Broker) -> set[str]:
    from dramatiq.common import q_name

    return {q_name(q) for q in broker.get_declared_queues()}


def queue_depths(broker: dramatiq.Broker) -> list[tuple[str, int, int, int, int]]:
    """(queue, waiting, running, delayed, dead) for each declared Dramatiq queue: the
    Redis lists and hashes behind the broker, or the stub broker's in-process queues."""
    from dramatiq.common import dq_name

    out = []
    client = getattr(broker, "client", None)
    for queue in sorted(_canonical_queues(broker)):
        if client is not None:
            key = f"{broker.namespace}:{queue}"  # type: ignore[attr-defined]
            waiting = int(client.llen(key))
            held = int(client.hlen(f"{key}.msgs"))
            delayed = int(client.hlen(f"{key}.DQ.msgs"))
            dead = int(client.zcard(f"{key}.XQ"))
            out.append((queue, waiting, max(0, held - waiting), delayed, dead))
        else:
            queues = broker.queues  # type: ignore[attr-defined]
            ready, later = queues.get(queue), queues.get(dq_name(queue))
            waiting = ready.qsize() if ready is not None else 0
            unfinished = ready.unfinished_tasks if ready is not None else 0
            delayed = later.qsize() if later is not None else 0
            dead = len(broker.dead_letters_by_queue.get(queue, []))  # type: ignore[attr-defined]
            out.append((queue, waiting, max(0, unfinished - waiting), delayed, dead))
    return out

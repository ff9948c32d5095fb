"""The Dramatiq broker, chosen in exactly one place before any actor is imported.

``REDIS_URL`` set: a Redis broker (several ``jastipin worker`` processes may share it).
Unset: Dramatiq's in-process stub broker, for the embedded default and tests.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware

from bot import metrics
from storage import trace


def build_broker(settings: Any) -> dramatiq.Broker:
    """Create the broker for these settings and make it Dramatiq's global broker."""
    broker: dramatiq.Broker
    if settings.redis_url:
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=settings.redis_url, namespace=f"{settings.queue_prefix}-dramatiq")
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(DramatiqMetrics())
    broker.add_middleware(RequestIds())
    dramatiq.set_broker(broker)
    return broker


class DramatiqMetrics(Middleware):
    """What Dramatiq's Prometheus middleware (``dramatiq.middleware.prometheus``) counts,
    under the same names, labels and buckets, in this process's registry (bot.metrics)
    and served by the process's own ``/metrics``.

    Not the stock middleware itself: it writes to a multiprocess directory created under
    /tmp at import and, when run by the ``dramatiq`` command, forks an HTTP server on
    0.0.0.0:9191 with no authentication; our processes run Dramatiq in-process."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._delayed: set[str] = set()

    @staticmethod
    def _labels(message: Any) -> tuple[str, str]:
        return (message.queue_name, message.actor_name)

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        metrics.DRAMATIQ_REJECTS.labels(*self._labels(message)).inc()

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: Any) -> None:
        if "retries" in message.options:
            metrics.DRAMATIQ_RETRIES.labels(*self._labels(message)).inc()

    def before_delay_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._delayed.add(message.message_id)
        metrics.DRAMATIQ_DELAYED.labels(*self._labels(message)).inc()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        labels = self._labels(message)
        if message.message_id in self._delayed:
            self._delayed.discard(message.message_id)
            metrics.DRAMATIQ_DELAYED.labels(*labels).dec()
        metrics.DRAMATIQ_INPROGRESS.labels(*labels).inc()
        self._started[message.message_id] = time.monotonic()

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        labels = self._labels(message)
        started = self._started.pop(message.message_id, time.monotonic())
        metrics.DRAMATIQ_DURATION.labels(*labels).observe((time.monotonic() - started) * 1000)
        metrics.DRAMATIQ_INPROGRESS.labels(*labels).dec()
        metrics.DRAMATIQ_MESSAGES.labels(*labels).inc()
        if exception is not None:
            metrics.DRAMATIQ_ERRORS.labels(*labels).inc()

    after_skip_message = after_process_message


class RequestIds(Middleware):
    """A job carries the request id of the work that enqueued it (the message's
    ``request_id`` option) and runs with it (storage/trace.py): its log lines, and the
    replies it queues, name the request that caused it."""

    def __init__(self) -> None:
        self._scopes: dict[str, contextlib.AbstractContextManager[None]] = {}

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: Any) -> None:
        request_id = trace.request_id()
        if request_id is not None and "request_id" not in message.options:
            message.options["request_id"] = request_id

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        scope = trace.scope(message.options.get("request_id"), job=message.actor_name)
        scope.__enter__()  # on this worker thread, until the message is done
        self._scopes[message.message_id] = scope

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        scope = self._scopes.pop(message.message_id, None)
        if scope is not None:
            scope.__exit__(None, None, None)

    after_skip_message = after_process_message


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

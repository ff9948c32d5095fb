"""``GET /metrics`` for ``jastipin worker`` and ``jastipin scheduler``, and the gauges
every process reads from the database and the broker.

The worker listens on ``METRICS_PORT`` (default 9101), the scheduler on its own
(default 9102), both on ``METRICS_HOST`` (default 127.0.0.1). Who may read it is what
``jastipin serve`` allows on its ``/metrics`` (:func:`metrics_refusal`): with
``METRICS_TOKEN``, ``Authorization: Bearer <token>`` only; without it, loopback callers
that no proxy forwarded.

The database and broker gauges (outbox pending and lag, Dramatiq queue depth) are
refreshed every ``METRICS_REFRESH_SECONDS`` (15) in the background, so a scrape never
waits on Postgres or Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

import dramatiq
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import keys, metrics
from bot.settings import Settings, is_loopback
from storage.db import Database
from storage.repo import outbox as outbox_repo
from storage.repo import queues as queues_repo

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"worker": 9101, "scheduler": 9102}


def _age(when: dt.datetime | None, now: dt.datetime) -> float:
    """Seconds since ``when`` (0 for None); SQLite hands back naive UTC."""
    if when is None:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (now - when).total_seconds())


async def refresh_database_gauges(db: Database) -> None:
    """Outbox rows waiting and the lag; replies and inbound units waiting and the oldest
    of each; when the last backup succeeded."""
    async with db.read() as session:
        pending = await outbox_repo.pending_count(session)
        oldest = await outbox_repo.oldest_pending_created_at(session)
        readings = await queues_repo.gauge_readings(session)
    now = dt.datetime.now(dt.UTC)
    metrics.OUTBOX_PENDING.set(pending)
    metrics.OUTBOX_OLDEST_AGE.set(_age(oldest, now))
    metrics.REPLIES_PENDING.set(readings["replies_pending"])
    metrics.OUTBOX_OLDEST_REPLY_AGE.set(_age(readings["oldest_reply"], now))
    metrics.INBOX_PENDING.set(readings["inbox_pending"])
    metrics.INBOX_OLDEST_AGE.set(_age(readings["oldest_unit"], now))
    last_backup = readings["last_backup"]
    if last_backup is not None:  # stays 0 until the first backup: the alert fires on that
        if last_backup.tzinfo is None:
            last_backup = last_backup.replace(tzinfo=dt.UTC)
        metrics.BACKUP_LAST_SUCCESS.set(last_backup.timestamp())


def queue_depths(broker: dramatiq.Broker) -> dict[tuple[str, str], int]:
    """Messages per declared queue and state (``ready``, ``delayed``, ``dead``)."""
    from dramatiq.common import dq_name, q_name, xq_name

    queues = sorted({q_name(q) for q in broker.get_declared_queues()})
    out: dict[tuple[str, str], int] = {}
    client = getattr(broker, "client", None)
    if client is not None:  # Redis: a list of ids per queue, a sorted set of dead ones
        namespace = broker.namespace  # type: ignore[attr-defined]
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(f"{namespace}:{queue}")
                pipe.llen(f"{namespace}:{dq_name(queue)}")
                pipe.zcard(f"{namespace}:{xq_name(queue)}")
            answers = pipe.execute()
        for i, queue in enumerate(queues):
            ready, delayed, dead = answers[3 * i : 3 * i + 3]
            out[(queue, "ready")], out[(queue, "delayed")], out[(queue, "dead")] = (
                int(ready),
                int(delayed),
                int(dead),
            )
        return out
    stub_queues: dict[str, Any] = getattr(broker, "queues", {})
    dead_letters: dict[str, list[Any]] = getattr(broker, "dead_letters_by_queue", {})
    for queue in queues:
        for state, name in (("ready", queue), ("delayed", dq_name(queue))):
            found = stub_queues.get(name)
            out[(queue, state)] = found.qsize() if found is not None else 0
        out[(queue, "dead")] = len(dead_letters.get(queue, []))
    return out


async def refresh_broker_gauges(broker: dramatiq.Broker) -> None:
    for (queue, state), n in (await asyncio.to_thread(queue_depths, broker)).items():
        metrics.QUEUE_MESSAGES.labels(queue=queue, state=state).set(n)


async def refresh_gauges(db: Database, broker: dramatiq.Broker | None) -> None:
    """Both refreshes; one that fails is counted and logged, the other still runs."""
    try:
        await refresh_database_gauges(db)
    except Exception as exc:
        metrics.GAUGES_REFRESH_ERRORS.labels(source="database").inc()
        log.warning("metrics: could not read the outbox", extra={"error": type(exc).__name__})
    if broker is None:
        return
    try:
        await refresh_broker_gauges(broker)
    except Exception as exc:
        metrics.GAUGES_REFRESH_ERRORS.labels(source="broker").inc()
        log.warning("metrics: could not read the queues", extra={"error": type(exc).__name__})


# a request a reverse proxy passed on came from outside, whatever its peer address
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def metrics_refusal(request: web.Request) -> web.Response | None:
    """Who may read ``/metrics``: with ``METRICS_TOKEN`` set, a request carrying
    ``Authorization: Bearer <token>`` (401 otherwise); without it, only a client on this
    machine's loopback that no proxy forwarded (403 otherwise)."""
    token = request.app[keys.SETTINGS].metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return None
        return web.Response(
            status=401,
            text="Metrics need Authorization: Bearer <METRICS_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    if is_loopback(request.remote) and not any(h in request.headers for h in _PROXY_HEADERS):
        return None
    return web.Response(
        status=403, text="Metrics are served to this machine only; set METRICS_TOKEN to scrape"
    )


def metrics_port(settings: Settings, service: str) -> int:
    return settings.metrics_port if settings.metrics_port is not None else DEFAULT_PORTS[service]


async def _metrics(request: web.Request) -> web.Response:
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    resp = web.Response(body=generate_latest())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


@contextlib.asynccontextmanager
async def observed(
    settings: Settings, service: str, db: Database, broker: dramatiq.Broker | None
) -> AsyncIterator[None]:
    """While inside: ``/metrics`` served on the service's port, the gauges refreshed,
    and the process's database connection errors counted in ``jastipin_db_errors_total``.
    A port already taken is logged and the process works on without metrics."""
    db.on_connection_error(metrics.DB_ERRORS.inc)
    app = web.Application()
    app[keys.SETTINGS] = settings
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = metrics_port(settings, service)
    if port:
        try:
            await web.TCPSite(runner, settings.metrics_host, port).start()
            log.info(
                "metrics served",
                extra={"url": f"http://{settings.metrics_host}:{port}/metrics"},
            )
        except OSError as exc:
            log.error(
                "metrics not served: cannot listen (set METRICS_PORT to a free port)",
                extra={"host": settings.metrics_host, "port": port, "error": exc.strerror},
            )

    async def refresh_forever() -> None:
        while True:
            await refresh_gauges(db, broker)
            await asyncio.sleep(settings.metrics_refresh_seconds)

    refresher = asyncio.create_task(refresh_forever(), name="metrics-refresh")
    try:
        yield
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await runner.cleanup()

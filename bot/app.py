"""``create_app(settings)``: builds everything the API process needs, nothing at import.

Resources (database, WhatsApp client, media store, broker, background loops) are made
in ``cleanup_ctx`` generators and stored under typed ``web.AppKey``s. On shutdown the
webhooks in flight finish first (aiohttp), then the inbox units in hand, the outbox sends
in flight (unsent claimed rows are handed back at once) and the jobs in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import dramatiq
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from admin_web import keys as web_keys
from admin_web import setup as setup_web
from bot import devchat, jobs, keys, metrics, webhook
from bot.broker import (
    broker_kind,
    build_broker,
    check_broker,
    queue_depths,
    retry_dead_letters,
)
from bot.inbox import InboxWriter
from bot.observe import metrics_refusal, refresh_gauges
from bot.reports import release
from bot.runtime import (
    INBOX_DRAIN_SECONDS,
    JOBS_DRAIN_SECONDS,
    OUTBOX_DRAIN_SECONDS,
    build_runtime,
)
from bot.settings import Settings
from bot.tasks import Actors, JobRunner, build_actors
from bot.transport import Transport
from bot.worker import SCHEDULER_INTERVAL_SECONDS
from storage import trace
from storage.db import Database
from storage.sqlite_inline import offloaded

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    run_background: bool = True,
    transport: Transport | None = None,
) -> web.Application:
    """The aiohttp application.

    Args:
        settings: The checked configuration.
        run_background: Start the outbox dispatcher and inbox sweeper loops (tests may
            turn them off and drive ``flush()`` / ``sweep()`` themselves).
        transport: Replace the transport chosen from the settings (tests).
    """
    app = web.Application(client_max_size=webhook.MAX_BODY, middlewares=[_metrics_middleware])
    app[keys.SETTINGS] = settings
    app[web_keys.SETTINGS] = settings

    async def resources(app: web.Application) -> AsyncIterator[None]:
        rt = build_runtime(settings, transport=transport)
        broker = build_broker(settings)
        # the actors run on this loop with this process's one Database (bot/tasks.py)
        actors = build_actors(broker, settings, JobRunner(rt.db))
        app[keys.ACTORS] = actors
        db, outbox, processor, media, sender = (
            rt.db,
            rt.outbox,
            rt.processor,
            rt.media,
            rt.transport,
        )
        app[keys.DB] = db
        app[keys.CIPHER] = rt.cipher
        app[keys.MEDIA] = media
        app[keys.BROKER] = broker
        app[keys.OUTBOX] = outbox
        app[web_keys.OUTBOX_NOTIFY] = outbox.notify
        app[web_keys.QUEUE_DEPTHS] = lambda: queue_depths(broker)
        app[web_keys.RETRY_DEAD_JOBS] = lambda: retry_dead_letters(broker)
        app[keys.DISPATCHER] = rt.dispatcher
        app[keys.PROCESSOR] = processor
        # Meta waits on the insert: a lock held elsewhere gets a prompt 503, not a late 200
        writer = InboxWriter(db.prompt(webhook.LOCK_WAIT_SECONDS))
        app[keys.INBOX_WRITER] = writer
        loops: list[asyncio.Task[None]] = []
        sending: asyncio.Task[None] | None = None
        embedded_worker = None
        if run_background and broker_kind(broker) == "stub":
            # the embedded default: Dramatiq's in-process broker with a worker thread,
            # and the periodic jobs in this process too
            embedded_worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=200)
            embedded_worker.start()
            loops.append(
                asyncio.create_task(
                    _every(SCHEDULER_INTERVAL_SECONDS, lambda: _periodic(db, actors, settings)),
                    name="scheduler",
                )
            )
        if run_background and settings.outbox_inline:
            sending = asyncio.create_task(outbox.run(), name="outbox")
        if run_background and settings.inbox_inline:
            # this process processes what it stores: it retries its own failed units
            # after INBOX_SWEEP_SECONDS (whoever sends); a worker takes up units left by
            # a crashed API only later (bot/worker.py ORPHANED_AFTER)
            loops.append(
                asyncio.create_task(
                    _every(settings.inbox_sweep_seconds, processor.sweep), name="inbox-sweeper"
                )
            )
        log.info(
            "jastipin started",
            extra={
                "db": db.dialect,
                "broker": broker_kind(broker),
                "media": media.kind,
                "transport": sender.name,
            },
        )
        yield
        # SIGTERM: aiohttp stopped listening and let the webhooks in flight finish (their
        # units are durable in the inbox) before this runs
        for task in loops:
            task.cancel()
        for task in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await writer.close()
        # at once, each bounded: the units in hand, the sends in flight (claimed rows
        # not sent are handed back for the next process), the jobs in progress
        steps: list[Awaitable[object]] = [
            outbox.shutdown(sending, within=OUTBOX_DRAIN_SECONDS),
            rt.processor.close(within=INBOX_DRAIN_SECONDS),
        ]
        if embedded_worker is not None:
            steps.append(
                asyncio.to_thread(embedded_worker.stop, timeout=int(JOBS_DRAIN_SECONDS * 1000))
            )
        await asyncio.gather(*steps)
        await rt.aclose()
        broker.close()

    app.cleanup_ctx.append(resources)
    webhook.setup(app)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_view)
    setup_web(app)
    devchat.setup(app)
    return app


async def _periodic(db: Database, actors: Actors, settings: Settings) -> None:
    """The scheduler's jobs in the serving process: their purges and scans (thousands of
    rows at times) run on the database's threads, never holding the event loop that
    answers webhooks (storage/sqlite_inline.py)."""
    with offloaded():
        await jobs.run_periodic(db, actors, settings)


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("periodic job failed")


async def health(request: web.Request) -> web.Response:
    """Database, broker and storage checks: 200 when all pass, else 503 and which
    dependency is degraded (``database: locked``, ``unreachable``)."""
    app = request.app
    checks: dict[str, str] = {}
    # "locked": the webhook's insert could not take its lock (another process holds it)
    checks["database"] = await app[keys.DB].probe(seconds=webhook.LOCK_WAIT_SECONDS)
    try:
        await asyncio.to_thread(check_broker, app[keys.BROKER])
        checks["broker"] = "ok"
    except Exception:
        checks["broker"] = "unavailable"
    try:
        await app[keys.MEDIA].check()
        checks["storage"] = "ok"
    except Exception:
        checks["storage"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    body = {
        "status": "ok" if ok else "degraded",
        "checks": checks,
        "mode": "dev" if app[keys.SETTINGS].dev_mode else "live",
        "version": release(),  # the package version and the commit, as Sentry's release
    }
    return web.json_response(body, status=200 if ok else 503)


async def metrics_view(request: web.Request) -> web.Response:
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    # the gauges as of now; a database or broker that hangs does not hold the scrape
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            refresh_gauges(request.app[keys.DB], request.app[keys.BROKER]), timeout=5
        )
    resp = web.Response(body=generate_latest())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


# an id a proxy already gave the request is kept when it looks like one: with a letter in
# it (digits alone could be a phone number, and the id is stored with the units and the
# replies the request causes)
_REQUEST_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9._-]{8,64}")
access_log = logging.getLogger("jastipin.access")


@web.middleware
async def _metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else trace.new_request_id()
    with trace.scope(request_id):  # on every line written while answering
        return await _measured(request, handler, request_id)


async def _measured(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    request_id: str,
) -> web.StreamResponse:
    start = time.perf_counter()
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-Id"] = request_id
        raise
    finally:
        elapsed = time.perf_counter() - start
        metrics.HTTP_LATENCY.labels(route=name, method=request.method).observe(elapsed)
        metrics.HTTP_RESPONSES.labels(route=name, status_class=f"{status // 100}xx").inc()
        # the route's template, never the path itself (a /web link's token is in it)
        access_log.info(
            "%s %s %s",
            request.method,
            name,
            status,
            extra={"status": status, "ms": round(elapsed * 1000, 1), "requestId": request_id},
        )

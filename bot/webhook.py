"""``GET/POST /api/webhooks/whatsapp``: Meta's challenge, and durable signed updates."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pywa.utils import webhook_updates_validator
from sqlalchemy.exc import SQLAlchemyError

from bot import metrics
from bot.inbox import MalformedUpdate, split_update
from bot.keys import INBOX_WRITER, PROCESSOR, SETTINGS
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY = 3 * 1024 * 1024
# the durable insert waits at most this long for a lock, and the answer at most
# STORE_SECONDS in all: a database locked or unreachable gets a prompt 503, so Meta
# retries, instead of an answer after Meta stopped waiting (issue #21)
LOCK_WAIT_SECONDS = 1.0
STORE_SECONDS = 1.5


async def challenge(request: web.Request) -> web.Response:
    """Answers Meta's subscription check with ``hub.challenge`` (403 on a wrong token)."""
    settings = request.app[SETTINGS]
    mode = request.query.get("hub.mode")
    token = request.query.get("hub.verify_token", "")
    expected = settings.wa_verify_token or ""
    if mode == "subscribe" and expected and hmac.compare_digest(token, expected):
        return web.Response(text=request.query.get("hub.challenge", ""))
    return web.Response(status=403, text="Forbidden")


async def receive(request: web.Request) -> web.Response:
    """Checks the signature on the raw body, stores the update, then answers 200."""
    settings = request.app[SETTINGS]
    body = await request.read()
    if settings.wa_app_secret:
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return web.Response(status=401, text="Missing signature")
        if not webhook_updates_validator(settings.wa_app_secret, body, signature):
            return web.Response(status=403, text="Bad signature")
    try:
        units = split_update(json.loads(body))
    except (ValueError, MalformedUpdate, UnicodeDecodeError):
        return web.Response(status=400, text="Malformed update")

    def handle(fresh: set[str]) -> None:
        if settings.inbox_inline:
            request.app[PROCESSOR].schedule([u for u in units if u["key"] in fresh])

    try:
        fresh = await _stored(request.app[INBOX_WRITER].store(units), late=handle)
    except (SQLAlchemyError, OSError, DatabaseUnavailable, TimeoutError):
        metrics.DB_ERRORS.inc()
        log.error("webhook could not store an update; answering 503 so Meta retries")
        return web.Response(status=503, text="Try again")
    for unit in units:
        metrics.WEBHOOK_UNITS.labels(
            kind=unit["kind"], duplicate=str(unit["key"] not in fresh).lower()
        ).inc()
    handle(fresh)
    return web.Response(text="ok")


async def _stored(storing: Awaitable[set[str]], *, late: Callable[[set[str]], None]) -> set[str]:
    """The group commit's answer within STORE_SECONDS. Past that the request answers
    503 but the commit is left to finish (it is shared with other requests); stored
    after all, its new units go to ``late`` (handled as if answered in time) and Meta's
    retry is a duplicate."""
    task = asyncio.ensure_future(storing)
    try:
        return await asyncio.wait_for(asyncio.shield(task), STORE_SECONDS)
    except TimeoutError:
        task.add_done_callback(
            lambda t: None if t.cancelled() or t.exception() else late(t.result())
        )
        raise


def setup(app: web.Application) -> None:
    app.router.add_get("/api/webhooks/whatsapp", challenge)
    app.router.add_post("/api/webhooks/whatsapp", receive)

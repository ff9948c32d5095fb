"""``GET/POST /api/webhooks/whatsapp``: Meta's challenge, and durable signed updates."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from pywa.utils import webhook_updates_validator
from sqlalchemy.exc import SQLAlchemyError

from bot import metrics
from bot.inbox import MalformedUpdate, split_update
from bot.keys import INBOX_WRITER, PROCESSOR, SETTINGS
from storage import trace
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY = 3 * 1024 * 1024  # aiohttp answers 413 above it
# Meta's updates nest about ten levels deep; a signed body nested thousands deep would
# exhaust the parser's recursion (a 500) before anything else looked at it
MAX_DEPTH = 64
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")


def nesting_within(body: bytes, limit: int) -> bool:
    """Whether the JSON text's arrays and objects nest at most about ``limit`` levels
    (up to twice that when the two alternate), looked at without parsing: strings
    dropped, then the brackets alone, innermost pairs removed once per level, in C."""
    if body.count(b"[") + body.count(b"{") <= limit:  # every update Meta sends
        return True
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    for _ in range(limit):
        if not brackets:
            return True
        inner = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if inner == brackets:  # unbalanced: not JSON, the parser will say so
            return True
        brackets = inner
    return not brackets


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
        if not nesting_within(body, MAX_DEPTH):
            return web.Response(status=400, text="Malformed update: nested too deep")
        units = split_update(json.loads(body))
    except (ValueError, MalformedUpdate, UnicodeDecodeError, RecursionError):
        return web.Response(status=400, text="Malformed update")

    request_id = trace.request_id()
    for unit in units:  # processed later, maybe elsewhere: it logs the same id
        unit["request_id"] = request_id

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

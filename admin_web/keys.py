"""Typed keys for what the web pages read off the aiohttp application.

The web side needs the database and a few settings; it declares the keys (typed with
protocols, so it imports nothing above it) and ``bot.app`` fills them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from storage.crypto import PiiCipher
from storage.db import Database
from storage.media import MediaStore


class WebSettings(Protocol):
    """The settings the web pages read."""

    @property
    def wa_business_number(self) -> str: ...

    @property
    def public_base_url(self) -> str: ...

    @property
    def dev_mode(self) -> bool: ...

    @property
    def jwt_secret(self) -> str | None: ...

    @property
    def pii_key(self) -> bytes: ...

    @property
    def worker_cache_ttl(self) -> int: ...

    @property
    def cost_estimator_rate(self) -> int: ...

    @property
    def admin_allowed_ips(self) -> tuple[str, ...]: ...


SETTINGS: web.AppKey[WebSettings] = web.AppKey("web_settings")
DB: web.AppKey[Database] = web.AppKey("db")
CIPHER: web.AppKey[PiiCipher] = web.AppKey("cipher")
MEDIA: web.AppKey[MediaStore] = web.AppKey("media")
# "new outbox rows were committed": a web action that tells someone wakes the sender
OUTBOX_NOTIFY: web.AppKey[Callable[[], None]] = web.AppKey("outbox_notify")
# the Dramatiq queues: (queue, waiting, running, delayed, dead) each, read off the broker
# (blocking: call it in a thread); and "retry every dead job", returning how many
QUEUE_DEPTHS: web.AppKey[Callable[[], list[tuple[str, int, int, int, int]]]] = web.AppKey(
    "queue_depths"
)
RETRY_DEAD_JOBS: web.AppKey[Callable[[], int]] = web.AppKey("retry_dead_jobs")

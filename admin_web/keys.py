"""Typed keys for what the web pages read off the aiohttp application.

The web side needs the database and a few settings; it declares the keys (typed with
protocols, so it imports nothing above it) and ``bot.app`` fills them.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from storage.db import Database
from storage.media import MediaStore


class WebSettings(Protocol):
    """The settings the public pages read."""

    @property
    def wa_business_number(self) -> str: ...

    @property
    def public_base_url(self) -> str: ...

    @property
    def dev_mode(self) -> bool: ...

    @property
    def worker_cache_ttl(self) -> int: ...


SETTINGS: web.AppKey[WebSettings] = web.AppKey("web_settings")
DB: web.AppKey[Database] = web.AppKey("db")
MEDIA: web.AppKey[MediaStore] = web.AppKey("media")

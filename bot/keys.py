"""Typed keys for what ``create_app`` stores on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from admin_web.keys import DB, MEDIA  # the web side declares the keys it reads

if TYPE_CHECKING:
    from bot.dispatcher import Dispatcher
    from bot.inbox import InboxProcessor, InboxWriter
    from bot.outbox import OutboxDispatcher
    from bot.settings import Settings
    from storage.crypto import PiiCipher

__all__ = ["DB", "MEDIA", "SETTINGS"]

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CIPHER: web.AppKey[PiiCipher] = web.AppKey("cipher")
PROCESSOR: web.AppKey[InboxProcessor] = web.AppKey("processor")
INBOX_WRITER: web.AppKey[InboxWriter] = web.AppKey("inbox_writer")
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
OUTBOX: web.AppKey[OutboxDispatcher] = web.AppKey("outbox")
BROKER: web.AppKey[Any] = web.AppKey("broker")
ACTORS: web.AppKey[Any] = web.AppKey("actors")

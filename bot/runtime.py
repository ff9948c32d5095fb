"""The pieces every Jastipin process wires the same way (API, worker, chat)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import httpx
from pywa_async import WhatsApp

from bot.dispatcher import Dispatcher
from bot.inbox import InboxProcessor
from bot.jobs import finish_if_done, finish_settled
from bot.outbox import OutboxDispatcher
from bot.pace import build_pace
from bot.settings import Settings
from bot.transport import PywaTransport, SandboxTransport, Transport, build_wa_client
from flows.base import Resources
from storage.crypto import PiiCipher
from storage.db import Database
from storage.media import MediaStore, build_media_store
from storage.sealed import open_cipher

# Shutdown (SIGTERM), step by step, each bounded; docker-compose's stop_grace_period
# (45 s) covers their sum, and docs/RUNBOOK.md section A says what each step does.
WEBHOOK_DRAIN_SECONDS = 10.0  # webhook requests in flight finish (no new ones accepted)
INBOX_DRAIN_SECONDS = 10.0  # units in hand are processed; the rest stay pending
OUTBOX_DRAIN_SECONDS = 10.0  # sends in flight finish; claimed rows not sent go back
JOBS_DRAIN_SECONDS = 20.0  # Dramatiq messages in progress finish; prefetched ones go back


@dataclasses.dataclass
class Runtime:
    """Database, cipher, media, the WhatsApp client and the three engines."""

    settings: Settings
    db: Database
    cipher: PiiCipher
    media: MediaStore
    http: httpx.AsyncClient
    wa: WhatsApp
    transport: Transport
    outbox: OutboxDispatcher
    dispatcher: Dispatcher
    processor: InboxProcessor
    lane_http: list[httpx.AsyncClient] = dataclasses.field(default_factory=list)

    async def aclose(self) -> None:
        await self.processor.close()
        await self.transport.close()
        await self.http.aclose()
        for client in self.lane_http:
            await client.aclose()
        await self.db.dispose()


def build_transport(settings: Settings, wa: WhatsApp, media: MediaStore) -> Transport:
    """The Graph API with credentials, the local sandbox without (dev mode)."""
    if settings.dev_mode:
        return SandboxTransport()
    return PywaTransport(wa, media)


def _http_client(settings: Settings) -> httpx.AsyncClient:
    """pywa's httpx client, over aiohttp's connection pool: httpcore's pool checks every
    connection on every request, which cost more CPU than the sends themselves at a few
    hundred messages a second (docs/BENCHMARKS.md)."""
    from httpx_aiohttp import AiohttpTransport

    room = settings.outbox_batch + 8  # every send of a lane's batch at once, and replies
    return httpx.AsyncClient(
        timeout=httpx.Timeout(15.0, connect=5.0),
        transport=AiohttpTransport(
            limits=httpx.Limits(max_connections=room, max_keepalive_connections=room)
        ),
    )


def build_runtime(settings: Settings, *, transport: Transport | None = None) -> Runtime:
    """Everything a process needs, made now (call it inside the running event loop)."""
    db = Database(settings.database_url, sqlite_inline=settings.sqlite_inline)
    cipher = open_cipher(settings.pii_key)
    media = build_media_store(settings)
    http = _http_client(settings)
    wa = build_wa_client(settings, http)
    sender = transport or build_transport(settings, wa, media)
    # each outbox lane sends through a client of its own: httpcore's pool costs grow with
    # connections × waiting requests, so one big pool spent more CPU than the sends did
    lane_http = [_http_client(settings) for _ in range(settings.outbox_lanes - 1)]
    lane_senders = [sender] + [
        transport or build_transport(settings, build_wa_client(settings, h), media)
        for h in lane_http
    ]

    async def broadcast_progress(broadcast_id: int) -> None:
        await finish_if_done(db, broadcast_id)

    outbox = OutboxDispatcher(
        db,
        sender,
        cipher,
        poll_seconds=settings.outbox_poll_seconds,
        default_rate=settings.cost_estimator_rate,
        pace=build_pace(settings),
        on_broadcast_progress=broadcast_progress,
        batch=settings.outbox_batch,
        lanes=settings.outbox_lanes,
        lane_transports=lane_senders,
        after_recovery=lambda: finish_settled(db),
        lease=dt.timedelta(seconds=settings.outbox_lease_seconds),
        resend_grace=dt.timedelta(seconds=settings.outbox_resend_grace_seconds),
    )
    resources = Resources(cipher=cipher, settings=settings, media=media)
    dispatcher = Dispatcher(db, resources, after_commit=outbox.notify, wa=wa)
    processor = InboxProcessor(db, wa, dispatcher)
    return Runtime(
        settings=settings,
        db=db,
        cipher=cipher,
        media=media,
        http=http,
        lane_http=lane_http,
        wa=wa,
        transport=sender,
        outbox=outbox,
        dispatcher=dispatcher,
        processor=processor,
    )

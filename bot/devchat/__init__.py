"""``/dev/chat``: a WhatsApp-like page to talk to the local bot (dev mode only).

Pick or type a phone number, send text, tap reply buttons and list rows, send a photo or
a PDF; each goes through the real webhook, signed the way Meta signs when
``WA_APP_SECRET`` is set, and is handled by the same processor, database and outbox as
a real message. What the bot sends is read from the outbox as it leaves it (the
sandbox transport: nothing reaches WhatsApp) and shown as bubbles — server-rendered,
so the page works as a plain form, and pushed over server-sent events by
``static/devchat.js`` when JavaScript runs.

With WhatsApp credentials set none of these routes exist (404), and they answer only
callers on this machine's loopback that no proxy forwarded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot import simulate
from bot.devchat import graph
from bot.devchat.render import PHOTO, Contact, Item, Person, bubble, page, people_list
from bot.keys import CIPHER, DB, MEDIA, OUTBOX, PROCESSOR, SETTINGS
from bot.settings import is_loopback
from bot.transport import sandbox_wamid
from locales import DEFAULT_LOCALE, LOCALES, Translator, _
from storage.crypto import normalise_phone
from storage.demo import DEMO_PHONE
from storage.models import OutboxMessage, OutboxStatus, utcnow
from storage.repo import chatview, users
from storage.repo import outbox as outbox_repo

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 16 * 1024 * 1024  # the bot itself refuses proofs over 5 MB, in the chat
POLL_SECONDS = 0.25  # how often the event stream looks at the outbox
KEEPALIVE_SECONDS = 15.0
KEEP_SENT = 500  # messages remembered per simulated number (in memory, until a restart)
# fictitious numbers in the demo's range, like the demo jastiper's
DEMO_BUYERS = (("Sari", "6281100000101"), ("Budi", "6281100000102"), ("Rina", "6281100000103"))
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


@dataclasses.dataclass(slots=True)
class Sent:
    """What one simulated person sent, kept in memory for the page (dev mode only)."""

    seq: int
    payload: dict[str, Any]
    mark: int  # the person's last outbox row when it was sent: bubbles after it come later
    at: dt.datetime


@dataclasses.dataclass
class ChatLog:
    by_phone: dict[str, list[Sent]] = dataclasses.field(default_factory=dict)
    seq: int = 0

    def add(self, phone: str, payload: dict[str, Any], mark: int) -> Sent:
        self.seq += 1
        entry = Sent(self.seq, payload, mark, utcnow())
        sent = self.by_phone.setdefault(phone, [])
        sent.append(entry)
        del sent[:-KEEP_SENT]  # a dev tool's memory: the latest messages are enough
        return entry


LOG: web.AppKey[ChatLog] = web.AppKey("devchat_log", ChatLog)


WEBHOOK_FAILED = _(
    "Webhook tidak menerima pesan ini ({reason}). Tidak ada yang terkirim; coba lagi."
)


class WebhookRefused(Exception):
    """The app's own webhook did not answer 200 (e.g. 503 while the database is down)."""


class BadInput(Exception):
    """A form the page cannot send; the message is a catalogue id."""


def _lang(value: str | None) -> str:
    return value if value in LOCALES else DEFAULT_LOCALE


def _people_names(tr: Translator) -> list[tuple[str, str, str]]:
    return [("Tina", DEMO_PHONE, tr(_("jastiper demo")))] + [
        (name, phone, tr(_("pembeli demo"))) for name, phone in DEMO_BUYERS
    ]


def _contact(phone: str | None, name: str | None, lang: str) -> Contact | None:
    if not phone or not phone.strip():
        return None
    digits = normalise_phone(phone)
    if not 8 <= len(digits) <= 15:
        raise BadInput(_("Nomor WhatsApp tidak valid: tulis 8–15 angka, mis. 081234567890."))
    known = {p: n for n, p in [("Tina", DEMO_PHONE), *DEMO_BUYERS]}
    return Contact(
        phone=digits, name=(name or "").strip()[:60] or known.get(digits, ""), lang=lang
    )


def _secured(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _local_only(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not is_loopback(request.remote) or any(h in request.headers for h in _PROXY_HEADERS):
            return web.Response(status=403, text="The simulator is served to this machine only")
        response = await handler(request)
        return response if response.prepared else _secured(response)

    return guarded


async def _outbox_rows(app: web.Application, phone: str, after_id: int = 0) -> list[Any]:
    async with app[DB].read() as session:
        user = await users.find_user(session, app[CIPHER], bsuid=None, wa_id=phone)
        if user is None:
            return []
        return await outbox_repo.for_user(session, user.id, after_id=after_id)


def _bot_item(row: OutboxMessage, status: str | None) -> Item:
    return Item(
        f"o{row.id}",
        "bot",
        row.payload,
        float(row.id),
        out_id=row.id,
        at=row.sent_at,
        status=status or "sent",
    )


async def feed(app: web.Application, phone: str, after_id: int = 0) -> list[Item]:
    """Everything in the chat, in order: what the person sent and what has left the
    outbox for them (rows still waiting are not shown yet), with the status reported."""
    rows = [
        r for r in await _outbox_rows(app, phone, after_id) if r.status == OutboxStatus.SENT.value
    ]
    async with app[DB].read() as session:
        reported = await chatview.statuses(session, [r.id for r in rows])
    items = [_bot_item(r, reported.get(r.id)) for r in rows]
    if after_id == 0:
        items += [
            Item(f"i{s.seq}", "me", s.payload, s.mark + 0.5, at=s.at, status="delivered")
            for s in app[LOG].by_phone.get(phone, [])
        ]
    return sorted(items, key=lambda i: (i.order, i.id))


async def mark_read(request: web.Request, phone: str, row_ids: list[int]) -> None:
    """The person has the chat open: report the messages read, as WhatsApp does, through
    the real status webhook (the ticks turn blue, the unread count drops)."""
    for row_id in row_ids:
        wamid = sandbox_wamid(outbox_repo.tracker_for(row_id))
        await post_webhook(request, simulate.status(wamid, "read", phone))
    if row_ids:
        await settle(request.app)


async def _unread_ids(app: web.Application, phone: str) -> list[int]:
    async with app[DB].read() as session:
        user = await users.find_user(session, app[CIPHER], bsuid=None, wa_id=phone)
        return [r.id for r in await chatview.unread(session, user.id)] if user else []


async def _people(request: web.Request, tr: Translator) -> list[Person]:
    """The chat list: each demo person's unread count and last message."""
    app = request.app
    out = []
    for name, phone, role in _people_names(tr):
        unread, last = 0, None
        async with app[DB].read() as session:
            user = await users.find_user(session, app[CIPHER], bsuid=None, wa_id=phone)
            if user is not None:
                unread = len(await chatview.unread(session, user.id))
                last = await chatview.last_sent(session, user.id)
        preview = role
        at = None
        if last is not None:
            payload = last.payload
            preview = str(payload.get("text") or payload.get("caption") or "").split("\n")[0]
            preview = preview or tr(PHOTO)
            at = last.sent_at
        out.append(Person(name, phone, role, unread, preview[:60], at))
    return out


async def chat_page(request: web.Request) -> web.Response:
    lang = _lang(request.query.get("lang"))
    tr = Translator(lang)
    try:
        contact = _contact(request.query.get("phone"), request.query.get("name"), lang)
    except BadInput as exc:
        body = page(tr, lang, await _people(request, tr), None, [], error=tr(str(exc)))
        return web.Response(text=body, content_type="text/html", status=400)
    if contact:  # opening a chat reads it
        await mark_read(request, contact.phone, await _unread_ids(request.app, contact.phone))
    items = await feed(request.app, contact.phone) if contact else []
    body = page(tr, lang, await _people(request, tr), contact, items)
    return web.Response(text=body, content_type="text/html")


async def people_json(request: web.Request) -> web.Response:
    """``GET /dev/chat/people``: the chat list (unread counts, last messages) and the
    status of each message in the open chat, for the page to refresh both."""
    lang = _lang(request.query.get("lang"))
    tr = Translator(lang)
    try:
        contact = _contact(request.query.get("phone"), request.query.get("name"), lang)
    except BadInput as exc:
        return web.json_response({"error": tr(str(exc))}, status=400)
    ticks: dict[str, str] = {}
    if contact is not None:
        ticks = {i.id: i.status for i in await feed(request.app, contact.phone) if i.out_id}
    html_list = people_list(await _people(request, tr), contact, lang)
    return web.json_response({"html": html_list, "ticks": ticks})


async def feed_json(request: web.Request) -> web.Response:
    lang = _lang(request.query.get("lang"))
    tr = Translator(lang)
    try:
        contact = _contact(request.query.get("phone"), request.query.get("name"), lang)
    except BadInput as exc:
        return web.json_response({"error": tr(str(exc))}, status=400)
    if contact is None:
        return web.json_response({"error": "phone is required"}, status=400)
    items = await feed(request.app, contact.phone)
    return web.json_response({"items": [i.as_json(contact, tr) for i in items]})


async def _read_form(request: web.Request) -> dict[str, Any]:
    """The form's fields, the file (if any) as ``(data, content type, name)``; read by
    hand so a photo is limited by :data:`MAX_UPLOAD`, not the webhook's body limit."""
    if not request.content_type.startswith("multipart/"):
        return dict(await request.post())
    fields: dict[str, Any] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
            continue
        if part.filename is not None:
            data = bytearray()
            while chunk := await part.read_chunk():
                data += chunk
                if len(data) > MAX_UPLOAD:
                    raise BadInput(_("Berkas terlalu besar untuk simulator (maks. 16 MB)."))
            if data:
                ctype = part.headers.get(aiohttp.hdrs.CONTENT_TYPE) or ""
                fields["file"] = (bytes(data), ctype, part.filename)
        else:
            fields[part.name] = await part.text()
    return fields


def file_kind(data: bytes, declared: str, filename: str) -> tuple[str, str]:
    """(message type, MIME type) WhatsApp would give the file: a PDF is a document, a
    picture a photo (the bot checks the content itself, whatever is declared)."""
    mime = declared if declared and declared != "application/octet-stream" else ""
    mime = mime or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if data.startswith(b"%PDF-") or mime == "application/pdf":
        return "document", "application/pdf"
    if mime.startswith("image/"):
        return "image", mime
    return "document", mime


async def post_webhook(request: web.Request, body: dict[str, Any]) -> None:
    """POST ``body`` to this very app's webhook, signed as Meta signs it."""
    settings = request.app[SETTINGS]
    raw = simulate.encode(body)
    headers = {"Content-Type": "application/json"}
    if settings.wa_app_secret:
        headers["X-Hub-Signature-256"] = simulate.sign(raw, settings.wa_app_secret)
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    host, port = (sockname[0], sockname[1]) if sockname else ("127.0.0.1", settings.port)
    host = f"[{host}]" if ":" in host else host
    url = f"http://{host}:{port}/api/webhooks/whatsapp"
    async with aiohttp.ClientSession() as http, http.post(url, data=raw, headers=headers) as r:
        if r.status != 200:
            raise WebhookRefused(f"{r.status} {await r.text()}")


async def send(request: web.Request) -> web.StreamResponse:
    """``POST /dev/chat/send``: a text, a tap or a file, as the chosen person."""
    app = request.app
    wants_json = "application/json" in request.headers.get("Accept", "")
    lang = DEFAULT_LOCALE
    try:
        form = await _read_form(request)
        lang = _lang(form.get("lang"))
        contact = _contact(form.get("phone"), form.get("name"), lang)
        if contact is None:
            raise BadInput(_("Nomor WhatsApp tidak valid: tulis 8–15 angka, mis. 081234567890."))
    except BadInput as exc:
        tr = Translator(lang)
        if wants_json:
            return web.json_response({"error": tr(str(exc))}, status=400)
        return web.Response(
            text=page(tr, lang, await _people(request, tr), None, [], error=tr(str(exc))),
            content_type="text/html",
            status=400,
        )
    tr = Translator(contact.lang)
    phone, name = contact.phone, contact.name or None
    text = str(form.get("text") or "").strip()
    upload = form.get("file")
    if form.get("tap_id"):
        title = str(form.get("tap_title") or "")
        as_list = form.get("tap_kind") == "list"
        body = simulate.tap(phone, str(form["tap_id"]), title, as_list=as_list, name=name)
        mine: dict[str, Any] = {"type": "tap", "text": title}
    elif upload:
        data, declared, filename = upload
        kind, mime = file_kind(data, declared, filename)
        media_id = await graph.store_upload(app[MEDIA], data, mime, filename)
        doc_name = filename if kind == "document" else None
        body = simulate.media(
            phone, kind, media_id, mime, caption=text or None, filename=doc_name, name=name
        )
        mine = {"type": kind, "media_id": media_id, "text": text, "filename": doc_name}
    elif text:
        body = simulate.text(phone, text, name=name)
        mine = {"type": "text", "text": text}
    else:
        if wants_json:
            return web.json_response({"item": None})
        raise web.HTTPSeeOther(f"/dev/chat?{contact.query()}#end")
    rows = await _outbox_rows(app, phone)
    entry = app[LOG].add(phone, mine, rows[-1].id if rows else 0)
    try:
        await post_webhook(request, body)
    except (WebhookRefused, aiohttp.ClientError) as exc:
        app[LOG].by_phone[phone].remove(entry)
        message = tr(WEBHOOK_FAILED, reason=str(exc))
        if wants_json:
            return web.json_response({"error": message}, status=502)
        items = await feed(app, phone)
        people = await _people(request, tr)
        body_html = page(tr, contact.lang, people, contact, items, error=message)
        return web.Response(text=body_html, content_type="text/html", status=502)
    await settle(app)
    if wants_json:
        item = Item(f"i{entry.seq}", "me", mine, entry.mark + 0.5, at=entry.at, status="delivered")
        return web.json_response({"item": item.as_json(contact, tr)})
    raise web.HTTPSeeOther(f"/dev/chat?{contact.query()}#end")


async def settle(app: web.Application) -> None:
    """Let this process handle the message and send the replies now, where it does
    both (the default), so a plain-form page shows the answer right after the post."""
    settings = app[SETTINGS]
    if settings.inbox_inline:
        await app[PROCESSOR].drain()
    if settings.outbox_inline:
        await app[OUTBOX].flush()


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /dev/chat/events``: server-sent events, one per message as it leaves the
    outbox for the chosen person (``after``/``Last-Event-ID``: the last one shown)."""
    lang = _lang(request.query.get("lang"))
    tr = Translator(lang)
    try:
        contact = _contact(request.query.get("phone"), request.query.get("name"), lang)
    except BadInput as exc:
        return web.Response(status=400, text=tr(str(exc)))
    if contact is None:
        return web.Response(status=400, text="phone is required")
    last = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
    after = int(last) if last.isdigit() else 0
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    _secured(response)
    try:
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")
        async for item in _stream(request.app, contact.phone, after):
            if item is None:
                await response.write(b": keep-alive\n\n")
                continue
            data = json.dumps(item.as_json(contact, tr))
            await response.write(f"id: {item.out_id}\nevent: message\ndata: {data}\n\n".encode())
            if item.out_id is not None:  # shown in the open chat: read
                await mark_read(request, contact.phone, [item.out_id])
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError too
        # the tab was closed or reloaded: the normal end of a stream, not an error
        log.info("devchat stream closed: the page went away")
    return response


async def _stream(app: web.Application, phone: str, after: int) -> AsyncIterator[Item | None]:
    """Each outbox row as it is sent (in order); None now and then to keep the line up."""
    idle = 0.0
    while True:
        rows = await _outbox_rows(app, phone, after)
        for row in rows:
            if row.status != OutboxStatus.SENT.value:
                break  # sent in id order: a later row waits for this one
            after = row.id
            idle = 0.0
            yield _bot_item(row, None)
        await asyncio.sleep(POLL_SECONDS)
        idle += POLL_SECONDS
        if idle >= KEEPALIVE_SECONDS:
            idle = 0.0
            yield None


async def media_out(request: web.Request) -> web.Response:
    """An image or document the bot sent (by its outbox row, for the chosen person)."""
    phone = normalise_phone(request.query.get("phone", ""))
    row_id = request.match_info["row_id"]
    if not row_id.isdigit() or not phone:
        raise web.HTTPNotFound()
    rows = await _outbox_rows(request.app, phone, int(row_id) - 1)
    if not rows or rows[0].id != int(row_id) or "media_key" not in rows[0].payload:
        raise web.HTTPNotFound()
    payload = rows[0].payload
    data = await request.app[MEDIA].get(payload["media_key"])
    return graph.file_response(data, payload.get("mime_type") or _sniff(data))


async def media_in(request: web.Request) -> web.Response:
    """A photo or PDF the simulated person sent."""
    found = await graph.load_upload(request.app[MEDIA], request.match_info["media_id"])
    if found is None:
        raise web.HTTPNotFound()
    data, meta = found
    return graph.file_response(data, meta["mime_type"])


def _sniff(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


async def static(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in {"devchat.js", "devchat.css"}:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name)


def setup(app: web.Application) -> None:
    """Add the simulator's routes, in dev mode only (with credentials: 404)."""
    if not app[SETTINGS].dev_mode:
        return
    app[LOG] = ChatLog()
    get, post = app.router.add_get, app.router.add_post
    get("/dev/chat", _local_only(chat_page))
    post("/dev/chat/send", _local_only(send))
    get("/dev/chat/feed", _local_only(feed_json))
    get("/dev/chat/people", _local_only(people_json))
    get("/dev/chat/events", _local_only(events))
    get("/dev/chat/media/out/{row_id}", _local_only(media_out))
    get("/dev/chat/media/in/{media_id}", _local_only(media_in))
    get("/dev/chat/static/{name}", _local_only(static))
    get(graph.GRAPH_PATH + "/files/{media_id}", _local_only(graph.download))
    get(graph.GRAPH_PATH + "/{version:v[0-9.]+}/{media_id}", _local_only(graph.lookup))


__all__ = ["DEMO_BUYERS", "bubble", "feed", "setup"]

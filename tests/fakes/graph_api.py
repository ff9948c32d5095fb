"""A local fake of Meta's WhatsApp Cloud (Graph) API, for tests and benchmarks.

The fake is an :mod:`aiohttp` application that speaks enough of the Graph API for the real
``pywa_async.WhatsApp`` client to send messages, mark messages as read and upload / download /
delete media against it. Message payloads are validated with the limits Meta enforces
(text length, button and list-row counts and title lengths, ...) and rejected with
Meta-shaped error bodies, so a test fails here the same way production would fail.

Typical use in a test::

    async with FakeGraphAPI.running() as fake:
        session = httpx.AsyncClient()
        wa = WhatsApp(phone_id="1234", token="test-token", session=session)
        fake.attach(session)  # keep pywa's /v<version> path, swap graph.facebook.com
        await wa.send_message(to="628123", text="halo")
        assert fake.texts_to("628123") == ["halo"]

Standalone (for benchmarks and manual tries)::

    python -m tests.fakes.graph_api --port 8900 --latency 0.2

Error codes used for rejected payloads (mirroring what Meta answers):

* ``100`` (``Invalid parameter``): a required field is missing or has the wrong type, the
  message ``type`` (or interactive type) is unknown, the text body is too long, or an upload
  has an unsupported MIME type.
* ``131009`` (``Parameter value is not valid``): a field is present but breaks a limit
  (button / row / section counts, title and text lengths, duplicate ids, ``link``/``id``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import dataclasses
import hashlib
import itertools
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import httpx
from aiohttp import web

__all__ = [
    "SUPPORTED_UPLOAD_MIME_TYPES",
    "FakeGraphAPI",
    "StoredMedia",
    "meta_error",
]

_VERSION = r"{version:v\d+(?:\.\d+)?}"
"""Route segment matching Graph API versions such as ``v25.0`` or ``v26``."""

MAX_UPLOAD_BYTES = 110 * 1024 * 1024
"""Largest request body the fake accepts (Meta's document limit is 100 MB)."""

SUPPORTED_UPLOAD_MIME_TYPES: frozenset[str] = frozenset(
    {
        # audio
        "audio/aac",
        "audio/amr",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        # documents
        "text/plain",
        "application/pdf",
        "application/vnd.ms-powerpoint",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        # images and stickers
        "image/jpeg",
        "image/png",
        "image/webp",
        # video
        "video/3gpp",
        "video/mp4",
    }
)
"""MIME types Meta accepts on ``POST /{phone_id}/media`` (anything else is a code 100 error)."""

MEDIA_MESSAGE_TYPES = frozenset({"image", "document", "audio", "video", "sticker"})
CAPTIONED_MEDIA_TYPES = frozenset({"image", "document", "video"})
KNOWN_MESSAGE_TYPES = MEDIA_MESSAGE_TYPES | {
    "text",
    "interactive",
    "template",
    "reaction",
    "location",
    "contacts",
}
KNOWN_INTERACTIVE_TYPES = frozenset(
    {
        "button",
        "list",
        "cta_url",
        "flow",
        "catalog_message",
        "product",
        "product_list",
        "location_request_message",
        "voice_call",
        "call_permission_request",
        "request_contact_info",
        "address_message",
        "carousel",
    }
)

_TITLES = {
    100: "Invalid parameter",
    104: "An access token is required to request this resource.",
    190: "Invalid OAuth access token - Cannot parse access token",
    131000: "Something went wrong",
    131009: "Parameter value is not valid",
}


def _fbtrace_id() -> str:
    """Return a random trace id shaped like Meta's ``fbtrace_id``."""
    return "A" + secrets.token_urlsafe(16)


def meta_error(
    code: int,
    title: str | None = None,
    details: str | None = None,
    *,
    subcode: int | None = None,
    whatsapp: bool = True,
) -> dict[str, Any]:
    """Build the inner ``error`` object of a Graph API error answer.

    Args:
        code: The Graph / WhatsApp error code (e.g. ``131009``).
        title: Short title; the message becomes ``"(#<code>) <title>"``. Defaults to a known
            title for the code.
        details: Human-readable details, placed in ``error_data.details``.
        subcode: Optional ``error_subcode``.
        whatsapp: Whether to add the WhatsApp ``error_data`` block (Graph-level errors such as
            authentication failures do not carry one).

    Returns:
        A dict to be wrapped as ``{"error": ...}``.
    """
    title = title or _TITLES.get(code, "Unknown error")
    error: dict[str, Any] = {
        "message": f"(#{code}) {title}",
        "type": "OAuthException",
        "code": code,
    }
    if whatsapp:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details or title}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = _fbtrace_id()
    return error


class _Rejected(Exception):
    """Raised by the validators; carries the Meta error for the answer."""

    def __init__(self, code: int, details: str, title: str | None = None) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.title = title

    def to_error(self) -> dict[str, Any]:
        """Return the inner Meta ``error`` object for this rejection."""
        return meta_error(self.code, self.title, self.details)


def _missing(path: str) -> _Rejected:
    return _Rejected(100, f"The parameter {path} is required.")


def _invalid(details: str) -> _Rejected:
    return _Rejected(131009, details)


def _obj(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """Return ``parent[key]`` if it is an object, else reject as missing."""
    value = parent.get(key)
    if not isinstance(value, dict):
        raise _missing(path)
    return value


def _str(parent: dict[str, Any], key: str, path: str) -> str:
    """Return ``parent[key]`` if it is a string, else reject as missing."""
    value = parent.get(key)
    if not isinstance(value, str):
        raise _missing(path)
    return value


def _check_len(value: str, label: str, lo: int, hi: int) -> None:
    """Reject (131009) when ``len(value)`` is outside ``lo..hi``."""
    if not lo <= len(value) <= hi:
        raise _invalid(f"{label} length invalid. Min length: {lo}, Max length: {hi}")


def _check_media_object(media: dict[str, Any], path: str) -> None:
    """Require exactly one of ``link`` / ``id``; a link must be an http(s) URL."""
    has_link, has_id = "link" in media, "id" in media
    if has_link == has_id:
        raise _invalid(f"{path} must have exactly one of 'link' or 'id'")
    if has_link:
        link = media["link"]
        if not isinstance(link, str) or not link.startswith(("http://", "https://")):
            raise _invalid(f"{path}['link'] must be an http(s) URL")
    elif not isinstance(media["id"], str | int) or not str(media["id"]):
        raise _invalid(f"{path}['id'] must be a media id")


def _validate_text(payload: dict[str, Any]) -> None:
    text = _obj(payload, "text", "text")
    body = _str(text, "body", "text['body']")
    if not body:
        raise _missing("text['body']")
    if len(body) > 4096:
        raise _Rejected(
            100,
            "Param text['body'] must be at most 4096 characters long.",
            title="Param text['body'] must be at most 4096 characters long.",
        )


def _validate_media(payload: dict[str, Any], typ: str) -> None:
    media = _obj(payload, typ, typ)
    _check_media_object(media, typ)
    caption = media.get("caption")
    if caption is not None:
        if typ not in CAPTIONED_MEDIA_TYPES:
            raise _invalid(f"Param {typ}['caption'] is not supported for {typ} messages")
        if not isinstance(caption, str):
            raise _missing(f"{typ}['caption']")
        _check_len(caption, "Caption", 0, 1024)
    filename = media.get("filename")
    if filename is not None and not isinstance(filename, str):
        raise _invalid(f"Param {typ}['filename'] must be a string")


def _validate_template(payload: dict[str, Any]) -> None:
    template = _obj(payload, "template", "template")
    if not _str(template, "name", "template['name']"):
        raise _missing("template['name']")
    language = _obj(template, "language", "template['language']")
    if not _str(language, "code", "template['language']['code']"):
        raise _missing("template['language']['code']")


def _validate_reaction(payload: dict[str, Any]) -> None:
    reaction = _obj(payload, "reaction", "reaction")
    if not _str(reaction, "message_id", "reaction['message_id']"):
        raise _missing("reaction['message_id']")
    _str(reaction, "emoji", "reaction['emoji']")  # "" removes a reaction


def _validate_location(payload: dict[str, Any]) -> None:
    location = _obj(payload, "location", "location")
    for key in ("latitude", "longitude"):
        if not isinstance(location.get(key), int | float | str):
            raise _missing(f"location['{key}']")


def _validate_contacts(payload: dict[str, Any]) -> None:
    contacts = payload.get("contacts")
    if not isinstance(contacts, list) or not contacts:
        raise _missing("contacts")


def _validate_header(interactive: dict[str, Any], *, text_only: bool) -> None:
    header = interactive.get("header")
    if header is None:
        return
    if not isinstance(header, dict):
        raise _missing("interactive['header']['type']")
    htype = _str(header, "type", "interactive['header']['type']")
    if htype == "text":
        _check_len(_str(header, "text", "interactive['header']['text']"), "Header text", 1, 60)
    elif htype in {"image", "video", "document"} and not text_only:
        _check_media_object(_obj(header, htype, f"interactive['header']['{htype}']"), htype)
    else:
        raise _invalid(f"Header type '{htype}' is not supported for this interactive message")


def _validate_body_footer(interactive: dict[str, Any], *, body_required: bool) -> None:
    body = interactive.get("body")
    if body is None:
        if body_required:
            raise _missing("interactive['body']")
    else:
        if not isinstance(body, dict):
            raise _missing("interactive['body']['text']")
        _check_len(_str(body, "text", "interactive['body']['text']"), "Body text", 1, 1024)
    footer = interactive.get("footer")
    if footer is not None:
        if not isinstance(footer, dict):
            raise _missing("interactive['footer']['text']")
        _check_len(_str(footer, "text", "interactive['footer']['text']"), "Footer text", 1, 60)


def _validate_buttons(interactive: dict[str, Any]) -> None:
    _validate_header(interactive, text_only=False)
    _validate_body_footer(interactive, body_required=True)
    action = _obj(interactive, "action", "interactive['action']")
    buttons = action.get("buttons")
    if not isinstance(buttons, list):
        raise _missing("interactive['action']['buttons']")
    if not 1 <= len(buttons) <= 3:
        raise _invalid("Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3")
    seen: set[str] = set()
    for button in buttons:
        if not isinstance(button, dict) or button.get("type") != "reply":
            raise _invalid("Invalid button type. Only 'reply' buttons are allowed")
        reply = _obj(button, "reply", "interactive['action']['buttons'][]['reply']")
        _check_len(
            _str(reply, "title", "interactive['action']['buttons'][]['reply']['title']"),
            "Button title",
            1,
            20,
        )
        button_id = _str(reply, "id", "interactive['action']['buttons'][]['reply']['id']")
        _check_len(button_id, "Button id", 1, 256)
        if button_id in seen:
            raise _invalid(f"Button id is not unique: {button_id!r}")
        seen.add(button_id)


def _validate_list(interactive: dict[str, Any]) -> None:
    _validate_header(interactive, text_only=True)
    _validate_body_footer(interactive, body_required=True)
    action = _obj(interactive, "action", "interactive['action']")
    _check_len(_str(action, "button", "interactive['action']['button']"), "Button text", 1, 20)
    sections = action.get("sections")
    if not isinstance(sections, list):
        raise _missing("interactive['action']['sections']")
    if not 1 <= len(sections) <= 10:
        raise _invalid("Invalid number of sections. Min allowed: 1, Max allowed: 10")
    total_rows = 0
    seen: set[str] = set()
    for section in sections:
        if not isinstance(section, dict):
            raise _missing("interactive['action']['sections'][]")
        title = section.get("title")
        if title is None:
            if len(sections) > 1:
                raise _invalid("Section title is required when there is more than one section")
        else:
            if not isinstance(title, str):
                raise _missing("interactive['action']['sections'][]['title']")
            _check_len(title, "Section title", 1, 24)
        rows = section.get("rows")
        if not isinstance(rows, list):
            raise _missing("interactive['action']['sections'][]['rows']")
        if not rows:
            raise _invalid("Each section must have at least one row")
        total_rows += len(rows)
        for row in rows:
            if not isinstance(row, dict):
                raise _missing("interactive['action']['sections'][]['rows'][]")
            _check_len(_str(row, "title", "rows[]['title']"), "Row title", 1, 24)
            description = row.get("description")
            if description is not None:
                if not isinstance(description, str):
                    raise _missing("rows[]['description']")
                _check_len(description, "Row description", 0, 72)
            row_id = _str(row, "id", "rows[]['id']")
            _check_len(row_id, "Row id", 1, 200)
            if row_id in seen:
                raise _invalid(f"Row id is not unique: {row_id!r}")
            seen.add(row_id)
    if total_rows > 10:
        raise _invalid("Total row count exceed max allowed count: 10")


def _validate_cta_url(interactive: dict[str, Any]) -> None:
    _validate_header(interactive, text_only=False)
    _validate_body_footer(interactive, body_required=True)
    action = _obj(interactive, "action", "interactive['action']")
    params = _obj(action, "parameters", "interactive['action']['parameters']")
    _check_len(
        _str(params, "display_text", "interactive['action']['parameters']['display_text']"),
        "Display text",
        1,
        20,
    )
    url = _str(params, "url", "interactive['action']['parameters']['url']")
    if not url.startswith(("http://", "https://")):
        raise _invalid("interactive['action']['parameters']['url'] must be an http(s) URL")


def _validate_interactive(payload: dict[str, Any]) -> None:
    interactive = _obj(payload, "interactive", "interactive")
    itype = _str(interactive, "type", "interactive['type']")
    if itype not in KNOWN_INTERACTIVE_TYPES:
        raise _Rejected(100, f"Unsupported interactive type: {itype!r}")
    if itype == "button":
        _validate_buttons(interactive)
    elif itype == "list":
        _validate_list(interactive)
    elif itype == "cta_url":
        _validate_cta_url(interactive)
    else:
        _validate_body_footer(interactive, body_required=False)


def validate_message(payload: dict[str, Any]) -> None:
    """Validate an outgoing message payload the way Meta does.

    Raises:
        _Rejected: with the Meta error code and details when the payload is invalid.
    """
    if payload.get("messaging_product") != "whatsapp":
        raise _missing("messaging_product")
    to, recipient = payload.get("to"), payload.get("recipient")
    if not (isinstance(to, str) and to) and not (isinstance(recipient, str) and recipient):
        raise _missing("to")
    typ = payload.get("type", "text")
    if typ not in KNOWN_MESSAGE_TYPES:
        raise _Rejected(100, f"Unsupported message type: {typ!r}")
    if typ == "text":
        _validate_text(payload)
    elif typ in MEDIA_MESSAGE_TYPES:
        _validate_media(payload, typ)
    elif typ == "interactive":
        _validate_interactive(payload)
    elif typ == "template":
        _validate_template(payload)
    elif typ == "reaction":
        _validate_reaction(payload)
    elif typ == "location":
        _validate_location(payload)
    else:
        _validate_contacts(payload)


def message_text(message: dict[str, Any]) -> str | None:
    """Return the human-visible text of a message payload, if it has one.

    That is ``text.body``, ``interactive.body.text``, the media ``caption`` or the template
    ``name``; ``None`` for messages without text (reactions, stickers, audio, ...).
    """
    typ = message.get("type", "text")
    inner = message.get(typ)
    if not isinstance(inner, dict):
        return None
    if typ == "text":
        return inner.get("body")
    if typ == "interactive":
        body = inner.get("body")
        return body.get("text") if isinstance(body, dict) else None
    if typ in MEDIA_MESSAGE_TYPES:
        return inner.get("caption")
    if typ == "template":
        return inner.get("name")
    return None


@dataclasses.dataclass(slots=True)
class StoredMedia:
    """A media file held by the fake (uploaded by the bot or added by a test)."""

    id: str
    data: bytes
    mime_type: str
    filename: str | None = None
    phone_id: str | None = None
    url_tokens: set[str] = dataclasses.field(default_factory=set)
    """Tokens of the download URLs handed out by look-ups (only those are served)."""
    reported_size: int | None = None
    """The ``file_size`` the look-up reports instead of the true size (a lying Meta)."""
    expired_tokens: set[str] = dataclasses.field(default_factory=set)
    """URL tokens handed out already expired: their download answers 404."""

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the content, as Meta reports it."""
        return hashlib.sha256(self.data).hexdigest()


@dataclasses.dataclass(slots=True, frozen=True)
class _ScriptedFailure:
    code: int
    http_status: int
    title: str
    details: str | None
    to: str | None


class FakeGraphAPI:
    """In-memory fake of the WhatsApp Cloud API's messages and media endpoints.

    Attributes:
        sent: Accepted messages, in order: the request payload plus ``wamid`` (the id the fake
            answered with) and ``phone_id`` (the sender phone number id from the URL). ``to``
            is always present (a BSUID ``recipient`` is copied into it).
        rejected: ``(payload, error)`` for every refused ``/messages`` request (validation or
            scripted failure); ``error`` is the inner Meta ``error`` object that was answered.
        read_receipts: Mark-as-read / typing-indicator payloads (with ``phone_id`` added).
        media: Stored media by id.
        deleted_media: Ids of media deleted through the API.
        unhandled: ``"METHOD /path"`` of requests to routes the fake does not implement.
        latency: Seconds to sleep before answering each ``/messages`` request.
        token: The accepted access token, or ``None`` to accept any bearer token.
        window_closed: Recipients whose 24-hour customer-service window is closed: a
            message to them that is not a template is accepted, then fails with 131047 in
            a status webhook (as Meta does), or at once when no webhook is configured.
        status_webhook: ``(url, app_secret)``: after accepting a message the fake posts a
            signed ``sent`` status webhook there, with the tracker and Meta's ``pricing``
            (templates billable in ``template_categories[name]``, else free service).
        statuses_posted: The status webhooks posted, in order.
        media_lookups: Media ids looked up (``GET /<version>/<media_id>``), in order: each
            look-up hands out a fresh download URL, as Meta does.
        media_downloads: ``(media_id, authorization header or None)`` for every request to
            a download URL, in order.
        media_url_base: If set, download URLs handed out point there (another host)
            instead of at the fake itself.
        redirect_media_to: If set, a download answers ``302`` to the same path there.
    """

    def __init__(
        self, *, token: str | None = None, latency: float = 0.0, cap: int | None = None
    ) -> None:
        """Create a fake; see :meth:`running` to also serve it on a local port.

        Args:
            token: If given, only ``Authorization: Bearer <token>`` is accepted.
            latency: Initial value of :attr:`latency`.
            cap: The number's tier, as Meta enforces it: message sends arriving in one
                calendar second past this many are answered 130429 (counted in
                :attr:`over_cap`, not recorded as sent). None: no cap.
        """
        self.token = token
        self.latency = latency
        self.cap = cap
        self.over_cap = 0
        self.arrivals: collections.Counter[int] = collections.Counter()  # second -> sends
        self.sent: list[dict[str, Any]] = []
        self.rejected: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.read_receipts: list[dict[str, Any]] = []
        self.media: dict[str, StoredMedia] = {}
        self.deleted_media: list[str] = []
        self.unhandled: list[str] = []
        self._failures: deque[_ScriptedFailure] = deque()
        self._disconnects = 0
        self._wamids = itertools.count(1)
        self._media_ids = itertools.count(1)
        self._accepted = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self.window_closed: set[str] = set()
        self.status_webhook: tuple[str, str] | None = None
        self.template_categories: dict[str, str] = {}
        self.statuses_posted: list[dict[str, Any]] = []
        self._posting: set[asyncio.Task[None]] = set()
        self._status_http: httpx.AsyncClient | None = None
        self.media_lookups: list[str] = []
        self.media_downloads: list[tuple[str, str | None]] = []
        self.media_url_base: str | None = None
        self.redirect_media_to: str | None = None
        self._expire_urls = 0
        self._stall_downloads = 0
        self._stopping = asyncio.Event()
        self._unstall = asyncio.Event()
        self.stalled_now = 0  # download requests being held right now

    # ----------------------------------------------------------------- serving

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        latency: float = 0.0,
    ) -> AsyncIterator[FakeGraphAPI]:
        """Create a fake and serve it on ``host:port`` (``0`` picks a free port).

        Usage::

            async with FakeGraphAPI.running() as fake:
                print(fake.base_url)  # e.g. http://127.0.0.1:54321
        """
        fake = cls(token=token, latency=latency)
        await fake.start(host, port)
        try:
            yield fake
        finally:
            await fake.stop()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the fake on ``host:port`` and return :attr:`base_url`."""
        if self._runner is not None:
            raise RuntimeError("FakeGraphAPI is already running")
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        if ":" in bound_host:
            bound_host = f"[{bound_host}]"
        self._runner = runner
        self._base_url = f"http://{bound_host}:{bound_port}"
        return self._base_url

    async def stop(self) -> None:
        """Stop serving (no-op when not running)."""
        self._stopping.set()  # stalled downloads give up
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._close_status_client()

    @property
    def base_url(self) -> str:
        """Root URL of the running fake, e.g. ``http://127.0.0.1:54321`` (no version)."""
        if self._base_url is None:
            raise RuntimeError("FakeGraphAPI is not running; use start() or running()")
        return self._base_url

    def graph_url(self, api_version: str | float) -> str:
        """Return the versioned base URL, e.g. ``http://127.0.0.1:54321/v25.0``."""
        return f"{self.base_url}/v{api_version}"

    def attach(self, session: httpx.AsyncClient | httpx.Client) -> None:
        """Point a pywa httpx session at the fake, keeping its ``/v<version>`` path.

        pywa's ``GraphAPI.__init__`` sets ``session.base_url`` to
        ``https://graph.facebook.com/v<version>``; call this *after* constructing
        ``WhatsApp(session=session, ...)``.
        """
        version_path = session.base_url.path.rstrip("/")
        if not version_path:
            raise ValueError("session has no /v<version> base path; construct WhatsApp first")
        session.base_url = f"{self.base_url}{version_path}"

    def make_app(self) -> web.Application:
        """Build the aiohttp application serving this fake's state."""
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_post(f"/{_VERSION}/{{phone_id}}/messages", self._handle_messages)
        app.router.add_post(f"/{_VERSION}/{{phone_id}}/media", self._handle_upload)
        app.router.add_get(f"/{_VERSION}/{{media_id}}", self._handle_media_info)
        app.router.add_delete(f"/{_VERSION}/{{media_id}}", self._handle_media_delete)
        app.router.add_get("/media-download/{media_id}", self._handle_media_download)
        app.router.add_get("/_fake/stats", self._handle_stats)
        app.router.add_get("/_fake/sent", self._handle_sent)
        app.router.add_post("/_fake/clear", self._handle_clear)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        return app

    # ------------------------------------------------------------- scripting

    def fail_next(
        self,
        n: int = 1,
        *,
        code: int = 131000,
        http_status: int = 500,
        title: str = "Something went wrong",
        to: str | None = None,
        details: str | None = None,
    ) -> None:
        """Answer the next ``n`` message sends (optionally only those to ``to``) with an error.

        The failure is answered before validation and the message is *not* recorded as sent.
        Mark-as-read requests are never failed. Typical scripts: transient ``131000`` / HTTP
        500, rate limit ``130429`` (Meta answers HTTP 400), permanent ``131026``
        (undeliverable), ``131047`` (24h window closed), ``131050`` (user opted out), ``100``.
        """
        failure = _ScriptedFailure(code, http_status, title, details, to)
        self._failures.extend([failure] * n)

    def disconnect_next(self, n: int = 1) -> None:
        """Drop the connection, without answering, on the next ``n`` message sends.

        A valid message is still recorded in :attr:`sent` (Meta got it, we never heard back),
        so tests can check that retries do not double-send.
        """
        self._disconnects += n

    @property
    def pending_failures(self) -> int:
        """Number of scripted failures not consumed yet."""
        return len(self._failures)

    def add_media(
        self,
        data: bytes,
        mime_type: str,
        *,
        filename: str | None = None,
        reported_size: int | None = None,
    ) -> str:
        """Store media as if a user had sent it; returns its media id (a numeric string).

        ``reported_size`` makes the look-up report that ``file_size`` instead of the truth.
        """
        stored = self._store_media(data, mime_type, filename=filename, phone_id=None)
        stored.reported_size = reported_size
        return stored.id

    def expire_next_media_urls(self, n: int = 1) -> None:
        """The next ``n`` download URLs handed out are already expired: fetching one
        answers 404, as Meta's CDN does once a URL's few minutes are over. Only a fresh
        look-up of the media id gives a URL that works."""
        self._expire_urls += n

    def stall_next_media_downloads(self, n: int = 1) -> None:
        """The next ``n`` download requests get no answer at all (until the fake stops,
        or :meth:`release_stalled_media_downloads`; then a 503)."""
        self._stall_downloads += n
        self._unstall.clear()

    def release_stalled_media_downloads(self) -> None:
        """The download requests held now get their answer: a 503 (the client retries)."""
        self._unstall.set()

    # ----------------------------------------------------------- introspection

    def sent_to(self, to: str | int) -> list[dict[str, Any]]:
        """Accepted messages addressed to ``to``."""
        return [m for m in self.sent if m["to"] == str(to)]

    def texts_to(self, to: str | int) -> list[str]:
        """Visible text of each accepted message to ``to`` (messages without text skipped).

        The text is ``text.body``, ``interactive.body.text``, the media caption or the template
        name (see :func:`message_text`).
        """
        texts = (message_text(m) for m in self.sent_to(to))
        return [t for t in texts if t is not None]

    def clear(self) -> None:
        """Forget recorded messages, rejections, read receipts and pending scripted errors.

        Stored media, :attr:`latency` and the id counters are kept.
        """
        self.sent.clear()
        self.rejected.clear()
        self.read_receipts.clear()
        self.unhandled.clear()
        self._failures.clear()
        self._disconnects = 0
        self.arrivals.clear()
        self.over_cap = 0

    async def wait_for(
        self,
        count: int,
        timeout: float = 5,  # noqa: ASYNC109 - a deadline is what this helper is for
        *,
        to: str | None = None,
    ) -> None:
        """Wait until at least ``count`` messages (to ``to``, if given) have been accepted.

        Raises:
            TimeoutError: if that does not happen within ``timeout`` seconds; the message lists
                what was sent and rejected so far.
        """
        try:
            async with asyncio.timeout(timeout):
                while self._count(to) < count:
                    await self._accepted.wait()
        except TimeoutError:
            got = self._count(to)
            raise TimeoutError(self._timeout_message(count, got, timeout, to)) from None

    def _count(self, to: str | None) -> int:
        return len(self.sent) if to is None else len(self.sent_to(to))

    def _timeout_message(self, count: int, got: int, timeout: float, to: str | None) -> str:
        target = f" to {to}" if to is not None else ""
        recent = [f"{m['to']}: {message_text(m)!r}" for m in self.sent[-5:]]
        rejected = [f"{e.get('code')}: {e.get('error_data', e)}" for _, e in self.rejected[-5:]]
        return (
            f"expected at least {count} accepted message(s){target} within {timeout}s, "
            f"got {got}; last sent: {recent or 'none'}; last rejected: {rejected or 'none'}"
        )

    # --------------------------------------------------------------- internals

    def _store_media(
        self, data: bytes, mime_type: str, *, filename: str | None, phone_id: str | None
    ) -> StoredMedia:
        media_id = str(1_000_000_000_000_000 + next(self._media_ids))
        stored = StoredMedia(
            id=media_id, data=data, mime_type=mime_type, filename=filename, phone_id=phone_id
        )
        self.media[media_id] = stored
        return stored

    async def _post_status(self, record: dict[str, Any], *, failed: bool) -> None:
        """Post the status webhook Meta would send for an accepted message (a few tries,
        as Meta retries a webhook that was not acknowledged)."""
        from bot import simulate

        assert self.status_webhook is not None
        url, secret = self.status_webhook
        template = record.get("type") == "template"
        name = (record.get("template") or {}).get("name", "")
        body = simulate.status(
            record["wamid"],
            "failed" if failed else "sent",
            str(record["to"]),
            tracker=record.get("biz_opaque_callback_data"),
            error_code=131047 if failed else None,
            billable=template,
            category=self.template_categories.get(name, "marketing") if template else "service",
        )
        raw = simulate.encode(body)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": simulate.sign(raw, secret),
        }
        async with contextlib.nullcontext(self._status_client()) as client:
            for attempt in range(8):
                try:
                    answer = await client.post(url, content=raw, headers=headers)
                    if answer.status_code == 200:
                        self.statuses_posted.append(body)
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2 * 2**attempt)

    def _status_client(self) -> httpx.AsyncClient:
        """One client for every status webhook: making one per post costs ~25 ms of CPU
        (its TLS context), enough for the webhooks to lag seconds behind a broadcast."""
        if self._status_http is None:
            self._status_http = httpx.AsyncClient(timeout=10)
        return self._status_http

    async def _close_status_client(self) -> None:
        """Stop the status webhooks still being posted and close their client."""
        for task in list(self._posting):
            task.cancel()
        await asyncio.gather(*self._posting, return_exceptions=True)
        if self._status_http is not None:
            await self._status_http.aclose()
            self._status_http = None

    def _notify_accepted(self) -> None:
        # Wake every current waiter; later waiters pick up the fresh event.
        event, self._accepted = self._accepted, asyncio.Event()
        event.set()

    def _take_failure(self, to: str | None) -> _ScriptedFailure | None:
        for failure in self._failures:
            if failure.to is None or failure.to == to:
                self._failures.remove(failure)
                return failure
        return None

    def _auth_error(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error_response(401, meta_error(104, whatsapp=False))
        if self.token is not None and token.strip() != self.token:
            return _error_response(401, meta_error(190, whatsapp=False))
        return None

    async def _handle_messages(self, request: web.Request) -> web.StreamResponse:
        received_at = time.time()  # when the request reached "Meta", before the latency
        if (denied := self._auth_error(request)) is not None:
            return denied
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            error = meta_error(100, details="Request body must be a JSON object")
            self.rejected.append(({}, error))
            return _error_response(400, error)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        phone_id = request.match_info["phone_id"]
        if "status" in payload:
            return self._mark_read(payload, phone_id)

        to = payload.get("to") or payload.get("recipient")
        failure = self._take_failure(to if isinstance(to, str) else None)
        second = int(received_at)
        self.arrivals[second] += 1
        if failure is None and self.cap is not None and self.arrivals[second] > self.cap:
            self.over_cap += 1
            failure = _ScriptedFailure(
                130429,
                400,
                "Rate limit hit",
                "Cloud API message throughput has been reached.",
                to if isinstance(to, str) else None,
            )
        closed = to in self.window_closed and payload.get("type") != "template"
        if failure is None and closed and self.status_webhook is None:
            failure = _ScriptedFailure(
                131047,
                400,
                "Re-engagement message",
                "Message failed to send because "
                "more than 24 hours have passed since the customer last replied to this "
                "number.",
                to,
            )
        disconnect = self._disconnects > 0
        if disconnect:
            self._disconnects -= 1
        if failure is not None:
            error = meta_error(failure.code, failure.title, failure.details)
            self.rejected.append((payload, error))
            if disconnect:
                return _drop_connection(request)
            return _error_response(failure.http_status, error)
        try:
            validate_message(payload)
        except _Rejected as rejection:
            error = rejection.to_error()
            self.rejected.append((payload, error))
            if disconnect:
                return _drop_connection(request)
            return _error_response(400, error)

        # like Meta's, the id carries the recipient's number (base64): what we store of
        # it must be a digest
        wamid = f"wamid.FAKE{next(self._wamids)}_" + base64.b64encode(str(to).encode()).decode()
        record = {
            **payload,
            "to": to,
            "wamid": wamid,
            "phone_id": phone_id,
            "at": received_at,  # the rate Meta sees is the rate requests arrive
        }
        if closed:
            self.rejected.append((payload, meta_error(131047, "Re-engagement message")))
        else:
            self.sent.append(record)
            self._notify_accepted()
        if self.status_webhook is not None:
            task = asyncio.create_task(self._post_status(record, failed=closed))
            self._posting.add(task)
            task.add_done_callback(self._posting.discard)
        if disconnect:
            return _drop_connection(request)
        contact_key = "wa_id" if payload.get("to") else "user_id"
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, contact_key: to}],
                "messages": [{"id": wamid}],
            }
        )

    def _mark_read(self, payload: dict[str, Any], phone_id: str) -> web.Response:
        if payload.get("status") != "read":
            error = meta_error(100, details="Param status must be 'read'")
        elif not isinstance(payload.get("message_id"), str) or not payload["message_id"]:
            error = meta_error(100, details="The parameter message_id is required.")
        else:
            self.read_receipts.append({**payload, "phone_id": phone_id})
            return web.json_response({"success": True})
        self.rejected.append((payload, error))
        return _error_response(400, error)

    async def _handle_upload(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        try:
            form = await request.post()
        except ValueError:
            return _error_response(400, meta_error(100, details="Expected multipart form data"))
        file = form.get("file")
        if not isinstance(file, web.FileField):
            return _error_response(400, meta_error(100, details="The parameter file is required."))
        if form.get("messaging_product") != "whatsapp":
            return _error_response(
                400, meta_error(100, details="The parameter messaging_product is required.")
            )
        declared = form.get("type")
        mime_type = declared if isinstance(declared, str) and declared else file.content_type
        if mime_type not in SUPPORTED_UPLOAD_MIME_TYPES:
            allowed = ", ".join(sorted(SUPPORTED_UPLOAD_MIME_TYPES))
            return _error_response(
                400,
                meta_error(
                    100,
                    details=f"Param file must be a file with one of the following types: "
                    f"{allowed}. Received file of type '{mime_type}'.",
                ),
            )
        stored = self._store_media(
            file.file.read(),
            mime_type,
            filename=file.filename,
            phone_id=request.match_info["phone_id"],
        )
        return web.json_response({"id": stored.id})

    def _lookup_media(self, media_id: str) -> StoredMedia | web.Response:
        stored = self.media.get(media_id)
        if stored is None:
            return _error_response(
                400,
                meta_error(
                    100,
                    f"Unsupported get request. Object with ID '{media_id}' does not exist, "
                    "cannot be loaded due to missing permissions, or does not support this "
                    "operation.",
                    subcode=33,
                    whatsapp=False,
                ),
            )
        return stored

    async def _handle_media_info(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        if "display_phone_number" in request.query.get("fields", ""):
            # GET /<version>/<phone_number_id>?fields=…: the sending number's profile
            return web.json_response(
                {
                    "id": request.match_info["media_id"],
                    "display_phone_number": "+00 0000 0000",
                    "verified_name": "Fake Graph API",
                }
            )
        stored = self._lookup_media(request.match_info["media_id"])
        if isinstance(stored, web.Response):
            return stored
        self.media_lookups.append(stored.id)
        origin = self.media_url_base or str(request.url.origin())
        token = secrets.token_urlsafe(12)  # every look-up: a fresh URL
        stored.url_tokens.add(token)
        if self._expire_urls > 0:
            self._expire_urls -= 1
            stored.expired_tokens.add(token)
        size = len(stored.data) if stored.reported_size is None else stored.reported_size
        return web.json_response(
            {
                "url": f"{origin}/media-download/{stored.id}?token={token}",
                "mime_type": stored.mime_type,
                "sha256": stored.sha256,
                "file_size": size,
                "id": stored.id,
                "messaging_product": "whatsapp",
            }
        )

    async def _handle_media_delete(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        stored = self._lookup_media(request.match_info["media_id"])
        if isinstance(stored, web.Response):
            return stored
        phone_id = request.query.get("phone_number_id")
        if phone_id and stored.phone_id is not None and phone_id != stored.phone_id:
            return _error_response(
                400, meta_error(100, details="Media was not uploaded on this phone number")
            )
        del self.media[stored.id]
        self.deleted_media.append(stored.id)
        return web.json_response({"success": True})

    async def _handle_media_download(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        self.media_downloads.append((media_id, request.headers.get("Authorization")))
        if self._stall_downloads > 0:
            self._stall_downloads -= 1
            self.stalled_now += 1
            try:
                stop = asyncio.ensure_future(self._stopping.wait())
                unstall = asyncio.ensure_future(self._unstall.wait())
                await asyncio.wait({stop, unstall}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                unstall.cancel()
            finally:
                self.stalled_now -= 1
            return web.Response(status=503)
        if self.redirect_media_to is not None:
            raise web.HTTPFound(f"{self.redirect_media_to}{request.path_qs}")
        if (denied := self._auth_error(request)) is not None:
            return denied
        stored = self.media.get(media_id)
        token = request.query.get("token")
        if stored is None or token not in stored.url_tokens or token in stored.expired_tokens:
            return web.Response(status=404, text="Not Found")
        headers = {}
        if stored.filename:
            headers["Content-Disposition"] = f'attachment; filename="{stored.filename}"'
        return web.Response(body=stored.data, content_type=stored.mime_type, headers=headers)

    async def _handle_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "sent": len(self.sent),
                "rejected": len(self.rejected),
                "read_receipts": len(self.read_receipts),
                "media": len(self.media),
                "pending_failures": self.pending_failures,
                "busiest_second": max(self.arrivals.values(), default=0),
                "over_cap": self.over_cap,
                "latency": self.latency,
            }
        )

    async def _handle_sent(self, request: web.Request) -> web.Response:
        to = request.query.get("to")
        return web.json_response(self.sent if to is None else self.sent_to(to))

    async def _handle_clear(self, request: web.Request) -> web.Response:
        self.clear()
        return web.json_response({"success": True})

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        self.unhandled.append(f"{request.method} {request.path}")
        return _error_response(
            400,
            meta_error(2500, f"Unknown path components: {request.path}", whatsapp=False),
        )


def _error_response(status: int, error: dict[str, Any]) -> web.Response:
    """Answer ``{"error": error}`` with the given HTTP status."""
    return web.json_response({"error": error}, status=status)


def _drop_connection(request: web.Request) -> NoReturn:
    """Close the client connection without sending an HTTP answer.

    aiohttp handles a ``CancelledError`` from a handler like a client that went away: nothing
    is written and the connection is dropped, so the client sees "Server disconnected without
    sending a response" (``httpx.RemoteProtocolError``).
    """
    if request.transport is not None:
        request.transport.close()
    raise asyncio.CancelledError


async def _serve_forever(
    host: str, port: int, latency: float, token: str | None, cap: int | None = None
) -> None:
    async with FakeGraphAPI.running(host, port, token=token, latency=latency) as fake:
        fake.cap = cap
        print(
            f"Fake WhatsApp Graph API listening on {fake.base_url} (latency {latency}s)",
            flush=True,
        )
        print(
            f"Point pywa at {fake.base_url}/v<version>; stats at {fake.base_url}/_fake/stats",
            flush=True,
        )
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point for ``python -m tests.fakes.graph_api``."""
    parser = argparse.ArgumentParser(description="Run the fake WhatsApp Cloud API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per /messages call")
    parser.add_argument("--token", default=None, help="only accept this bearer token")
    parser.add_argument(
        "--cap", type=int, default=None, help="answer 130429 past this many sends a second"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args.host, args.port, args.latency, args.token, args.cap))


if __name__ == "__main__":
    main()

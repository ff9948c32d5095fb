"""How an outbox payload leaves the building: the Graph API through ``pywa_async``, or,
in dev mode, the local sandbox (the outbox row itself is what the simulator shows)."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Protocol

import httpx
from pywa_async import WhatsApp
from pywa_async.errors import WhatsAppError
from pywa_async.types import Button, Section, SectionList, SectionRow
from pywa_async.types.templates import BodyText, TemplateLanguage

from bot.settings import Settings
from storage.media import MediaStore

log = logging.getLogger(__name__)

# Meta's error codes that will fail the same way however often we try.
PERMANENT_CODES = frozenset(
    {
        100,  # invalid parameter
        131008,  # required parameter missing
        131009,  # parameter value invalid
        131021,  # recipient is the sender
        131026,  # undeliverable
        131030,  # recipient not in allowed list (test numbers)
        131045,  # incorrect certificate
        131047,  # re-engagement: outside the 24-hour window
        131050,  # user stopped marketing messages
        131051,  # unsupported message type
        131052,  # media download error
        131053,  # media upload error
        133010,  # phone number not registered
        470,
    }
    | set(range(132000, 132017))  # template errors
)
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
# Failures of our account, not of the message: wait them out, however long they last
# (an expired token is fixed by the operator; the messages must still go out after).
WAIT_IT_OUT_CODES = RATE_LIMIT_CODES | {0, 3, 10, 190, 368} | set(range(200, 300))


@dataclasses.dataclass(frozen=True, slots=True)
class SendFailure(Exception):
    """A send that did not go through: ``transient`` ones are retried."""

    code: int | None
    title: str
    transient: bool
    ambiguous: bool = False  # the request may have reached Meta: do not simply resend
    held_back: bool = False  # never sent: we held it back ourselves (a pause)

    def __str__(self) -> str:
        return f"{self.code}: {self.title}"


class Transport(Protocol):
    name: str

    async def send(self, to: str, payload: dict[str, Any], *, tracker: str) -> str:
        """Send one payload; return Meta's message id or raise :class:`SendFailure`."""
        ...

    async def close(self) -> None: ...


def _never_reached(exc: BaseException) -> bool:
    """Did the request certainly not leave? Only a connection that was never made says
    so; through the aiohttp transport, httpx's class names are too coarse (a server that
    hung up after reading the request becomes a "ConnectTimeout"), so ask aiohttp's own
    exception."""
    import aiohttp

    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, aiohttp.ClientConnectorError)
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def template_language(code: str) -> TemplateLanguage | None:
    """pywa's language for Meta's code (``id``, ``en_US``), or None if Meta has no such."""
    # by value, not TemplateLanguage(code): pywa's lookup of an unknown value crashes
    return next((lang for lang in TemplateLanguage if lang.value == code), None)


def sandbox_wamid(tracker: str) -> str:
    """The message id the sandbox gives the outbox row of ``tracker``."""
    return f"sandbox.{tracker}"


class SandboxTransport:
    """Dev mode: nothing leaves the machine; the outbox row is the record."""

    name = "sandbox"

    async def send(self, to: str, payload: dict[str, Any], *, tracker: str) -> str:
        # one id per outbox row (its tracker): the simulator reports "read" for it
        return sandbox_wamid(tracker)

    async def close(self) -> None:
        return None


def build_wa_client(settings: Settings, session: httpx.AsyncClient) -> WhatsApp:
    """A ``pywa_async`` client whose Graph API base is ``WA_API_BASE``.

    pywa pins the base URL to graph.facebook.com when it adopts the httpx session; we
    own that session, so we point it where the settings say afterwards.
    """
    wa = WhatsApp(
        phone_id=settings.wa_phone_id,
        token=settings.wa_access_token or "dev-mode-no-token",
        session=session,
        verify_token=settings.wa_verify_token or "dev-mode",
        app_secret=settings.wa_app_secret,
        filter_updates=False,
        skip_duplicate_updates=False,
    )
    version = str(session.base_url).rstrip("/").rsplit("/", 1)[-1]
    session.base_url = f"{settings.wa_api_base}/{version}"
    return wa


MEDIA_ID_SECONDS = 25 * 24 * 3600
"""How long an uploaded file's id is used again: Meta keeps an upload for 30 days."""
MEDIA_IDS_KEPT = 10_000
STALE_MEDIA_CODES = frozenset({100, 131052, 131053})  # an id Meta no longer knows


class PywaTransport:
    """Sends through the Graph API with the real ``pywa_async`` client.

    A stored file (a product's photo) is uploaded once and sent by its media id after
    that, as Meta intends: a launch showing one photo to thousands of buyers costs one
    upload, not thousands (issue #28). Stored files never change under their key (a new
    photo gets a new key), so the id stays right; one Meta no longer knows is uploaded
    again once."""

    name = "graph"

    def __init__(self, wa: WhatsApp, media: MediaStore) -> None:
        self.wa = wa
        self.media = media
        self._media_ids: dict[str, tuple[str, float]] = {}  # key -> (media id, uploaded)
        self.uploads = 0

    async def _media_id(self, key: str, mime_type: str | None) -> str:
        known = self._media_ids.get(key)
        if known is not None and time.monotonic() - known[1] < MEDIA_ID_SECONDS:
            return known[0]
        data = await self.media.get(key)
        uploaded = await self.wa.upload_media(media=data, mime_type=mime_type)
        self.uploads += 1
        if len(self._media_ids) >= MEDIA_IDS_KEPT:  # the oldest upload goes first
            self._media_ids.pop(next(iter(self._media_ids)))
        self._media_ids[key] = (str(uploaded.id), time.monotonic())
        return str(uploaded.id)

    async def _with_media(self, p: dict[str, Any], send: Any) -> Any:
        """``send(media id)`` with the payload's stored file, uploaded again once when
        Meta answers that it no longer knows the id."""
        key, mime = p["media_key"], p.get("mime_type")
        cached = key in self._media_ids
        try:
            return await send(await self._media_id(key, mime))
        except WhatsAppError as exc:
            if not cached or exc.code not in STALE_MEDIA_CODES:
                raise
            self._media_ids.pop(key, None)
            return await send(await self._media_id(key, mime))

    async def send(self, to: str, payload: dict[str, Any], *, tracker: str) -> str:
        try:
            sent = await self._send(to, payload, tracker)
        except WhatsAppError as exc:
            code = exc.code
            transient = code not in PERMANENT_CODES
            raise SendFailure(code=code, title=exc.message, transient=transient) from exc
        except (httpx.HTTPError, TimeoutError) as exc:
            # never reached Meta: safe to send again; otherwise (dropped connection, read
            # timeout) Meta may have it, and only its status webhook can tell
            raise SendFailure(
                code=None,
                title=type(exc).__name__,
                transient=True,
                ambiguous=not _never_reached(exc),
            ) from exc
        return str(sent.id)

    async def _send(self, to: str, p: dict[str, Any], tracker: str) -> Any:
        kind = p["type"]
        if kind == "text":
            return await self.wa.send_message(to=to, text=p["text"], tracker=tracker)
        if kind == "image" or (kind == "buttons" and p.get("media_key")):
            # a picture, alone or as the header of buttons (one interactive message)
            p = {"mime_type": "image/jpeg", **p}
            buttons = [
                Button(title=b["title"], callback_data=b["id"]) for b in p.get("buttons", [])
            ]
            return await self._with_media(
                p,
                lambda media_id: self.wa.send_image(
                    to=to,
                    image=media_id,
                    caption=p.get("caption") or p.get("text"),
                    footer=p.get("footer"),
                    buttons=buttons or None,
                    tracker=tracker,
                ),
            )
        if kind == "buttons":
            return await self.wa.send_message(
                to=to,
                text=p["text"],
                header=p.get("header"),
                footer=p.get("footer"),
                buttons=[Button(title=b["title"], callback_data=b["id"]) for b in p["buttons"]],
                tracker=tracker,
            )
        if kind == "list":
            sections = [
                Section(
                    title=s["title"],
                    rows=[
                        SectionRow(
                            title=r["title"],
                            callback_data=r["id"],
                            description=r.get("description"),
                        )
                        for r in s["rows"]
                    ],
                )
                for s in p["sections"]
            ]
            return await self.wa.send_message(
                to=to,
                text=p["text"],
                header=p.get("header"),
                footer=p.get("footer"),
                buttons=SectionList(button_title=p["button"], sections=sections),
                tracker=tracker,
            )
        if kind == "document":
            p = {"mime_type": "application/octet-stream", **p}
            return await self._with_media(
                p,
                lambda media_id: self.wa.send_document(
                    to=to,
                    document=media_id,
                    filename=p["filename"],
                    caption=p.get("caption"),
                    tracker=tracker,
                ),
            )
        if kind == "template":
            params = p.get("params") or []
            language = template_language(p["language"])
            if language is None:
                raise SendFailure(
                    code=None, title=f"unknown language {p['language']!r}", transient=False
                )
            return await self.wa.send_template(
                to=to,
                name=p["name"],
                language=language,
                params=[BodyText.params(*params)] if params else None,
                tracker=tracker,
            )
        raise SendFailure(code=None, title=f"unknown payload type {kind!r}", transient=False)

    async def close(self) -> None:
        return None  # the httpx session belongs to whoever built the client

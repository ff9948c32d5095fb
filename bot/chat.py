"""``jastipin chat --phone <E.164>``: talk to the local bot from a terminal.

Messages go through the real webhook (signed when ``WA_APP_SECRET`` is set) of an
in-process copy of the app on the same database; replies are read from the outbox
(the sandbox: nothing is sent to WhatsApp from here). Lists and buttons are shown as
numbered choices; type the number to tap one of the latest message's, or ``/tap 3.2`` for
choice 2 of the bot's message #3 (any earlier one, as WhatsApp lets a person tap an older
message's buttons). ``/photo path/to/file.jpg [caption]`` sends a
picture (or a PDF) the way WhatsApp does: the bot downloads it from the app's own
stand-in for the Graph API's media endpoints (``bot/devchat/graph.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from bot import simulate
from bot.app import create_app
from bot.devchat import file_kind
from bot.devchat.graph import store_upload, with_local_graph
from bot.keys import CIPHER, DB, MEDIA, OUTBOX, PROCESSOR
from bot.settings import Settings
from bot.transport import SandboxTransport
from services import replies
from storage.crypto import normalise_phone
from storage.repo import outbox as outbox_repo
from storage.repo import users


class ChatSession:
    """One person's chat with an in-process bot; usable from tests too."""

    def __init__(
        self, app: web.Application, base_url: str, settings: Settings, phone: str, name: str
    ) -> None:
        self.app = app
        self.base_url = base_url
        self.settings = settings
        self.phone = normalise_phone(phone)
        self.name = name
        self.last_id = 0
        self.last_payload: dict[str, Any] | None = None
        # the bot's messages that carry buttons or rows, by the number shown beside them
        self.tappable: dict[int, dict[str, Any]] = {}
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)

    async def send_text(self, text: str) -> list[dict[str, Any]]:
        choice = self._choice(text)
        if choice is not None:
            title, payload_id = choice
            body = simulate.tap(
                self.phone,
                payload_id,
                title,
                name=self.name,
                as_list=(self.last_payload or {}).get("type") == "list",
            )
        else:
            body = simulate.text(self.phone, text, name=self.name)
        return await self.post(body)

    async def send_photo(self, path: Path, caption: str | None = None) -> list[dict[str, Any]]:
        """Send a picture or a PDF from disk, as WhatsApp would (media id + download)."""
        data = await asyncio.to_thread(path.read_bytes)
        kind, mime = file_kind(data, "", path.name)
        media_id = await store_upload(self.app[MEDIA], data, mime, path.name)
        body = simulate.media(
            self.phone,
            kind,
            media_id,
            mime,
            caption=caption or None,
            filename=path.name if kind == "document" else None,
            name=self.name,
        )
        return await self.post(body)

    def _choice(self, text: str) -> tuple[str, str] | None:
        if not text.strip().isdigit() or self.last_payload is None:
            return None
        options = replies.choices(self.last_payload)
        n = int(text.strip())
        return options[n - 1] if 1 <= n <= len(options) else None

    def number_of(self, payload: dict[str, Any]) -> int | None:
        """The number shown beside a message with buttons or rows (for ``/tap N.M``)."""
        return next((n for n, p in self.tappable.items() if p is payload), None)

    async def tap(self, ref: str) -> list[dict[str, Any]]:
        """``N.M``: choice M of the bot's message #N; ``M``: of the latest such message.

        Raises:
            CommandError: no such message or choice (the message says what exists).
        """
        message, _, choice = ref.strip().rpartition(".")
        if not choice.isdigit() or (message and not message.isdigit()):
            raise CommandError(TAP_USAGE)
        number = int(message) if message else max(self.tappable, default=0)
        payload = self.tappable.get(number)
        if payload is None:
            raise CommandError(f"no message #{number} with buttons or rows; {TAP_USAGE}")
        options = replies.choices(payload)
        m = int(choice)
        if not 1 <= m <= len(options):
            raise CommandError(f"message #{number} has choices 1 to {len(options)}")
        title, payload_id = options[m - 1]
        body = simulate.tap(
            self.phone, payload_id, title, name=self.name, as_list=payload.get("type") == "list"
        )
        return await self.post(body)

    async def post(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        raw = simulate.encode(body)
        headers = {"Content-Type": "application/json"}
        if self.settings.wa_app_secret:
            headers["X-Hub-Signature-256"] = simulate.sign(raw, self.settings.wa_app_secret)
        resp = await self.http.post("/api/webhooks/whatsapp", content=raw, headers=headers)
        resp.raise_for_status()
        await self.app[PROCESSOR].drain()
        await self.app[OUTBOX].flush()
        return await self.new_replies()

    async def new_replies(self) -> list[dict[str, Any]]:
        async with self.app[DB].read() as session:
            user = await users.find_user(session, self.app[CIPHER], bsuid=None, wa_id=self.phone)
            if user is None:
                return []
            rows = await outbox_repo.for_user(session, user.id, after_id=self.last_id)
        if rows:
            self.last_id = rows[-1].id
            self.last_payload = rows[-1].payload
        for row in rows:
            if replies.choices(row.payload):
                self.tappable[len(self.tappable) + 1] = row.payload
        return [row.payload for row in rows]

    async def close(self) -> None:
        await self.http.aclose()


@contextlib.asynccontextmanager
async def local_bot(settings: Settings):  # type: ignore[no-untyped-def]
    """The app on an ephemeral localhost port, sending into the sandbox."""
    # the port is chosen first: media look-ups go to this very app (dev mode)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = with_local_graph(settings, base_url)
    app = create_app(settings, run_background=False, transport=SandboxTransport())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.SockSite(runner, sock)
    try:
        await site.start()
        yield app, base_url
    finally:
        await runner.cleanup()
        sock.close()


@dataclasses.dataclass(frozen=True, slots=True)
class PhotoCommand:
    """``/photo path [caption]``: the file to send and its caption."""

    path: Path
    caption: str | None


class CommandError(ValueError):
    """A ``/photo`` line that names no file; the message says how to write it."""


PHOTO_USAGE = "usage: /photo path/to/file.jpg [caption] (quote a path with spaces)"
TAP_USAGE = "usage: /tap 3.2 (choice 2 of the bot's message #3) or /tap 2 (of the latest)"


def parse_photo(line: str) -> PhotoCommand | None:
    """``/photo path [caption]`` parsed (None for any other line); a path with spaces is
    quoted, the rest of the line is the caption as typed."""
    stripped = line.strip()
    if stripped != "/photo" and not stripped.startswith("/photo "):
        return None
    rest = stripped[len("/photo") :].strip()
    if not rest:
        raise CommandError(PHOTO_USAGE)
    if rest[0] in "\"'":
        end = rest.find(rest[0], 1)
        if end < 0:
            raise CommandError(PHOTO_USAGE)
        path, caption = rest[1:end], rest[end + 1 :]
    else:
        path, _, caption = rest.partition(" ")
    return PhotoCommand(Path(path).expanduser(), caption.strip() or None)


async def run_chat(settings: Settings, *, phone: str, name: str) -> None:
    async with local_bot(settings) as (app, base_url):
        chat = ChatSession(app, base_url, settings, phone, name)
        print(
            "Jastipin chat — type a message (JOIN DEMO to start), a number to tap, "
            "/tap 3.2 to tap choice 2 of message #3, "
            "/photo path/to/file.jpg [caption] to send a photo or PDF, /quit to leave."
        )
        try:
            while True:
                try:
                    line = await asyncio.to_thread(input, "you> ")
                except EOFError:
                    break
                if line.strip() in ("/quit", "/exit"):
                    break
                if not line.strip():
                    continue
                try:
                    photo = parse_photo(line)
                    if photo is not None:
                        sent = await chat.send_photo(photo.path, photo.caption)
                    elif line.strip() == "/tap" or line.strip().startswith("/tap "):
                        sent = await chat.tap(line.strip()[len("/tap") :])
                    else:
                        sent = await chat.send_text(line)
                except CommandError as exc:
                    print(str(exc))
                    continue
                except OSError as exc:
                    print(f"cannot read that file: {exc.strerror or exc}")
                    continue
                for payload in sent:
                    number = chat.number_of(payload)
                    mark = f"#{number} " if number is not None else ""
                    print(f"bot> {mark}" + replies.as_plain_text(payload).replace("\n", "\n     "))
        finally:
            await chat.close()

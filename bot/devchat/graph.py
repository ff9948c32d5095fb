"""Dev mode's stand-in for the Graph API's media endpoints.

A photo or PDF sent from the simulator (or ``jastipin chat``'s ``/photo``) is kept in the
media store under ``sandbox/<media id>``; the bot then downloads it exactly as it does
from Meta: ``GET {WA_API_BASE}/<version>/<media id>`` answers Meta's JSON with a URL on
the same origin, and that URL serves the bytes. So ``storage.uploads.download_media``
and every check after it run unchanged; only WhatsApp's servers are simulated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets

from aiohttp import web

from bot.keys import MEDIA, SETTINGS
from bot.settings import DEFAULT_WA_API_BASE, DEV_GRAPH_PATH, Settings
from storage.media import MediaNotFound, MediaStore

PREFIX = "sandbox"
GRAPH_PATH = DEV_GRAPH_PATH
_MEDIA_ID = re.compile(r"^[0-9]{6,40}$")


def local_graph_base(origin: str) -> str:
    """``WA_API_BASE`` of a dev-mode app served at ``origin`` (``http://host:port``)."""
    return origin.rstrip("/") + GRAPH_PATH


def with_local_graph(settings: Settings, origin: str) -> Settings:
    """In dev mode, point media look-ups at the app served at ``origin`` (unless
    ``WA_API_BASE`` names somewhere else on purpose)."""
    base = settings.wa_api_base
    if settings.dev_mode and (base == DEFAULT_WA_API_BASE or base.endswith(GRAPH_PATH)):
        return dataclasses.replace(settings, wa_api_base=local_graph_base(origin))
    return settings


# what an upload may be served as: pictures and PDFs; anything else (text/html,
# image/svg+xml: both run script) goes out as bytes to save
SAFE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "application/pdf"})


def file_response(data: bytes, declared: object) -> web.Response:
    """An uploaded file as a download: a safe type (the declared one when it is a picture
    or a PDF, else ``application/octet-stream``), ``Content-Disposition: attachment``
    and ``nosniff``, so a file claiming to be HTML never runs as a page of this origin."""
    mime = str(declared).split(";", 1)[0].strip().lower()
    if mime not in SAFE_TYPES:
        mime = "application/octet-stream"
    return web.Response(
        body=data,
        content_type=mime,
        headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"},
    )


def is_media_id(value: str) -> bool:
    return bool(_MEDIA_ID.match(value))


async def store_upload(
    media: MediaStore, data: bytes, mime_type: str, filename: str | None = None
) -> str:
    """Keep what a simulated user sent; return its media id (digits, like Meta's)."""
    media_id = str(10**15 + secrets.randbelow(9 * 10**15))
    meta = {
        "mime_type": mime_type,
        "sha256": hashlib.sha256(data).hexdigest(),
        "file_size": len(data),
        "filename": filename,
    }
    await media.put(f"{PREFIX}/{media_id}", data, mime_type)
    await media.put(f"{PREFIX}/{media_id}.json", json.dumps(meta).encode(), "application/json")
    return media_id


async def load_upload(media: MediaStore, media_id: str) -> tuple[bytes, dict[str, object]] | None:
    """The bytes and facts of an upload, or None when there is no such media id."""
    if not is_media_id(media_id):
        return None
    try:
        meta = json.loads(await media.get(f"{PREFIX}/{media_id}.json"))
        data = await media.get(f"{PREFIX}/{media_id}")
    except MediaNotFound:
        return None
    return data, meta


def _no_such_media(media_id: str) -> web.Response:
    # what the Graph API answers for an unknown id (code 100: final, not retried)
    error = {
        "message": f"Unsupported get request. Object with ID '{media_id}' does not exist",
        "type": "GraphMethodException",
        "code": 100,
        "error_subcode": 33,
        "fbtrace_id": "sandbox",
    }
    return web.json_response({"error": error}, status=400)


async def lookup(request: web.Request) -> web.Response:
    """``GET /dev/graph/<version>/<media id>``: Meta's media URL answer."""
    media_id = request.match_info["media_id"]
    found = await load_upload(request.app[MEDIA], media_id)
    if found is None:
        return _no_such_media(media_id)
    _, meta = found
    base = request.app[SETTINGS].wa_api_base
    return web.json_response(
        {
            "url": f"{base}/files/{media_id}",
            "mime_type": meta["mime_type"],
            "sha256": meta["sha256"],
            "file_size": meta["file_size"],
            "id": media_id,
            "messaging_product": "whatsapp",
        }
    )


async def download(request: web.Request) -> web.Response:
    """``GET /dev/graph/files/<media id>``: the bytes, as Meta's media host serves them."""
    found = await load_upload(request.app[MEDIA], request.match_info["media_id"])
    if found is None:
        raise web.HTTPNotFound()
    data, meta = found
    return file_response(data, meta["mime_type"])

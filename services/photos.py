"""Product photos for the public pages: a phone-sized thumbnail and a full image, JPEG
(what every WhatsApp and Instagram link preview shows), made once from the jastiper's
original and kept in media storage beside it.

Re-encoding drops every byte of the original but its pixels (no EXIF with GPS). The
work runs in a child process with memory, CPU and time limits (``storage/isolated.py``),
never in the API; a picture too large to decode safely is refused.
"""

from __future__ import annotations

import hashlib
import io
import logging
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy.ext.asyncio import AsyncSession

from locales import _
from services.errors import NotFound
from storage import isolated
from storage.media import MediaNotFound, MediaStore
from storage.repo import products as products_repo

log = logging.getLogger(__name__)

SIZES = {"thumb": 400, "full": 1080}  # longest side in pixels; never enlarged
MAX_PIXELS = 40_000_000
QUALITY = 82
PHOTO_NOT_FOUND = _("Foto tidak ditemukan.")


def tag(image_key: str) -> str:
    """A short fingerprint of the stored photo: in its URL (a new photo, a new URL, so
    caches may keep the old one for long) and its ETag."""
    return hashlib.sha256(image_key.encode()).hexdigest()[:12]


def rendition_key(image_key: str, size: str) -> str:
    return f"renditions/{size}/{image_key.rsplit('.', 1)[0]}.jpg"


def resize(data: bytes, longest: int) -> bytes:
    """The picture as a JPEG whose longest side is at most ``longest`` pixels."""
    with Image.open(io.BytesIO(data)) as img:
        if img.width * img.height > MAX_PIXELS:
            raise ValueError("picture too large")
        img.draft("RGB", (longest, longest))  # JPEG: decode at a reduced scale
        pixels = ImageOps.exif_transpose(img)
        if pixels.mode in ("RGBA", "LA", "P"):
            rgba = pixels.convert("RGBA")
            pixels = Image.new("RGB", rgba.size, "white")
            pixels.paste(rgba, mask=rgba.getchannel("A"))
        else:
            pixels = pixels.convert("RGB")
        pixels.thumbnail((longest, longest), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        pixels.save(out, "JPEG", quality=QUALITY, optimize=True, progressive=True)
        return out.getvalue()


def isolated_resize(data: bytes, params: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The child's side of :func:`rendition` (a job of ``storage/isolated.py``)."""
    try:
        return {"mime_type": "image/jpeg"}, resize(data, int(params["longest"]))
    except (ValueError, OSError, Image.DecompressionBombError) as exc:
        return {"error": type(exc).__name__}, b""


def etag_of(image_key: str, size: str) -> str:
    return f'"{tag(image_key)}-{size}"'


async def photo_key(session: AsyncSession, product_id: int, size: str) -> str:
    """The stored photo of a visible product, for a known ``size``.

    Raises:
        NotFound: no such size, product, or visible product with a photo.
    """
    product = await products_repo.get(session, product_id) if size in SIZES else None
    if product is None or product.hidden or not product.image_key:
        raise NotFound(PHOTO_NOT_FOUND)
    return product.image_key


async def rendition(media: MediaStore, image_key: str, size: str) -> bytes:
    """The photo in ``size`` (``thumb`` or ``full``), made and stored the first time.

    Raises:
        NotFound: the original is missing or cannot be read as a picture.
    """
    key = rendition_key(image_key, size)
    try:
        return await media.get(key)
    except MediaNotFound:
        pass
    try:
        original = await media.get(image_key)
        header, data = await isolated.run("resize", original, {"longest": SIZES[size]})
        if header.get("error") or not data.startswith(b"\xff\xd8\xff"):
            raise ValueError(str(header.get("error") or "not a JPEG"))
    except (MediaNotFound, ValueError, isolated.IsolatedFailed):
        log.warning("product photo unavailable", extra={"size": size})
        raise NotFound(PHOTO_NOT_FOUND) from None
    await media.put(key, data, "image/jpeg")
    return data

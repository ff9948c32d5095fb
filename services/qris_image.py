"""QR codes as images: read the QR texts in a photo (a merchant's QRIS sticker) and draw
a payment QR as a PNG.

Both are CPU work on pixels, so the async entry points run them off the event loop.
:func:`decode` is a plain function of bytes to strings with its own limits (bytes,
pixels, formats checked before any pixel is decoded), so it can move as it is into the
bounded image-decoding subprocess the uploads use.
"""

from __future__ import annotations

import asyncio
import io
from typing import Final

import qrcode
import zxingcpp
from PIL import Image, UnidentifiedImageError

MAX_BYTES: Final = 5 * 1024 * 1024
MAX_PIXELS: Final = 4096 * 4096
# a phone photo is scanned at this long side at most: QR stickers stay readable, and the
# cost of a scan stays bounded whatever the camera
SCAN_SIDE: Final = 2000
FORMATS: Final = ["JPEG", "PNG", "WEBP"]
QR_ONLY: Final = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


class Unreadable(Exception):
    """The bytes are no picture we read: too big, too many pixels, or not an image."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(data: bytes) -> list[str]:
    """The texts of the QR codes in a JPEG / PNG / WebP picture (empty: none found).

    Raises:
        Unreadable: ``"too_large"`` (bytes or pixels over the limits) or ``"not_image"``.
    """
    if len(data) > MAX_BYTES:
        raise Unreadable("too_large")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise Unreadable("too_large")
            img.draft("L", (SCAN_SIDE, SCAN_SIDE))  # JPEG: decode at a reduced scale
            gray = img.convert("L")
    except Image.DecompressionBombError as exc:  # Pillow's own, far larger, limit
        raise Unreadable("too_large") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise Unreadable("not_image") from exc
    if max(gray.size) > SCAN_SIDE:
        gray.thumbnail((SCAN_SIDE, SCAN_SIDE))
    found = zxingcpp.read_barcodes(gray, formats=QR_ONLY)
    return [code.text for code in found if code.valid and code.text]


def render(payload: str) -> bytes:
    """A QR code of ``payload`` as PNG bytes, sized to scan from a phone screen."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(payload)
    code.make(fit=True)
    buf = io.BytesIO()
    code.make_image().save(buf)
    return buf.getvalue()


async def read_qr(data: bytes) -> list[str]:
    """:func:`decode` on a worker thread."""
    return await asyncio.to_thread(decode, data)


async def render_png(payload: str) -> bytes:
    """:func:`render` on a worker thread."""
    return await asyncio.to_thread(render, payload)

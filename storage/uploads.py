"""Checking and cleaning a payment-proof upload (a photo or PDF of a bank transfer receipt).

Every upload is judged by its *content*: the magic bytes pick a candidate type and, for
images, Pillow must actually decode the whole picture. The type the sender declared and
any file name are never trusted. Images are re-encoded from their decoded pixels, so
nothing but the picture survives: no EXIF (GPS position, camera, time), no ICC profile,
no text chunks, no trailing data appended after the image. PDFs are passed through
byte for byte after a structural sanity check (no PDF library is used).

The flows turn :class:`UploadRejected` reasons into friendly translated texts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import struct
from typing import TYPE_CHECKING, Any, Final, Literal

from PIL import Image, ImageOps

if TYPE_CHECKING:
    from pywa_async import WhatsApp

log = logging.getLogger(__name__)

__all__ = [
    "MAX_PROOF_BYTES",
    "MAX_PROOF_PIXELS",
    "CleanFile",
    "RejectReason",
    "UploadRejected",
    "clean_proof",
    "download_media",
]

MAX_PROOF_BYTES: Final = 5 * 1024 * 1024
"""Largest upload accepted, before any decoding (WhatsApp photos are far smaller)."""

MAX_PROOF_PIXELS: Final = 40_000_000
"""Largest decoded picture accepted (about 40 MP); bigger is treated as a decompression bomb."""

JPEG_QUALITY: Final = 88
"""Quality used when re-encoding a JPEG proof."""

RejectReason = Literal["too_large", "unsupported_type", "corrupt"]

_JPEG_MAGIC: Final = b"\xff\xd8\xff"
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_PDF_MAGIC: Final = b"%PDF-"
_PDF_EOF: Final = b"%%EOF"
_PDF_TAIL: Final = 1024
"""``%%EOF`` must appear within this many bytes of the end (what PDF readers allow)."""

_PNG_MODES: Final = frozenset({"1", "L", "LA", "RGB", "RGBA", "I", "I;16"})
_JPEG_MODES: Final = frozenset({"L", "RGB"})

# What Pillow raises for a file whose header looked right but whose data does not decode.
_DECODE_ERRORS: Final = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


class UploadRejected(Exception):
    """An upload that cannot be accepted as a payment proof.

    Attributes:
        reason: ``"too_large"``, ``"unsupported_type"`` or ``"corrupt"``.
    """

    def __init__(self, reason: RejectReason, detail: str | None = None) -> None:
        """Create the rejection.

        Args:
            reason: Machine-readable reason the flows translate for the buyer.
            detail: Optional text for logs (never shown to the buyer).
        """
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: RejectReason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True, slots=True)
class CleanFile:
    """An accepted, cleaned proof, ready to be stored.

    Attributes:
        data: The cleaned bytes (re-encoded image, or the unchanged PDF).
        mime_type: ``"image/jpeg"``, ``"image/png"`` or ``"application/pdf"``.
        extension: ``"jpg"``, ``"png"`` or ``"pdf"`` (without a dot).
        sha256: Hex digest identifying the *content*; see :func:`clean_proof`.
    """

    data: bytes
    mime_type: str
    extension: str
    sha256: str


def clean_proof(data: bytes, declared_mime: str | None = None) -> CleanFile:
    """Check a payment-proof upload by its content and return a cleaned copy.

    JPEG and PNG are recognised by their magic bytes, then fully decoded with Pillow
    (``verify()``, then a fresh ``load()``). The picture is turned upright according to
    its EXIF orientation and re-encoded from its pixels alone, so all metadata (EXIF
    with GPS, ICC profile, text chunks, trailing bytes) is gone: JPEG stays JPEG (quality
    88; CMYK, palette and other modes become RGB or L), PNG stays PNG (palette images
    become RGB or RGBA). A PDF must start with ``%PDF-`` and carry ``%%EOF`` near its end;
    its bytes are returned unchanged. Everything else is refused.

    About ``sha256``: for images it is computed over the *decoded, upright pixels* (mode,
    size and raw pixel bytes), not over any file bytes. The same picture sent twice
    therefore matches even when its metadata or its container differ (a re-sent photo
    with another EXIF block, a PNG with and without text chunks), which is what matters
    to spot a duplicate proof. Two different JPEG encodings of the same scene with
    different quantisation do *not* match (their pixels differ), and cleaning an
    already-cleaned JPEG gives a new digest (JPEG is lossy). For PDFs the digest is over
    the raw bytes.

    Args:
        data: The uploaded bytes, as downloaded.
        declared_mime: The MIME type the sender's client claimed. Only logged when it
            disagrees with the content; it never influences the decision.

    Returns:
        The cleaned file.

    Raises:
        UploadRejected: ``"too_large"`` when the bytes exceed :data:`MAX_PROOF_BYTES` or
            the picture exceeds :data:`MAX_PROOF_PIXELS`; ``"unsupported_type"`` when
            the content is not a JPEG, PNG or PDF (whatever was declared);
            ``"corrupt"`` when it looks like one of those but does not decode.
    """
    if len(data) > MAX_PROOF_BYTES:
        raise UploadRejected("too_large", f"{len(data)} bytes")
    if data.startswith(_JPEG_MAGIC):
        result = _clean_image(data, "JPEG")
    elif data.startswith(_PNG_MAGIC):
        result = _clean_image(data, "PNG")
    elif data.startswith(_PDF_MAGIC):
        result = _check_pdf(data)
    else:
        raise UploadRejected("unsupported_type", f"declared {declared_mime!r}")
    if declared_mime and declared_mime.split(";")[0].strip().lower() != result.mime_type:
        log.info("proof declared as %s is really %s", declared_mime, result.mime_type)
    return result


def _check_pdf(data: bytes) -> CleanFile:
    """Accept a PDF that has a header and an end-of-file marker; bytes pass unchanged."""
    if _PDF_EOF not in data[-_PDF_TAIL:]:
        raise UploadRejected("corrupt", "PDF without %%EOF near its end")
    return CleanFile(
        data=data,
        mime_type="application/pdf",
        extension="pdf",
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _open(data: bytes, fmt: str) -> Image.Image:
    """Open ``data`` with only the ``fmt`` plugin; raise if it is too big in pixels."""
    img = Image.open(io.BytesIO(data), formats=[fmt])
    width, height = img.size
    if width * height > MAX_PROOF_PIXELS:
        raise UploadRejected("too_large", f"{width}x{height} pixels")
    return img


def _clean_image(data: bytes, fmt: Literal["JPEG", "PNG"]) -> CleanFile:
    """Decode, turn upright, normalise the mode and re-encode a JPEG or PNG."""
    try:
        with _open(data, fmt) as probe:
            probe.verify()
        with _open(data, fmt) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
        pixels = _normalise_mode(upright, fmt)
        raw = pixels.tobytes()
    except Image.DecompressionBombError as exc:
        raise UploadRejected("too_large", str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise UploadRejected("corrupt", f"{type(exc).__name__}: {exc}") from exc

    digest = hashlib.sha256(f"{pixels.mode}:{pixels.width}x{pixels.height}:".encode())
    digest.update(raw)
    # A brand-new image from the raw pixels: no ``info`` (EXIF, ICC, text, dpi) can leak
    # into the encoder, whatever a Pillow version reads from ``im.info`` when saving.
    fresh = Image.frombytes(pixels.mode, pixels.size, raw)
    out = io.BytesIO()
    save_args: dict[str, Any]
    if fmt == "JPEG":
        save_args = {"quality": JPEG_QUALITY, "optimize": True}
        mime_type, extension = "image/jpeg", "jpg"
    else:
        save_args = {"optimize": False}
        mime_type, extension = "image/png", "png"
    fresh.save(out, format=fmt, **save_args)
    return CleanFile(
        data=out.getvalue(), mime_type=mime_type, extension=extension, sha256=digest.hexdigest()
    )


def _normalise_mode(img: Image.Image, fmt: str) -> Image.Image:
    """Return ``img`` in a mode the output format stores without a palette or extras.

    Transparency kept as ``info["transparency"]`` (palette or ``tRNS``) would be lost
    with the metadata, so such images become RGBA for PNG. JPEG has no alpha: it is
    dropped (flattened onto black by the conversion), CMYK and others become RGB.
    """
    if fmt == "JPEG":
        if img.mode in _JPEG_MODES:
            return img
        return img.convert("RGB")
    has_alpha = "A" in img.getbands() or "transparency" in img.info
    if img.mode in _PNG_MODES and "transparency" not in img.info:
        return img
    return img.convert("RGBA" if has_alpha else "RGB")


async def download_media(
    wa: WhatsApp, media_id: str, *, max_bytes: int = MAX_PROOF_BYTES
) -> tuple[bytes, str | None]:
    """Download a media file a user sent, refusing anything bigger than ``max_bytes``.

    The size Meta reports is checked first (no download at all when it is too big), and
    the download itself is streamed and cut off as soon as it passes ``max_bytes``, so a
    wrong or missing size cannot make us hold more than that in memory.

    Args:
        wa: The ``pywa_async`` client (see ``bot.transport.build_wa_client``).
        media_id: The media id from the incoming message.
        max_bytes: Largest size accepted.

    Returns:
        ``(data, mime_type)``; the MIME type is what WhatsApp declared (untrusted: pass
        both to :func:`clean_proof`).

    Raises:
        UploadRejected: ``"too_large"`` when the media is bigger than ``max_bytes``.
        pywa_async.errors.WhatsAppError: The Graph API refused the look-up.
        httpx.HTTPError: The download failed.
    """
    info = await wa.get_media_url(media_id)
    declared_size = getattr(info, "file_size", None)
    if isinstance(declared_size, int) and declared_size > max_bytes:
        raise UploadRejected("too_large", f"media {media_id} is {declared_size} bytes")
    buf = bytearray()
    async with contextlib.aclosing(wa.stream_media(info.url)) as chunks:
        async for chunk in chunks:
            buf += chunk
            if len(buf) > max_bytes:
                raise UploadRejected("too_large", f"media {media_id} exceeds {max_bytes} bytes")
    mime_type: str | None = getattr(info, "mime_type", None) or None
    return bytes(buf), mime_type

"""Checking, cleaning and downloading a payment-proof upload (a photo or PDF of a bank
transfer receipt).

Every upload is judged by its *content*: the magic bytes pick a candidate type, and the
file must actually decode. The type the sender declared and any file name are never
trusted. Nothing of the uploaded bytes is forwarded: images are re-encoded from their
decoded pixels (no EXIF with GPS, ICC profile, text chunks or trailing data survives),
and a PDF's first page is rendered to a JPEG with PDFium (no script, attachment, form,
metadata or other page survives; a file that PDFium cannot open as a PDF is refused).

Decoding is CPU and memory work on hostile input, so :func:`prepare_proof` runs it in
a separate process with memory, CPU and time limits (``storage/isolated.py``): the
event loop keeps answering webhooks and sending meanwhile, and a file that would take
gigabytes or minutes (a PDF of millions of drawing operators) or crash a decoder costs
only that child process; the sender is told the file cannot be read. Its size is also
bounded before any pixel is decoded: see :data:`MAX_PROOF_PIXELS` and
:data:`PDF_RENDER_PIXELS`.

:func:`download_media` fetches what a user sent from the Graph API, retrying with a
fresh media URL, and sends the access token only to the Graph API's origin or Meta's
media hosts.

The flows turn :class:`UploadRejected` reasons into friendly translated texts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import logging
import math
import struct
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import httpx
from PIL import Image, ImageOps

from storage import isolated

if TYPE_CHECKING:
    from pywa_async import WhatsApp

log = logging.getLogger(__name__)

__all__ = [
    "MAX_PROOF_BYTES",
    "MAX_PROOF_PIXELS",
    "MEDIA_ATTEMPTS",
    "CleanFile",
    "ForeignMediaHost",
    "RejectReason",
    "UploadRejected",
    "clean_proof",
    "download_media",
    "prepare_proof",
]

MAX_PROOF_BYTES: Final = 5 * 1024 * 1024
"""Largest upload accepted, before any decoding (WhatsApp photos are far smaller)."""

MAX_PROOF_PIXELS: Final = 4096 * 4096
"""Largest picture accepted (about 16.8 MP), checked from the header before decoding.

WhatsApp sends photos at most 4096 px on their long side (HD) and phones' screenshots,
even long scrolling ones, stay well under 16 MP; anything bigger is refused as a
decompression bomb. The memory bound follows from it: one decoded copy is at most
64 MiB (4 bytes a pixel) and cleaning holds about three copies at its peak, so a proof
costs under 200 MiB, and only one is decoded at a time (one worker thread)."""

PDF_RENDER_PIXELS: Final = 4_000_000
"""Pixels of the image a PDF's first page is rendered to (A4 comes out 1680 x 2376, about
170 dpi: a receipt stays readable); a tiny page is enlarged at most :data:`_PDF_MAX_SCALE`
times and the long side never exceeds :data:`_PDF_MAX_SIDE`."""

JPEG_QUALITY: Final = 88
"""Quality used when re-encoding a JPEG proof or a rendered PDF page."""

MEDIA_ATTEMPTS: Final = 3
"""Downloads tried before a buyer is asked to send the file again."""

MEDIA_BACKOFF: Final = (1.0, 3.0)
"""Seconds waited before the 2nd and 3rd download attempt (each asks for a fresh URL)."""

MEDIA_ATTEMPT_TIMEOUT: Final = 20.0
"""Seconds one attempt (URL look-up and the whole download) may take."""

_MAX_REDIRECTS: Final = 3

RejectReason = Literal["too_large", "too_many_pixels", "unsupported_type", "corrupt"]

_JPEG_MAGIC: Final = b"\xff\xd8\xff"
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_PDF_MAGIC: Final = b"%PDF-"
_PDF_MAX_SCALE: Final = 4.0
_PDF_MAX_SIDE: Final = 16_000

_PNG_MODES: Final = frozenset({"1", "L", "LA", "RGB", "RGBA", "I", "I;16"})
_JPEG_MODES: Final = frozenset({"L", "RGB"})

# What Pillow raises for a file whose header looked right but whose data does not decode.
_DECODE_ERRORS: Final = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


class UploadRejected(Exception):
    """An upload that cannot be accepted as a payment proof.

    Attributes:
        reason: ``"too_large"`` (bytes), ``"too_many_pixels"`` (a picture too big to
            decode: a decompression bomb), ``"unsupported_type"`` or ``"corrupt"``.
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


class ForeignMediaHost(Exception):
    """A media URL (or a redirect) pointed outside the Graph API's origin and Meta's media
    hosts: it is not fetched, so the access token never goes there."""


@dataclasses.dataclass(frozen=True, slots=True)
class CleanFile:
    """An accepted, cleaned proof, ready to be stored.

    Attributes:
        data: The cleaned bytes: a re-encoded image (a PDF becomes its first page's JPEG).
        mime_type: ``"image/jpeg"`` or ``"image/png"``.
        extension: ``"jpg"`` or ``"png"`` (without a dot).
        sha256: Hex digest identifying the *content*; see :func:`clean_proof`.
    """

    data: bytes
    mime_type: str
    extension: str
    sha256: str


async def prepare_proof(data: bytes, declared_mime: str | None = None) -> CleanFile:
    """:func:`clean_proof` in a separate process with limits (``storage/isolated.py``).

    A file the child could not finish within its memory, CPU or time limits (or that
    crashed it) is refused as ``"corrupt"``: the sender is told it cannot be read."""
    if len(data) > MAX_PROOF_BYTES:  # no child for what is refused anyway
        raise UploadRejected("too_large", f"{len(data)} bytes")
    try:
        header, payload = await isolated.run("clean_proof", data, {"declared_mime": declared_mime})
    except isolated.IsolatedFailed as exc:  # a limit, a crash: the file cannot be read
        log.warning("proof decoder gave up", extra={"reason": exc.reason})
        raise UploadRejected("corrupt", f"decoder: {exc.reason}") from None
    rejected = header.get("rejected")
    if rejected is not None:
        reason = cast(RejectReason, rejected if rejected in _REASONS else "corrupt")
        raise UploadRejected(reason, str(header.get("detail") or ""))
    kind = _OUTPUTS.get(str(header.get("mime_type")))
    if kind is None or not payload.startswith(kind[1]):
        raise UploadRejected("corrupt", "decoder answered an unknown type")
    return CleanFile(
        data=payload, mime_type=kind[0], extension=kind[2], sha256=str(header["sha256"])[:64]
    )


def isolated_clean_proof(data: bytes, params: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The child's side of :func:`prepare_proof` (a job of ``storage/isolated.py``)."""
    try:
        clean = clean_proof(data, params.get("declared_mime"))
    except UploadRejected as exc:
        return {"rejected": exc.reason, "detail": exc.detail}, b""
    return {"mime_type": clean.mime_type, "sha256": clean.sha256}, clean.data


_REASONS: Final = frozenset({"too_large", "too_many_pixels", "unsupported_type", "corrupt"})
# what a child may answer: MIME type -> (MIME type, magic bytes, extension)
_OUTPUTS: Final = {
    "image/jpeg": ("image/jpeg", _JPEG_MAGIC, "jpg"),
    "image/png": ("image/png", _PNG_MAGIC, "png"),
}


def clean_proof(data: bytes, declared_mime: str | None = None) -> CleanFile:
    """Check a payment-proof upload by its content and return a cleaned copy.

    Blocking CPU work on hostile input: call :func:`prepare_proof`, which runs it in a
    separate process with limits.

    JPEG and PNG are recognised by their magic bytes, their size is read from the header
    (more than :data:`MAX_PROOF_PIXELS` is refused before decoding), then they are fully
    decoded with Pillow (``verify()``, then a fresh ``load()``). The picture is turned
    upright according to its EXIF orientation and re-encoded from its pixels alone, so all
    metadata (EXIF with GPS, ICC profile, text chunks, trailing bytes) is gone: JPEG stays
    JPEG (quality 88; CMYK, palette and other modes become RGB or L), PNG stays PNG
    (palette images become RGB or RGBA). A PDF (``%PDF-`` at the start) must open with
    PDFium and have a page; its first page is rendered on white to a JPEG of about
    :data:`PDF_RENDER_PIXELS` and only that image is returned. Everything else is refused.

    About ``sha256``: it is computed over the *decoded, upright pixels* (mode, size and
    raw pixel bytes; for a PDF, its rendered first page), not over any file bytes. The
    same picture sent twice therefore matches even when its metadata or its container
    differ (a re-sent photo with another EXIF block, a PNG with and without text chunks,
    a PDF saved again with other metadata), which is what matters to spot a duplicate
    proof. Two different JPEG encodings of the same scene with different quantisation
    do *not* match (their pixels differ), and cleaning an already-cleaned JPEG gives a
    new digest (JPEG is lossy).

    Args:
        data: The uploaded bytes, as downloaded.
        declared_mime: The MIME type the sender's client claimed. Only logged when it
            disagrees with the content; it never influences the decision.

    Returns:
        The cleaned file.

    Raises:
        UploadRejected: ``"too_large"`` when the bytes exceed :data:`MAX_PROOF_BYTES`;
            ``"too_many_pixels"`` when the picture exceeds :data:`MAX_PROOF_PIXELS`;
            ``"unsupported_type"`` when the content is not a JPEG, PNG or PDF (whatever
            was declared); ``"corrupt"`` when it looks like one of those but does not
            decode (or is a PDF that PDFium cannot open, or one without a page).
    """
    if len(data) > MAX_PROOF_BYTES:
        raise UploadRejected("too_large", f"{len(data)} bytes")
    if data.startswith(_JPEG_MAGIC):
        kind, result = "image/jpeg", _clean_image(data, "JPEG")
    elif data.startswith(_PNG_MAGIC):
        kind, result = "image/png", _clean_image(data, "PNG")
    elif data.startswith(_PDF_MAGIC):
        kind, result = "application/pdf", _render_pdf(data)
    else:
        raise UploadRejected("unsupported_type", f"declared {declared_mime!r}")
    if declared_mime and declared_mime.split(";")[0].strip().lower() != kind:
        log.info("proof declared as %s is really %s", declared_mime, kind)
    return result


def _render_pdf(data: bytes) -> CleanFile:
    """Render a PDF's first page on white to a JPEG; refuse what PDFium cannot open.

    No form environment is initialised, so no script runs; nothing of the file but the
    first page's appearance reaches the output.
    """
    import pypdfium2 as pdfium  # loaded on first use: the web process rarely needs it

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:  # not a PDF, damaged, or protected by a password
        raise UploadRejected("corrupt", f"PDF: {exc}") from exc
    try:
        if len(pdf) < 1:
            raise UploadRejected("corrupt", "PDF without a page")
        page = pdf[0]
        try:
            width, height = page.get_size()
            if not (width > 0 and height > 0 and math.isfinite(width * height)):
                raise UploadRejected("corrupt", f"PDF page of {width} x {height} points")
            scale = min(
                math.sqrt(PDF_RENDER_PIXELS / (width * height)),
                _PDF_MAX_SCALE,
                _PDF_MAX_SIDE / max(width, height),
            )
            bitmap = page.render(scale=scale, may_draw_forms=False)
            try:
                rendered = bitmap.to_pil().convert("RGB")
            finally:
                bitmap.close()
        finally:
            page.close()
    except pdfium.PdfiumError as exc:
        raise UploadRejected("corrupt", f"PDF page: {exc}") from exc
    finally:
        pdf.close()
    return _encode(rendered, "JPEG")


def _open(data: bytes, fmt: str) -> Image.Image:
    """Open ``data`` with only the ``fmt`` plugin; refuse it if it is too big in pixels.

    Opening reads the header only, so a decompression bomb is refused before any of its
    pixels are decoded."""
    img = Image.open(io.BytesIO(data), formats=[fmt])
    width, height = img.size
    if width * height > MAX_PROOF_PIXELS:
        img.close()
        raise UploadRejected("too_many_pixels", f"{width}x{height} pixels")
    return img


def _clean_image(data: bytes, fmt: Literal["JPEG", "PNG"]) -> CleanFile:
    """Decode, turn upright, normalise the mode and re-encode a JPEG or PNG."""
    try:
        with _open(data, fmt) as probe:
            probe.verify()
        with _open(data, fmt) as img:
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no second copy kept
            return _encode(_normalise_mode(img, fmt), fmt)
    except Image.DecompressionBombError as exc:
        raise UploadRejected("too_many_pixels", str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise UploadRejected("corrupt", f"{type(exc).__name__}: {exc}") from exc


def _encode(pixels: Image.Image, fmt: Literal["JPEG", "PNG"]) -> CleanFile:
    """Digest the pixels and encode them into a fresh file of the ``fmt`` format."""
    digest = hashlib.sha256(f"{pixels.mode}:{pixels.width}x{pixels.height}:".encode())
    rows = max(1, (1 << 20) // max(1, len(pixels.getbands()) * pixels.width))
    for top in range(0, pixels.height, rows):  # a band at a time: no extra full copy
        digest.update(
            pixels.crop((0, top, pixels.width, min(top + rows, pixels.height))).tobytes()
        )
    # A brand-new image holding only the pixels: no ``info`` (EXIF, ICC, text, dpi) can
    # leak into the encoder, whatever a Pillow version reads from ``im.info`` when saving.
    fresh = Image.new(pixels.mode, pixels.size)
    fresh.paste(pixels)
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


def media_url_allowed(url: httpx.URL, api_base: str, media_hosts: Collection[str]) -> bool:
    """May the access token go to ``url``? Only on the Graph API's origin (``WA_API_BASE``:
    same scheme, host and port) or over HTTPS to one of Meta's media hosts."""
    base = httpx.URL(api_base)
    if (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port):
        return True
    return url.scheme == "https" and url.port is None and url.host in media_hosts


async def download_media(
    wa: WhatsApp,
    media_id: str,
    *,
    api_base: str,
    media_hosts: Collection[str] = (),
    max_bytes: int = MAX_PROOF_BYTES,
    backoff: Sequence[float] = MEDIA_BACKOFF,
    attempt_timeout: float = MEDIA_ATTEMPT_TIMEOUT,
) -> tuple[bytes, str | None]:
    """Download a media file a user sent, refusing anything bigger than ``max_bytes``.

    Each attempt asks the Graph API for a fresh media URL (it expires within minutes; the
    media id lasts days), then streams it. A failed attempt (an expired URL's 404, a 5xx,
    a timeout, a dropped connection, a URL or redirect to a foreign host) is tried again
    after each delay of ``backoff``; an unknown media id (Graph error 100) and a file
    that is too big are final at once.

    The access token goes only where :func:`media_url_allowed` says: a media URL on
    another host is not requested at all, and a redirect is followed only to an allowed
    URL (httpx's own redirect handling is off).

    The size Meta reports is checked first (no download at all when it is too big), and
    the download itself is streamed and cut off as soon as it passes ``max_bytes``, so a
    wrong or missing size cannot make us hold more than that in memory.

    Args:
        wa: The ``pywa_async`` client (see ``bot.transport.build_wa_client``).
        media_id: The media id from the incoming message.
        api_base: ``WA_API_BASE``, the Graph API's root URL.
        media_hosts: Host names of Meta's media CDN (``WA_MEDIA_HOSTS``), HTTPS only.
        max_bytes: Largest size accepted.
        backoff: Seconds to wait before each further attempt (its length + 1 attempts).
        attempt_timeout: Seconds one attempt may take in all.

    Returns:
        ``(data, mime_type)``; the MIME type is what WhatsApp declared (untrusted: pass
        both to :func:`prepare_proof`).

    Raises:
        UploadRejected: ``"too_large"`` when the media is bigger than ``max_bytes``.
        pywa_async.errors.WhatsAppError: The Graph API refused the look-up (finally).
        ForeignMediaHost: Every attempt pointed to a host the token must not go to.
        httpx.HTTPError: Every download attempt failed.
        TimeoutError: Every attempt took longer than ``attempt_timeout``.
    """
    from pywa_async.errors import WhatsAppError

    delays = [0.0, *backoff]
    for attempt, delay in enumerate(delays, start=1):
        await asyncio.sleep(delay)
        try:
            async with asyncio.timeout(attempt_timeout):
                return await _download_once(wa, media_id, api_base, media_hosts, max_bytes)
        except UploadRejected:
            raise
        except WhatsAppError as exc:
            if exc.code == 100 or attempt == len(delays):  # no such media: final
                raise
            failure: Exception = exc
        except (httpx.HTTPError, TimeoutError, ForeignMediaHost) as exc:
            if attempt == len(delays):
                raise
            failure = exc
        log.warning(
            "media download failed, trying again with a fresh URL",
            extra={"attempt": attempt, "error": f"{type(failure).__name__}: {failure}"},
        )
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


class BadMediaId(ValueError):
    """A media id not in Meta's shape (digits): never put into a Graph API URL."""


def check_media_id(media_id: str) -> str:
    """``media_id`` when it is what Meta sends (1 to 32 ASCII digits); otherwise
    :class:`BadMediaId` — an id like ``../../me`` would have the access token sent to
    another Graph endpoint."""
    if not (0 < len(media_id) <= 32 and media_id.isascii() and media_id.isdigit()):
        raise BadMediaId("media id is not in Meta's shape")
    return media_id


async def _download_once(
    wa: WhatsApp, media_id: str, api_base: str, media_hosts: Collection[str], max_bytes: int
) -> tuple[bytes, str | None]:
    info = await wa.get_media_url(check_media_id(media_id))
    declared_size = getattr(info, "file_size", None)
    if isinstance(declared_size, int) and declared_size > max_bytes:
        raise UploadRejected("too_large", f"media {media_id} is {declared_size} bytes")
    # the httpx session pywa was built with (bot.transport.build_wa_client): its headers
    # carry the bearer token, so every URL is checked before it is requested
    session: httpx.AsyncClient = wa.api._session
    url = httpx.URL(info.url)
    for _ in range(_MAX_REDIRECTS + 1):
        if not media_url_allowed(url, api_base, media_hosts):
            raise ForeignMediaHost(f"media {media_id}: refused to fetch from {url.host!r}")
        async with session.stream("GET", url, follow_redirects=False) as res:
            if res.is_redirect:
                url = url.join(res.headers["location"])
                continue
            res.raise_for_status()
            buf = bytearray()
            async for chunk in res.aiter_bytes():
                buf += chunk
                if len(buf) > max_bytes:
                    raise UploadRejected(
                        "too_large", f"media {media_id} exceeds {max_bytes} bytes"
                    )
        mime_type: str | None = getattr(info, "mime_type", None) or None
        return bytes(buf), mime_type
    raise httpx.TooManyRedirects(f"media {media_id}: more than {_MAX_REDIRECTS} redirects")

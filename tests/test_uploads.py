"""Payment-proof uploads: checked by content, cleaned of metadata, size-limited; PDFs
become an image of their first page; downloads retried and kept on Meta's hosts."""

from __future__ import annotations

import io
import random
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo
from pywa_async import WhatsApp
from pywa_async.errors import WhatsAppError

from bot.settings import Settings
from bot.transport import build_wa_client
from storage.uploads import (
    MAX_PROOF_BYTES,
    CleanFile,
    UploadRejected,
    clean_proof,
    download_media,
    media_url_allowed,
)
from tests.fakes.graph_api import FakeGraphAPI
from tests.samples import PDF_SECRETS, build_pdf, png_declaring, receipt_pdf

TOKEN = "test-token"
GPS_IFD = 0x8825
ORIENTATION = 0x0112
RED = (220, 20, 20)
BLUE = (20, 20, 220)


# ------------------------------------------------------------------ helpers


def two_colour(size: tuple[int, int] = (80, 40)) -> Image.Image:
    """Left half red, right half blue: shows which way a picture was turned."""
    img = Image.new("RGB", size, BLUE)
    ImageDraw.Draw(img).rectangle((0, 0, size[0] // 2 - 1, size[1] - 1), fill=RED)
    return img


def noisy(size: tuple[int, int] = (256, 256), seed: int = 0) -> Image.Image:
    """A picture with lots of detail, so its JPEG has a long scan to cut into."""
    rng = random.Random(seed)
    return Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))


def encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "SecretCam Maker"  # Make
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "S"  # GPSLatitudeRef
    gps[2] = (6.0, 10.0, 30.0)  # GPSLatitude (Jakarta)
    gps[3] = "E"
    gps[4] = (106.0, 49.0, 0.0)
    return exif


def close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


SMALL_PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj\n"
    b"xref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n"
    b"0000000058 00000 n \n0000000115 00000 n \n"
    b"trailer << /Size 4 /Root 1 0 R >>\nstartxref\n186\n%%EOF\n"
)


def rejected(data: bytes, declared: str | None = None) -> str:
    with pytest.raises(UploadRejected) as info:
        clean_proof(data, declared)
    return info.value.reason


# ------------------------------------------------------------------ images


def test_jpeg_loses_exif_and_gps_and_is_turned_upright() -> None:
    source = encode(two_colour(), "JPEG", quality=95, exif=gps_exif(orientation=6).tobytes())
    with Image.open(io.BytesIO(source)) as check:  # the fixture really carries GPS
        assert check.getexif().get_ifd(GPS_IFD)
        assert check.size == (80, 40)

    clean = clean_proof(source, "image/jpeg")

    assert isinstance(clean, CleanFile)
    assert (clean.mime_type, clean.extension) == ("image/jpeg", "jpg")
    assert b"Exif" not in clean.data
    assert b"SecretCam" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as img:
        assert img.format == "JPEG"
        assert not img.getexif()
        assert not img.getexif().get_ifd(GPS_IFD)
        assert "exif" not in img.info
        assert "icc_profile" not in img.info
        # orientation 6 = shown turned 90° clockwise: the red left half is now on top
        assert img.size == (40, 80)
        rgb = img.convert("RGB")
        assert close(rgb.getpixel((20, 10)), RED)  # type: ignore[arg-type]
        assert close(rgb.getpixel((20, 70)), BLUE)  # type: ignore[arg-type]


def test_cmyk_jpeg_becomes_rgb() -> None:
    source = encode(two_colour().convert("CMYK"), "JPEG")
    clean = clean_proof(source)
    with Image.open(io.BytesIO(clean.data)) as img:
        assert img.mode == "RGB"


def test_png_text_chunks_are_removed() -> None:
    meta = PngInfo()
    meta.add_text("Comment", "secret-location-jl-sudirman")
    meta.add_itxt("Author", "buyer-name-here")
    source = encode(two_colour(), "PNG", pnginfo=meta, exif=gps_exif().tobytes())
    assert b"tEXt" in source and b"secret-location" in source

    clean = clean_proof(source, "image/png")

    assert (clean.mime_type, clean.extension) == ("image/png", "png")
    for marker in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"secret-location", b"buyer-name"):
        assert marker not in clean.data
    with Image.open(io.BytesIO(clean.data)) as img:
        assert img.format == "PNG"
        assert not getattr(img, "text", {})
        assert not img.getexif()
        assert img.convert("RGB").tobytes() == two_colour().tobytes()  # lossless


def test_palette_png_with_transparency_keeps_its_alpha() -> None:
    img = two_colour().convert("P")
    source = encode(img, "PNG", transparency=0)
    clean = clean_proof(source)
    with Image.open(io.BytesIO(clean.data)) as out:
        assert out.mode == "RGBA"


def test_trailing_data_after_the_image_is_dropped() -> None:
    source = encode(two_colour(), "JPEG") + b"<script>alert(1)</script>" + b"PK\x03\x04zip"
    clean = clean_proof(source)
    assert b"<script>" not in clean.data and b"PK\x03\x04" not in clean.data


# ------------------------------------------------------------------ PDFs


def test_a_pdf_becomes_a_jpeg_of_its_first_page_and_nothing_else() -> None:
    source = receipt_pdf()
    for secret in PDF_SECRETS:
        assert secret in source  # the fixture really carries them

    clean = clean_proof(source, "application/pdf")

    assert (clean.mime_type, clean.extension) == ("image/jpeg", "jpg")
    assert not clean.data.startswith(b"%PDF")
    for secret in PDF_SECRETS:
        assert secret not in clean.data
    with Image.open(io.BytesIO(clean.data)) as img:
        assert img.format == "JPEG"
        assert not img.getexif() and "icc_profile" not in img.info
        width, height = img.size
        assert width > height  # the first page is 300 x 200 points, landscape
        assert width * height <= 4_000_000
        assert close(img.getpixel((width // 4, height // 2)), RED, tol=60)  # type: ignore[arg-type]
        assert close(img.getpixel((3 * width // 4, height // 2)), BLUE, tol=60)  # type: ignore[arg-type]


def test_a_small_hand_written_pdf_is_rendered_white() -> None:
    clean = clean_proof(SMALL_PDF, "application/pdf")
    with Image.open(io.BytesIO(clean.data)) as img:
        assert img.size == (800, 800)  # 200 points, enlarged at most four times
        assert img.getpixel((400, 400)) == (255, 255, 255)


def test_truncated_pdf_is_corrupt() -> None:
    assert rejected(SMALL_PDF[: len(SMALL_PDF) // 2], "application/pdf") == "corrupt"


def test_pdf_without_a_page_is_corrupt() -> None:
    empty = build_pdf(
        [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    )
    assert rejected(empty, "application/pdf") == "corrupt"


def test_password_protected_pdf_is_corrupt() -> None:
    import pypdfium2 as pdfium

    # an encryption dictionary pdfium cannot open without the password
    locked = build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
            b"<< /Filter /Standard /V 2 /R 3 /Length 128 /P -4"
            b" /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> >>",
        ],
        trailer=b"/Encrypt 4 0 R /ID [<" + b"33" * 16 + b"> <" + b"33" * 16 + b">] ",
    )
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(locked)  # the fixture really is locked
    assert rejected(locked, "application/pdf") == "corrupt"


# ------------------------------------------------------------------ refusals


def test_html_declared_as_jpeg_is_unsupported() -> None:
    html = b"<!DOCTYPE html><html><body><script>steal()</script></body></html>"
    assert rejected(html, "image/jpeg") == "unsupported_type"


def test_jpeg_magic_in_front_of_garbage_is_corrupt() -> None:
    assert rejected(b"\xff\xd8\xff\xe0" + b"<html>not really</html>" * 10) == "corrupt"


def test_truncated_jpeg_is_corrupt() -> None:
    source = encode(noisy(), "JPEG", quality=90)
    assert rejected(source[: len(source) // 2], "image/jpeg") == "corrupt"


def test_truncated_png_is_corrupt() -> None:
    source = encode(noisy(), "PNG")
    assert rejected(source[: len(source) // 2], "image/png") == "corrupt"


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "BMP", "TIFF"])
def test_other_image_formats_are_unsupported(fmt: str) -> None:
    assert rejected(encode(two_colour(), fmt), "image/jpeg") == "unsupported_type"


def test_zip_is_unsupported() -> None:
    assert rejected(b"PK\x03\x04" + b"\0" * 100, "image/jpeg") == "unsupported_type"


def test_empty_upload_is_unsupported() -> None:
    assert rejected(b"", "image/jpeg") == "unsupported_type"


def test_more_than_five_megabytes_is_too_large() -> None:
    data = b"\xff\xd8\xff\xe0" + b"\0" * (6 * 1024 * 1024)
    assert len(data) > MAX_PROOF_BYTES
    assert rejected(data, "image/jpeg") == "too_large"


@pytest.mark.parametrize(
    ("width", "height"), [(20_000, 20_000), (8_000, 8_000), (6_300, 6_300), (4_097, 4_096)]
)
def test_decompression_bomb_has_too_many_pixels(width: int, height: int) -> None:
    # 400 MP trips Pillow's own guard, the others only ours (4096 x 4096); all before
    # decoding a single pixel.
    bomb = png_declaring(width, height)
    assert len(bomb) < 200
    assert rejected(bomb, "image/png") == "too_many_pixels"


def test_a_jpeg_with_too_many_pixels_is_refused_before_decoding() -> None:
    header_only = encode(Image.new("L", (8, 8)), "JPEG")
    # patch the frame header's height and width (SOF0: FF C0, length, precision, h, w)
    sof = header_only.index(b"\xff\xc0")
    bomb = header_only[: sof + 5] + struct.pack(">HH", 5_000, 5_000) + header_only[sof + 9 :]
    assert rejected(bomb, "image/jpeg") == "too_many_pixels"


# ------------------------------------------------------------------ sha256


def test_same_picture_gives_same_digest_whatever_the_metadata() -> None:
    picture = noisy(seed=1)
    plain = clean_proof(encode(picture, "JPEG", quality=85))
    with_exif = clean_proof(encode(picture, "JPEG", quality=85, exif=gps_exif().tobytes()))
    again = clean_proof(encode(picture, "JPEG", quality=85))
    assert plain.sha256 == with_exif.sha256 == again.sha256
    assert plain.data == again.data  # the cleaning itself is deterministic

    meta = PngInfo()
    meta.add_text("Comment", "hello")
    assert (
        clean_proof(encode(picture, "PNG")).sha256
        == clean_proof(encode(picture, "PNG", pnginfo=meta)).sha256
    )


def test_different_pictures_give_different_digests() -> None:
    a = clean_proof(encode(noisy(seed=1), "JPEG", quality=85))
    b = clean_proof(encode(noisy(seed=2), "JPEG", quality=85))
    assert a.sha256 != b.sha256
    assert len(a.sha256) == 64


def test_the_same_pdf_page_gives_the_same_digest_whatever_the_metadata() -> None:
    a = clean_proof(receipt_pdf(b"first save"))
    b = clean_proof(receipt_pdf(b"saved again, other title"))
    assert a.sha256 == b.sha256
    assert a.sha256 != clean_proof(SMALL_PDF).sha256


# ------------------------------------------------------------------ download_media


@pytest.fixture
async def graph() -> AsyncIterator[tuple[FakeGraphAPI, WhatsApp]]:
    async with FakeGraphAPI.running(token=TOKEN) as fake, httpx.AsyncClient() as session:
        settings = Settings(wa_access_token=TOKEN, wa_phone_id="1234", wa_api_base=fake.base_url)
        yield fake, build_wa_client(settings, session)


async def test_download_media_round_trip(graph: tuple[FakeGraphAPI, WhatsApp]) -> None:
    fake, wa = graph
    photo = encode(noisy(), "JPEG")
    media_id = fake.add_media(photo, "image/jpeg")

    data, mime = await download_media(wa, media_id, api_base=fake.base_url)

    assert data == photo
    assert mime == "image/jpeg"
    assert clean_proof(data, mime).mime_type == "image/jpeg"


async def test_download_media_refuses_a_big_file_by_its_size(
    graph: tuple[FakeGraphAPI, WhatsApp],
) -> None:
    fake, wa = graph
    media_id = fake.add_media(b"\0" * 2048, "application/pdf")
    with pytest.raises(UploadRejected) as info:
        await download_media(wa, media_id, api_base=fake.base_url, max_bytes=1024)
    assert info.value.reason == "too_large"


async def test_download_media_default_limit(graph: tuple[FakeGraphAPI, WhatsApp]) -> None:
    fake, wa = graph
    media_id = fake.add_media(b"\0" * (MAX_PROOF_BYTES + 1), "image/jpeg")
    with pytest.raises(UploadRejected) as info:
        await download_media(wa, media_id, api_base=fake.base_url)
    assert info.value.reason == "too_large"


async def test_download_media_stops_when_the_declared_size_lies(
    graph: tuple[FakeGraphAPI, WhatsApp],
) -> None:
    fake, wa = graph
    media_id = fake.add_media(b"\0" * 300_000, "image/jpeg", reported_size=10)
    with pytest.raises(UploadRejected) as info:
        await download_media(wa, media_id, api_base=fake.base_url, max_bytes=100_000)
    assert info.value.reason == "too_large"
    assert fake.media_lookups == [media_id]  # too large is final: not downloaded again


async def test_download_media_unknown_id(graph: tuple[FakeGraphAPI, WhatsApp]) -> None:
    fake, wa = graph
    with pytest.raises(WhatsAppError):
        await download_media(wa, "999", api_base=fake.base_url)
    assert fake.media_lookups == []  # final at once: no retry of an id Meta does not know


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8900/media-download/1", True),  # WA_API_BASE's origin
        ("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1", True),
        ("http://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1", False),
        ("https://lookaside.fbsbx.com:8443/x", False),
        ("https://lookaside.fbsbx.com.example.net/x", False),
        ("https://example.net/x", False),
        ("http://127.0.0.1:8901/media-download/1", False),  # same host, another port
        ("https://127.0.0.1:8900/media-download/1", False),  # another scheme
        ("http://localhost:8900/media-download/1", False),
    ],
)
def test_which_media_urls_may_receive_the_token(url: str, allowed: bool) -> None:
    assert (
        media_url_allowed(httpx.URL(url), "http://127.0.0.1:8900", ("lookaside.fbsbx.com",))
        is allowed
    )

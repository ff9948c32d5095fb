"""Issue #21 item 5: ``jastipin keys rotate`` reseals every sealed column, keyed digest
and file with a new PII key, and resumes after an interruption.

On both databases, with a journey's data (a buyer who ordered with an address and sent a
proof photo, the jastiper's recap): a rotation stops half-way (some rows under each key,
every one readable with both, no process may start), ``jastipin keys rotate`` is run
again and finishes; then the app started with the new key recognises the buyer and the
jastiper (no duplicate user), de-duplicates Meta's redelivery of an earlier message, and
the old key is refused.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, text

from bot import simulate
from bot.app import create_app
from storage import rotation
from storage.crypto import PiiCipher, is_sealed_file
from storage.demo import DEMO_PHONE
from storage.keycheck import KeyMismatch, sealed_columns, verify
from storage.models import User
from storage.sealed import is_sealed
from tests.backups import backup_env, run_jastipin
from tests.conftest import Harness, make_settings
from tests.journeys import joined, jpeg, order_one


class Crash(Exception):
    """The rotation's process dies here."""


async def _sealed_values(h: Harness) -> list[bytes]:
    """Every sealed value of every sealed column, as stored."""
    out: list[bytes] = []
    async with h.db.read() as session:
        conn = await session.connection()
        for tbl, col in await conn.run_sync(sealed_columns):
            rows = await session.execute(text(f'SELECT "{col}" FROM "{tbl}"'))
            out += [bytes(v) for (v,) in rows if v is not None and is_sealed(v)]
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


async def test_an_interrupted_rotation_resumes_and_the_app_runs_on_the_new_key(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    old_key, new_key = h.settings.pii_key, secrets.token_bytes(32)
    old, new = PiiCipher(old_key), PiiCipher(new_key)
    # Given a journey's data sealed with the old key, the canary claimed with it
    await h.seed_demo()
    buyer = await joined(h, "Sekar Ayu")
    assert "Pesanan *JP-" in await order_one(h, buyer, "Kit Kat Matcha", "1")
    media_id = h.fake.add_media(jpeg(), "image/jpeg")
    (received, *_) = await h.send(simulate.media(buyer, "image", media_id, "image/jpeg"))
    assert "sudah kami terima" in received["text"]["body"]
    earlier = simulate.text(buyer, "BANTUAN")  # Meta will deliver this one again later
    assert await h.send(earlier)
    await h.say(DEMO_PHONE, "/recap DEMO", name="Tina")
    assert await verify(h.db, old) == "claimed"
    async with h.db.read() as session:
        people = await session.scalar(select(func.count()).select_from(User))
    media = h.settings.media_dir
    assert any(k.startswith("uploads/") for k in _files(media))  # the proof photo

    # When the rotation dies after three committed batches
    assert await rotation.begin(h.db, old, new) == "started"

    async def crash(progress: rotation.Progress) -> None:
        if progress.batches == 3:
            raise Crash

    with pytest.raises(Crash):
        await rotation.reseal_rows(
            h.db, PiiCipher(new_key, previous=old_key), on_batch=crash, batch=2
        )

    # Then rows are under either key, each readable with the pair, and nothing may start
    values = await _sealed_values(h)
    assert any(new.opens(v) for v in values) and any(old.opens(v) for v in values)
    keyring = PiiCipher(new_key, previous=old_key)
    for v in values:
        keyring.decrypt(v)
    for each in (old, new):
        with pytest.raises(KeyMismatch, match=r"rotation to key .* is not finished"):
            await verify(h.db, each)

    # When `jastipin keys rotate` is run again with the same two keys
    env = backup_env(
        tmp_path,
        h.settings.database_url,
        new_key,
        PII_ENCRYPTION_KEY_OLD=base64.urlsafe_b64encode(old_key).decode(),
        MEDIA_DIR=str(media),
    )
    done = await asyncio.to_thread(run_jastipin, ["keys", "rotate"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rotation resumed" in done.stdout and f"rotated to key {new.key_id}" in done.stdout

    # Then every value and every file is sealed with the new key alone
    for v in await _sealed_values(h):
        assert new.opens(v)
    files = _files(media)
    assert files
    for key, blob in files.items():
        assert is_sealed_file(blob) and new.opens_file(blob, key), key
    # the old key is refused from now on, the new one accepted; a rerun changes nothing
    with pytest.raises(KeyMismatch, match="the database's key is"):
        await verify(h.db, old)
    assert await verify(h.db, new) == "ok"
    again = await asyncio.to_thread(run_jastipin, ["keys", "rotate"], env)
    assert "nothing to do" in again.stdout, again.stdout + again.stderr

    # When the app runs on the new key
    settings = make_settings(
        h.settings.database_url, tmp_path, wa_api_base=h.fake.base_url, pii_key=new_key
    )
    async with TestClient(TestServer(create_app(settings, run_background=False))) as client:
        h2 = Harness(client, h.fake, settings)
        h2.names = h.names
        # Then the buyer is known: their order is listed
        await h2.say(buyer, "PESANAN")
        (title, _), *_ = h2.last_choices(buyer)
        assert title.startswith("JP-")
        # the jastiper is known: the recap reads the sealed address with the new key
        (recap,) = await h2.say(DEMO_PHONE, "/recap DEMO csv")
        assert "Rekap DEMO: 1 baris" in recap
        sent = h.fake.sent_to(DEMO_PHONE)[-1]
        csv = h.fake.media[sent["document"]["id"]].data.decode("utf-8-sig")
        assert "Sekar Ayu" in csv  # unsealed on its way to WhatsApp
        # Meta redelivering an earlier message changes nothing (its digest was redone)
        before = len(h.fake.sent_to(buyer))
        assert (await h2.post(earlier)).status == 200
        await h2.settle()
        assert len(h.fake.sent_to(buyer)) == before
        async with h2.db.read() as session:
            assert await session.scalar(select(func.count()).select_from(User)) == people

"""Issue #21 item 5: a wrong PII_ENCRYPTION_KEY no longer starts silently.

A canary sealed with the key (migration 0017, for an existing database too, with the key
``jastipin db upgrade`` runs with) is checked by every process before it touches sealed
data: another key gets one sentence on stderr and a non-zero exit, no traceback, and
nothing changes. The restore drill opens the restored rows with its own key.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.crypto import PiiCipher
from storage.db import Database
from storage.keycheck import KeyMismatch, verify
from storage.migrate import upgrade
from storage.sealed import activate
from tests.backups import add_user, backup_env, names_of, run_jastipin

WRONG = "PII_ENCRYPTION_KEY is not the key this database's personal data is sealed with"


def _refused(done: object, sentence: str = WRONG) -> None:
    assert done.returncode == 3, (done.returncode, done.stdout, done.stderr)  # type: ignore[attr-defined]
    err: str = done.stderr  # type: ignore[attr-defined]
    assert sentence in err, err
    assert "Traceback" not in err and "InvalidTag" not in err, err


async def _sealed_user(url: str, key: bytes, wa_id: str, name: str) -> None:
    """A user whose number and names are sealed with ``key``."""
    await add_user(url, activate(PiiCipher(key)), wa_id, name)


async def _canary(url: str) -> list[tuple[object, ...]]:
    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.execute(text("SELECT key_id, next_key_id FROM pii_key_canary"))
            return [tuple(r) for r in rows]
    finally:
        await db.dispose()


async def test_every_process_refuses_another_key_with_a_sentence(
    database_url: str, tmp_path: Path
) -> None:
    # Given a database upgraded with key A, holding a buyer sealed with it
    key, other = secrets.token_bytes(32), secrets.token_bytes(32)
    right, wrong = (
        backup_env(tmp_path, database_url, key),
        backup_env(tmp_path, database_url, other),
    )
    assert run_jastipin(["db", "upgrade"], right).returncode == 0
    assert await _canary(database_url) == [(PiiCipher(key).key_id, None)]
    await _sealed_user(database_url, key, "6281234500001", "Sekar")

    # When the processes and the commands touching sealed data start with key B
    for argv in (
        ["serve", "--port", "1"],
        ["worker"],
        ["scheduler", "--once"],
        ["db", "upgrade"],
        ["jastiper", "add", "--phone", "6281234500002", "--name", "Rina"],
    ):
        # Then each refuses, naming both keys' ids, and exits non-zero
        done = run_jastipin(argv, wrong)
        _refused(done)
        assert PiiCipher(key).key_id in done.stderr and PiiCipher(other).key_id in done.stderr

    # and nothing was written with B: the buyer is still found and read with A, alone
    assert await names_of(database_url, PiiCipher(key), ["6281234500001", "6281234500002"]) == [
        "Sekar",
        None,
    ]
    assert await _canary(database_url) == [(PiiCipher(key).key_id, None)]
    # with A, the same command runs
    add = run_jastipin(["jastiper", "add", "--phone", "6281234500002", "--name", "Rina"], right)
    assert add.returncode == 0, add.stderr


async def test_migration_0017_seals_the_canary_for_an_existing_database(tmp_path: Path) -> None:
    # Given a database of the release before (0016) with data sealed with key A
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(upgrade, url, "0016")
    key, other = secrets.token_bytes(32), secrets.token_bytes(32)
    await _sealed_user(url, key, "6281234500003", "Ayu")

    # When it is upgraded with another key: refused, the schema stays at 0016
    _refused(
        run_jastipin(["db", "upgrade"], backup_env(tmp_path, url, other)),
        "does not open the values",
    )
    db = Database(url)
    try:
        async with db.read() as session:
            version = await session.execute(text("SELECT version_num FROM alembic_version"))
            assert version.scalar() == "0016"
    finally:
        await db.dispose()

    # When it is upgraded with its key: the canary is sealed with it
    assert run_jastipin(["db", "upgrade"], backup_env(tmp_path, url, key)).returncode == 0
    assert await _canary(url) == [(PiiCipher(key).key_id, None)]
    # Then another key is refused by the server from now on
    _refused(run_jastipin(["serve", "--port", "1"], backup_env(tmp_path, url, other)))


async def test_the_first_process_claims_an_unclaimed_database_only_with_the_right_key(
    database_url: str,
) -> None:
    # Given a database migrated without a key (the test harness's way), with sealed data
    key, other = secrets.token_bytes(32), secrets.token_bytes(32)
    await _sealed_user(database_url, key, "6281234500004", "Wulan")
    db = Database(database_url)
    try:
        # Then a process with another key is refused even though no canary exists yet
        with pytest.raises(KeyMismatch, match="does not open the values sealed in users"):
            await verify(db, PiiCipher(other))
        # and the right key claims it, after which the canary decides
        assert await verify(db, PiiCipher(key)) == "claimed"
        assert await verify(db, PiiCipher(key)) == "ok"
        with pytest.raises(KeyMismatch, match="the database's key is"):
            await verify(db, PiiCipher(other))
    finally:
        await db.dispose()


async def test_the_restore_drill_fails_with_another_key(tmp_path: Path) -> None:
    # Given a backup of a SQLite database sealed with key A
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'jastipin.db'}"
    key, other = secrets.token_bytes(32), secrets.token_bytes(32)
    assert run_jastipin(["db", "upgrade"], backup_env(tmp_path, url, key)).returncode == 0
    await _sealed_user(url, key, "6281234500005", "Dewi")
    backups = str(tmp_path / "backups")
    took = run_jastipin(["backup", "--dir", backups], backup_env(tmp_path, url, key))
    assert took.returncode == 0, took.stderr
    backup = took.stdout.split("backup written: ", 1)[1].split(" (", 1)[0]

    # When the drill runs with key B
    done = run_jastipin(
        ["restore", "--drill", backup],
        backup_env(tmp_path, url, other),
    )

    # Then it fails, saying the key does not open the restored data
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the restore drill failed" in done.stderr
    assert "FAIL" in done.stdout and WRONG in done.stdout, done.stdout
    assert "Traceback" not in done.stdout + done.stderr

"""``jastipin backup`` / ``jastipin restore``: a backup restores into a fresh database with
its data readable under the same key, is copied off the host to the backup bucket, old
backups go (here and there), and the restore drill restores, migrates, serves and
smoke-checks a Postgres copy, printing how long it took (the RTO figure)."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from storage.crypto import PiiCipher
from storage.db import Database
from storage.migrate import upgrade
from storage.sealed import activate
from tests.backups import add_user, backup_env, names_of, run_jastipin
from tests.conftest import ACCESS_KEY, PG_ADMIN_URL, REGION, SECRET_KEY, _pg_exec, _pg_missing


def _s3(moto_endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )


def test_a_sqlite_backup_restores_into_a_fresh_file_readable_with_the_same_key(
    tmp_path: Path,
) -> None:
    key = secrets.token_bytes(32)
    cipher = activate(PiiCipher(key))
    url = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    upgrade(url)
    asyncio.run(add_user(url, cipher, "6281234500001", "Sari"))
    env = backup_env(tmp_path, url, key)

    made = run_jastipin(["backup"], env)
    assert made.returncode == 0, made.stderr
    backup = Path(re.search(r"backup written: (\S+)", made.stdout).group(1))  # type: ignore[union-attr]
    assert backup.parent == tmp_path / "data" / "backups" and backup.suffix == ".sqlite3"
    assert "stays on this host" in made.stderr  # no S3_BACKUP_BUCKET: said, not hidden
    # written after the backup: not in it
    asyncio.run(add_user(url, cipher, "6281234500002", "Budi"))

    fresh = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
    restored = run_jastipin(["restore", "--into", fresh], env)  # the newest backup by default
    assert restored.returncode == 0, restored.stderr
    assert "jastipin db upgrade" in restored.stdout
    names = asyncio.run(names_of(fresh, cipher, ["6281234500001", "6281234500002"]))
    assert names == ["Sari", None]

    # a database that holds data is never overwritten
    again = run_jastipin(["restore", str(backup), "--into", url], env)
    assert again.returncode == 1 and "not empty" in again.stderr
    assert asyncio.run(names_of(url, cipher, ["6281234500002"])) == ["Budi"]


def test_backups_are_copied_off_the_host_and_pruned_here_and_there(
    tmp_path: Path, moto_endpoint: str, bucket: str
) -> None:
    key = secrets.token_bytes(32)
    cipher = activate(PiiCipher(key))
    url = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    upgrade(url)
    asyncio.run(add_user(url, cipher, "6281234500003", "Wati"))
    backups = tmp_path / "backups"
    backups.mkdir()
    expired, recent = "jastipin-20000101T000000Z.sqlite3", "jastipin-29990101T000000Z.sqlite3"
    for name in (expired, recent, "notes.txt"):
        (backups / name).write_bytes(b"x")
    s3 = _s3(moto_endpoint)
    for name in (expired, recent):
        s3.put_object(Bucket=bucket, Key=f"db/{name}", Body=b"x")
    s3.put_object(Bucket=bucket, Key="proofs/2000/old.jpg", Body=b"a proof, not a backup")
    env = backup_env(
        tmp_path,
        url,
        key,
        BACKUP_DIR=str(backups),
        BACKUP_KEEP_DAYS="30",
        S3_BACKUP_BUCKET=bucket,
        S3_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
    )

    made = run_jastipin(["backup"], env)
    assert made.returncode == 0, made.stderr
    name = Path(re.search(r"backup written: (\S+)", made.stdout).group(1)).name  # type: ignore[union-attr]
    assert f"s3://{bucket}/db/{name}" in made.stdout
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"db/{name}", f"db/{recent}", "proofs/2000/old.jpg"}
    assert sorted(p.name for p in backups.iterdir()) == sorted([name, recent, "notes.txt"])
    assert f"pruned {expired}" in made.stdout

    # the host is lost: the copy in the bucket restores
    for path in backups.iterdir():
        path.unlink()
    (backups / recent).unlink(missing_ok=True)
    s3.delete_object(Bucket=bucket, Key=f"db/{recent}")  # not a real backup
    fresh = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
    restored = run_jastipin(["restore", "--from-bucket", "--into", fresh], env)
    assert restored.returncode == 0, restored.stderr
    assert asyncio.run(names_of(fresh, cipher, ["6281234500003"])) == ["Wati"]


def test_a_backup_is_seen_by_the_metrics_and_a_missing_bucket_is_one_sentence(
    tmp_path: Path, moto_endpoint: str, bucket: str
) -> None:
    """The last good backup's time is what every process exports (and the alert
    JastipinBackupStale reads); a bucket that is not there fails the backup with one
    sentence and a non-zero exit, and is not counted as a backup."""
    from bot import metrics
    from bot.observe import refresh_database_gauges

    key = secrets.token_bytes(32)
    activate(PiiCipher(key))
    url = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    upgrade(url)
    s3_env = {
        "S3_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }

    async def last_backup() -> float:
        db = Database(url)
        try:
            await refresh_database_gauges(db)
        finally:
            await db.dispose()
        return float(metrics.BACKUP_LAST_SUCCESS._value.get())

    metrics.BACKUP_LAST_SUCCESS.set(0)
    assert asyncio.run(last_backup()) == 0  # never backed up: the alert's trigger

    missing = run_jastipin(
        ["backup"], backup_env(tmp_path, url, key, S3_BACKUP_BUCKET="nope", **s3_env)
    )
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    assert "the bucket 'nope' does not exist" in missing.stderr
    assert asyncio.run(last_backup()) == 0

    before = time.time()
    made = run_jastipin(
        ["backup"], backup_env(tmp_path, url, key, S3_BACKUP_BUCKET=bucket, **s3_env)
    )
    assert made.returncode == 0, made.stderr
    assert before - 2 <= asyncio.run(last_backup()) <= time.time() + 2


@pytest.fixture
def pg_scratch() -> Any:
    """A fresh Postgres database URL (dropped afterwards), and the server's admin URL."""
    name = f"jastipin_bk_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        _pg_missing(str(exc))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    made: list[str] = [name]
    yield f"{base}/{name}", made
    for n in made:
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))


async def _databases(prefix: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", prefix)
        return [r["datname"] for r in rows]
    finally:
        await conn.close()


# pg_dump, pg_restore, then the drill: a fresh database migrated, served and smoke-checked
# by a real `jastipin serve` — several processes one after another, each allowed 300 s
@pytest.mark.timeout(600)
def test_postgres_backup_restores_and_the_drill_migrates_serves_and_smoke_checks_it(
    tmp_path: Path, pg_scratch: Any
) -> None:
    url, made = pg_scratch
    key = secrets.token_bytes(32)
    cipher = activate(PiiCipher(key))
    env = backup_env(tmp_path, url, key, BACKUP_DIR=str(tmp_path / "backups"))
    for argv in (["db", "upgrade"], ["demo"]):
        done = run_jastipin(argv, env)
        assert done.returncode == 0, done.stderr
    asyncio.run(add_user(url, cipher, "6281234500004", "Dewi"))
    backup = run_jastipin(["backup"], env)
    assert backup.returncode == 0, backup.stderr
    assert re.search(r"backup written: \S+/jastipin-\d{8}T\d{6}Z\.dump", backup.stdout)

    # pg_restore into a fresh database: the data comes back, sealed values open
    fresh = f"{url}_fresh"
    made.append(fresh.rsplit("/", 1)[1])
    asyncio.run(_pg_exec(f'CREATE DATABASE "{made[-1]}"'))
    restored = run_jastipin(["restore", "--into", fresh], env)
    assert restored.returncode == 0, restored.stderr
    assert asyncio.run(names_of(fresh, cipher, ["6281234500004"])) == ["Dewi"]
    refused = run_jastipin(["restore", "--into", fresh], env)
    assert refused.returncode == 1 and "not empty" in refused.stderr

    drill = run_jastipin(["restore", "--drill"], env)
    out = drill.stdout
    assert drill.returncode == 0, out + drill.stderr
    assert re.search(r"ok +restored in [\d.]+ s and migrated in [\d.]+ s", out), out
    assert "ok    /health answers ok" in out
    assert "ok    the webhook answers Meta's subscription challenge" in out
    assert re.search(r"ok +a signed 'JOIN' from the test number was answered", out), out
    measured = re.search(r"restore drill took ([\d.]+) s from backup", out)
    assert measured, out  # the RTO figure, printed; not asserted against a clock
    assert "restore drill passed" in out
    assert asyncio.run(_databases("jastipin_drill_%")) == [], "the drill left its copy behind"


def test_a_restore_that_cannot_be_done_says_why(tmp_path: Path) -> None:
    env = backup_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/live.db", secrets.token_bytes(32))
    nothing = run_jastipin(["restore", "--into", f"sqlite+aiosqlite:///{tmp_path}/x.db"], env)
    assert nothing.returncode == 1 and "no backup in" in nothing.stderr
    assert "jastipin backup" in nothing.stderr
    bad = run_jastipin(["backup"], {**env, "BACKUP_KEEP_DAYS": "0"})
    assert bad.returncode == 2 and "BACKUP_KEEP_DAYS must be 1 or more days" in bad.stderr

"""Running ``jastipin backup``/``restore`` and reading what a database holds,
shared by the backup and key tests."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from storage.crypto import PiiCipher
from storage.db import Database
from storage.repo import users

JASTIPIN = str(Path(sys.executable).parent / "jastipin")


def backup_env(tmp_path: Path, database_url: str, key: bytes, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WA_", "PII_", "DATABASE_", "BACKUP_", "S3_", "CF_R2_", "AWS_"))
        and k not in ("REDIS_URL", "SENTRY_DSN")
    }
    env.update(
        DATABASE_URL=database_url,
        JASTIPIN_DATA_DIR=str(tmp_path / "data"),
        PII_ENCRYPTION_KEY=base64.urlsafe_b64encode(key).decode(),
        **extra,
    )
    return env


def run_jastipin(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JASTIPIN, *argv], env=env, capture_output=True, text=True, timeout=300)


async def add_user(url: str, cipher: PiiCipher, wa_id: str, name: str) -> None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            user = await users.upsert_user(
                session, cipher, bsuid=None, wa_id=wa_id, profile_name=name
            )
            user.display_name = name
    finally:
        await db.dispose()


async def names_of(url: str, cipher: PiiCipher, wa_ids: list[str]) -> list[str | None]:
    db = Database(url)
    try:
        async with db.read() as session:
            found = [await users.find_user(session, cipher, bsuid=None, wa_id=w) for w in wa_ids]
            return [u.display_name if u else None for u in found]
    finally:
        await db.dispose()

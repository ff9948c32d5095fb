"""Issue #11, item 1, the rest: inbox units are purged after INBOX_RETENTION_DAYS, the
SQLite file is its owner's only, a PII key file others can read is refused, and what an
older release stored in plain text is sealed by ``jastipin db upgrade``."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import secrets
import stat
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Table, select, text, update

from bot import jobs
from bot.settings import ConfigError, Settings
from storage.crypto import PiiCipher
from storage.db import Database
from storage.migrate import upgrade
from storage.models import InboundUpdate, MessageStatus, OutboxMessage, User, utcnow
from storage.repo import inbox as inbox_repo
from storage.repo.privacy import reseal
from storage.sealed import activate
from tests.conftest import PG_ADMIN_URL, _pg_exec


async def test_handled_units_are_purged_after_the_retention_period(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            await inbox_repo.store_units(
                session,
                [
                    {"key": k, "kind": "message", "field": "messages", "body": {"n": k}}
                    for k in ("old-done", "old-failed", "old-pending", "new-done")
                ],
            )
            old = utcnow() - dt.timedelta(days=8)
            units = cast(Table, InboundUpdate.__table__)
            await session.execute(
                update(units).where(units.c.key.like("old-%")).values(received_at=old)
            )
            await session.execute(
                update(units)
                .where(units.c.key.in_(["old-done", "new-done"]))
                .values(status="done")
            )
            await session.execute(
                update(units).where(units.c.key == "old-failed").values(status="failed")
            )
        assert await jobs.purge_inbox(db, days=7) == 2
        assert await jobs.purge_inbox(db, days=7) == 0
        async with db.read() as session:
            left = set((await session.execute(select(InboundUpdate.key))).scalars())
        # a unit still waiting is never lost, whatever its age; a recent one is kept for
        # Meta's redelivery
        assert left == {"old-pending", "new-done"}
    finally:
        await db.dispose()


def test_the_retention_cannot_be_shorter_than_a_day(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="INBOX_RETENTION_DAYS must be at least 1"):
        Settings.from_env({"JASTIPIN_DATA_DIR": str(tmp_path), "INBOX_RETENTION_DAYS": "0"})
    settings = Settings.from_env(
        {"JASTIPIN_DATA_DIR": str(tmp_path), "INBOX_RETENTION_DAYS": "30"}
    )
    assert settings.inbox_retention_days == 30


async def test_the_sqlite_file_and_its_wal_are_readable_by_their_owner_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "jastipin.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        async with db.transaction() as session:
            await inbox_repo.store_units(
                session, [{"key": "k", "kind": "other", "field": "f", "body": {}}]
            )
        assert _modes(path) == {"db": 0o600, "wal": 0o600, "shm": 0o600, "dir": 0o700}
    finally:
        await db.dispose()
    # a file an older release left world-readable is tightened on the next start
    path.chmod(0o644)
    await Database(url).dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _modes(path: Path) -> dict[str, int]:
    return {
        "db": stat.S_IMODE(path.stat().st_mode),
        "wal": stat.S_IMODE(Path(f"{path}-wal").stat().st_mode),
        "shm": stat.S_IMODE(Path(f"{path}-shm").stat().st_mode),
        "dir": stat.S_IMODE(path.parent.stat().st_mode),
    }


def test_a_pii_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "pii.key"
    key = secrets.token_bytes(32)
    key_file.write_text(base64.urlsafe_b64encode(key).decode())
    key_file.chmod(0o644)
    env = {"JASTIPIN_DATA_DIR": str(tmp_path), "PII_ENCRYPTION_KEY_FILE": str(key_file)}
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    assert "can be read by other users" in str(refused.value)
    assert f"chmod 600 {key_file}" in str(refused.value)
    key_file.chmod(0o600)
    assert Settings.from_env(env).pii_key == key
    # the dev-mode key kept beside the database: created private, refused when loosened
    dev = tmp_path / "dev"
    Settings.from_env({"JASTIPIN_DATA_DIR": str(dev)})
    assert stat.S_IMODE((dev / "pii.key").stat().st_mode) == 0o600
    (dev / "pii.key").chmod(0o640)
    with pytest.raises(ConfigError, match="can be read by other users"):
        Settings.from_env({"JASTIPIN_DATA_DIR": str(dev)})


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """An empty database (not migrated), on both engines."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/old.db"
        return
    name = f"jastipin_reseal_{secrets.token_hex(4)}"
    try:
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL is required: {exc}")
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _raw(db: Database, sql: str) -> list[bytes]:
    async with db.read() as session:
        return [
            bytes(v) if not isinstance(v, str) else v.encode()
            for (v,) in await session.execute(text(sql))
        ]


async def test_an_older_database_is_sealed_by_the_upgrade(fresh_url: str) -> None:
    """Rows written in plain text before migration 0006 are readable after it and
    rewritten sealed (and Meta's ids digested) by the upgrade's reseal step."""
    await asyncio.to_thread(upgrade, fresh_url, "0005")
    db = Database(fresh_url)
    body = {"entry": [{"from": "6281234500077", "text": "Jl. Anggrek 9"}]}
    try:
        async with db.transaction() as session:
            now = utcnow()
            await session.execute(
                text(
                    "INSERT INTO users (id, profile_name, display_name, locale, is_admin,"
                    " created_at) VALUES (1, 'Rina Anggrek', 'Rina', 'id', false,"
                    " :now)"
                ),
                {"now": now},
            )
            await session.execute(
                text(
                    "INSERT INTO inbound_updates (key, kind, field, body, status, attempts,"
                    " received_at) VALUES ('wamid.X', 'message', 'messages', :body, 'done',"
                    " 0, :now)"
                ),
                {"body": json.dumps(body), "now": now},
            )
            await session.execute(
                text(
                    "INSERT INTO outbox (user_id, payload, status, attempts, next_attempt_at,"
                    " wa_message_id, category, billable, cost, created_at) VALUES (1, :p,"
                    " 'sent', 1, :now, 'wamid.HBgN6281234500077', 'service', false, 0, :now)"
                ),
                {"p": json.dumps({"text": "Dikirim ke Jl. Anggrek 9"}), "now": now},
            )
    finally:
        await db.dispose()

    await asyncio.to_thread(upgrade, fresh_url)  # 0006 and later: columns now binary
    cipher = activate(PiiCipher(secrets.token_bytes(32)))
    db = Database(fresh_url)
    try:
        async with db.read() as session:  # readable before the reseal, as plain values
            assert (await session.scalar(select(InboundUpdate.body))) == body
        async with db.transaction() as session:
            assert await reseal(session) == 5  # body, payload, two names, one wamid
        async with db.transaction() as session:
            assert await reseal(session) == 0  # idempotent
        for sql in (
            "SELECT body FROM inbound_updates",
            "SELECT payload FROM outbox",
            "SELECT profile_name FROM users",
            "SELECT display_name FROM users",
        ):
            (raw,) = await _raw(db, sql)
            assert raw[:1] == b"\x01" and b"Anggrek" not in raw, sql
        (wamid,) = await _raw(db, "SELECT wa_message_id FROM outbox")
        assert wamid == cipher.digest_id("wamid.HBgN6281234500077").encode()
        async with db.read() as session:
            user = await session.scalar(select(User))
            assert user is not None and user.profile_name == "Rina Anggrek"
            assert (await session.scalar(select(InboundUpdate.body))) == body
            out = await session.scalar(
                select(OutboxMessage).where(
                    OutboxMessage.wa_message_id == "wamid.HBgN6281234500077"
                )
            )
            assert out is not None and out.payload == {"text": "Dikirim ke Jl. Anggrek 9"}
            assert await session.scalar(select(MessageStatus)) is None
    finally:
        await db.dispose()

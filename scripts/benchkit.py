"""What the benchmark scripts share: a free local port, a statement on a Postgres
server, a fresh database per run and the environment of the served processes."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def pg_exec(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(workdir: Path, postgres: str | None) -> AsyncIterator[str]:
    """The URL of a database nothing ran on: a SQLite file in ``workdir``, or — with
    ``postgres``, a server URL — a scratch database created there and dropped after, so
    that earlier runs cannot skew the figures."""
    if not postgres:
        yield f"sqlite+aiosqlite:///{workdir}/bench.db"
        return
    from bot.settings import _normalise_db_url

    scratch = f"jastipin_bench_{secrets.token_hex(4)}"
    await pg_exec(postgres, f'CREATE DATABASE "{scratch}"')
    try:
        yield _normalise_db_url(postgres.rsplit("/", 1)[0] + "/" + scratch)
    finally:
        await pg_exec(postgres, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def served_env(
    database: str,
    workdir: Path,
    *,
    port: int,
    api_base: str,
    token: str,
    secret: str,
    phone_id: str,
) -> dict[str, str]:
    """The environment of a served ``jastipin`` process of a bench: this one's, without
    any WhatsApp credentials, PII key or Redis of the shell, plus the bench's own (a
    fresh PII key each run; warnings and worse logged only)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WA_", "PII_", "REDIS_"))},
        "DATABASE_URL": database,
        "JASTIPIN_DATA_DIR": str(workdir),
        "PORT": str(port),
        "WA_ACCESS_TOKEN": token,
        "WA_APP_SECRET": secret,
        "WA_VERIFY_TOKEN": "bench",
        "WA_PHONE_ID": phone_id,
        "WA_API_BASE": api_base,
        "PII_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "LOG_LEVEL": "WARNING",
    }

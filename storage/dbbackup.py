"""Database backups: ``jastipin backup`` / ``jastipin restore`` (docs/RUNBOOK.md, F).
The scheduler's copies of payment proofs are another thing: ``storage/proof_copies.py``.

Postgres is dumped with ``pg_dump --format=custom`` and restored with ``pg_restore``;
SQLite is copied with its online backup API (consistent while the app writes). A backup
is named ``jastipin-<UTC timestamp>.dump`` (Postgres) or ``.sqlite3`` (SQLite), checked
readable before it counts, copied off the host to ``S3_BACKUP_BUCKET`` under ``db/``,
and pruned, locally and in the bucket, once older than ``BACKUP_KEEP_DAYS`` by the
timestamp in its name. Credentials go to the client tools through the environment,
never on a command line that ``ps`` shows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

PREFIX = "db/"
_NAME = re.compile(r"^jastipin-(\d{8}T\d{6}Z)\.(dump|sqlite3)$")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why, for an operator."""


class BackupPermissionError(BackupError):
    """The store refused the operation: with write-only backup credentials (RUNBOOK F),
    listing and deleting are refused on purpose and the bucket's lifecycle rule prunes."""


@dataclass(frozen=True)
class Target:
    """A database as the backup tools see it."""

    url: str

    @property
    def postgres(self) -> bool:
        return make_url(self.url).get_backend_name() == "postgresql"

    @property
    def sqlite_path(self) -> Path:
        database = make_url(self.url).database
        if not database or database == ":memory:":
            raise BackupError(f"{self.url} is not a SQLite file")
        return Path(database)

    def libpq_env(self) -> dict[str, str]:
        """PGHOST, PGUSER, … for pg_dump/pg_restore/psql (password included)."""
        u = make_url(self.url)
        env = {
            "PGHOST": u.host or "127.0.0.1",
            "PGPORT": str(u.port or 5432),
            "PGDATABASE": u.database or "",
        }
        if u.username:
            env["PGUSER"] = u.username
        if u.password:
            env["PGPASSWORD"] = str(u.password)
        return {**os.environ, **env}

    def with_database(self, name: str) -> Target:
        u = make_url(self.url)
        if self.postgres:
            return Target(u.set(database=name).render_as_string(hide_password=False))
        return Target(u.set(database=str(self.sqlite_path.with_name(name))).render_as_string())


def stamp_of(name: str) -> dt.datetime | None:
    """When a backup named ``name`` was taken (None: not one of ours)."""
    m = _NAME.match(name)
    if not m:
        return None
    return dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def _run(argv: list[str], target: Target) -> None:
    try:
        done = subprocess.run(argv, env=target.libpq_env(), capture_output=True, text=True)
    except FileNotFoundError:
        raise BackupError(
            f"{argv[0]} is not installed here: install the PostgreSQL client of the "
            "server's major version (postgresql-client)"
        ) from None
    if done.returncode != 0:
        raise BackupError(f"{argv[0]} failed: {done.stderr.strip()[-800:]}")


def take(url: str, directory: Path, *, now: dt.datetime | None = None) -> Path:
    """Write a new backup of ``url`` into ``directory``; returns its path."""
    target = Target(url)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    final = directory / f"jastipin-{stamp}.{'dump' if target.postgres else 'sqlite3'}"
    partial = directory / f".{final.name}.partial"
    try:
        if target.postgres:
            _run(
                [
                    *("pg_dump", "--format=custom", "--compress=6"),
                    *("--no-owner", "--no-privileges", f"--file={partial}"),
                ],
                target,
            )
            _run(["pg_restore", "--list", str(partial)], target)  # unreadable: no backup
        else:
            source = target.sqlite_path
            if not source.exists():
                raise BackupError(f"there is no database file at {source}")
            _sqlite_copy(source, partial)
            _check_sqlite(partial)
        partial.chmod(0o600)
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)
    return final


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the app writes; the copy is one
    self-contained file (no -wal/-shm beside it)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")


def _check_sqlite(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        (result,) = conn.execute("PRAGMA integrity_check").fetchone()
    if result != "ok":
        raise BackupError(f"{path.name} is damaged: {result}")


def database_is_empty(url: str) -> bool:
    """True when ``url`` holds no table (a restore may go there)."""
    target = Target(url)
    if not target.postgres:
        path = target.sqlite_path
        if not path.exists() or path.stat().st_size == 0:
            return True
        with closing(sqlite3.connect(path)) as conn:
            return not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table'").fetchone()
    done = subprocess.run(
        [
            *("psql", "--no-psqlrc", "--quiet", "--tuples-only", "--no-align"),
            *("--set", "ON_ERROR_STOP=1", "--command"),
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        ],
        env=target.libpq_env(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"cannot open the target database: {done.stderr.strip()}")
    return done.stdout.strip() == "0"


def restore(backup: Path, url: str) -> None:
    """Load ``backup`` into the empty database ``url`` (refuses a non-empty one)."""
    target = Target(url)
    if not backup.is_file():
        raise BackupError(f"there is no backup file at {backup}")
    is_dump = backup.suffix == ".dump"
    if is_dump != target.postgres:
        kind = "a Postgres dump" if is_dump else "a SQLite backup"
        raise BackupError(f"{backup.name} is {kind}, the target database is not")
    if not database_is_empty(url):
        raise BackupError(
            "the target database is not empty: restore into a new, empty database "
            "(keep the broken one under another name, docs/RUNBOOK.md F)"
        )
    if target.postgres:
        _run(
            [
                *("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error"),
                *("--single-transaction", f"--dbname={target.libpq_env()['PGDATABASE']}"),
                str(backup),
            ],
            target,
        )
        return
    _check_sqlite(backup)
    path = target.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    _sqlite_copy(backup, path)
    path.chmod(0o600)


def create_scratch(url: str, name: str) -> str:
    """A new, empty database beside ``url``'s (Postgres: same server, needs CREATEDB)."""
    target = Target(url)
    scratch = target.with_database(name)
    if target.postgres:
        _psql(target, f'CREATE DATABASE "{name}"')
    return scratch.url


def drop_scratch(url: str, scratch_url: str) -> None:
    target, scratch = Target(url), Target(scratch_url)
    if target.postgres:
        name = make_url(scratch_url).database
        _psql(target, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{scratch.sqlite_path}{suffix}").unlink(missing_ok=True)


def _psql(target: Target, sql: str) -> None:
    _run(["psql", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--command", sql], target)


def prune_local(directory: Path, keep_days: int, *, now: dt.datetime | None = None) -> list[str]:
    """Delete our backups older than ``keep_days``; returns the names deleted."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep_days)
    gone = []
    for path in sorted(directory.glob("jastipin-*")):
        taken = stamp_of(path.name)
        if taken is not None and taken < cutoff:
            path.unlink()
            gone.append(path.name)
    return gone


def newest_local(directory: Path) -> Path | None:
    found = sorted(
        (p for p in directory.glob("jastipin-*") if stamp_of(p.name)),
        key=lambda p: stamp_of(p.name),  # type: ignore[arg-type, return-value]
    )
    return found[-1] if found else None


class Bucket:
    """The off-host copies: ``db/<backup name>`` in ``S3_BACKUP_BUCKET``."""

    def __init__(self, settings: Any) -> None:
        import boto3
        from botocore.config import Config

        if not settings.s3_backup_bucket:
            raise BackupError("S3_BACKUP_BUCKET is not set: there is no off-host copy")
        self.name: str = settings.s3_backup_bucket
        endpoint, access_key, secret_key = settings.backup_store()
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name="auto" if endpoint else "us-east-1",
            config=Config(signature_version="s3v4", retries={"max_attempts": 3}),
        )

    @contextlib.contextmanager
    def _answering(self, doing: str) -> Iterator[None]:
        """An S3 failure as one sentence (a BackupError), never a traceback."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (ClientError, S3UploadFailedError) as exc:
            if isinstance(exc, ClientError):
                code = exc.response.get("Error", {}).get("Code", "error")
            else:  # upload_file wraps the ClientError's text
                found = re.search(r"\((\w+)\)", str(exc))
                code = found.group(1) if found else "error"
            if code == "NoSuchBucket":
                raise BackupError(
                    f"{doing}: the bucket {self.name!r} does not exist (S3_BACKUP_BUCKET)"
                ) from None
            if code in ("AccessDenied", "403", "Forbidden"):
                raise BackupPermissionError(
                    f"{doing}: access denied on bucket {self.name!r}"
                ) from None
            raise BackupError(f"{doing}: S3 answered {code} for bucket {self.name!r}") from None
        except BotoCoreError as exc:
            raise BackupError(f"{doing}: {exc}") from None

    def upload(self, path: Path) -> str:
        key = PREFIX + path.name
        with self._answering("copying the backup off the host"):
            self.client.upload_file(str(path), self.name, key)
        return key

    def names(self) -> list[str]:
        names: list[str] = []
        with self._answering("listing the off-host backups"):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=PREFIX
            ):
                names += [o["Key"][len(PREFIX) :] for o in page.get("Contents", [])]
        return sorted(n for n in names if stamp_of(n))

    def download(self, name: str, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        with self._answering("downloading the backup"):
            self.client.download_file(self.name, PREFIX + name, str(path))
        path.chmod(0o600)
        return path

    def prune(self, keep_days: int, *, now: dt.datetime | None = None) -> list[str]:
        cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep_days)
        gone = [n for n in self.names() if (stamp_of(n) or cutoff) < cutoff]
        with self._answering("pruning the off-host backups"):
            for name in gone:
                self.client.delete_object(Bucket=self.name, Key=PREFIX + name)
        return gone

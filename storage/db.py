"""The database handle: engine, sessions and the single-writer rule on SQLite.

Postgres serialises one user's updates with a row lock on the conversation and lets
different users run in parallel. SQLite has one writer at a time anyway; we make that
explicit with an ``asyncio.Lock`` around every write transaction of this process, so
transactions queue instead of failing with "database is locked".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.sqlite_inline import BUSY_TIMEOUT_MS, connect_inline


class WriterLock:
    """SQLite's single writer, shared fairly: FIFO, except that ``urgent`` waiters (the
    webhook's group commit, which Meta is waiting on) go before everybody else queued."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, *, urgent: bool = False) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # it was handed to us just as we were cancelled
            else:
                with contextlib.suppress(ValueError):
                    (self._urgent if urgent else self._normal).remove(waiter)
            raise

    def release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # handed over: still held
                    return
        self._held = False


def private_sqlite_file(url: str, *, create_dir: bool = True) -> None:
    """Create the SQLite file readable by its owner only (0600) before SQLite does, and
    tighten one found looser; SQLite gives its WAL and shared-memory files the same mode.
    Its folder, when created here (migrations do; the app does not), is the owner's only
    too (0700)."""
    path = url.split("///", 1)[-1].split("?", 1)[0] if url.startswith("sqlite") else ""
    if not path or path == ":memory:":
        return
    file = Path(path)
    if not file.parent.exists():
        if not create_dir:
            return  # SQLite will say it cannot open the file
        file.parent.mkdir(parents=True, mode=0o700)
    os.close(os.open(file, os.O_CREAT | os.O_RDWR, 0o600))
    for each in (file, Path(f"{file}-wal"), Path(f"{file}-shm")):
        if each.exists() and each.stat().st_mode & 0o077:
            each.chmod(0o600)


class DatabaseUnavailable(Exception):
    """The database could not be reached; callers answer 503 so Meta retries."""


class Database:
    """Owns the engine; hands out sessions for reads and write transactions."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 10, sqlite_inline: bool = True
    ) -> None:
        """``sqlite_inline``: run SQLite's statements on the event loop's thread instead of
        a thread per connection (see ``storage/sqlite_inline.py``; Postgres ignores it)."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            private_sqlite_file(url, create_dir=False)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            if sqlite_inline:
                event.listen(self.engine.sync_engine, "do_connect", connect_inline)
                event.listen(self.engine.sync_engine, "connect", _answer_busy_at_once)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock: WriterLock | None = None
        self._connection_error_callbacks: list[Callable[[], object]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def _writer(self, urgent: bool) -> AsyncIterator[None]:
        if not self.is_sqlite:
            yield
            return
        if self._write_lock is None:
            self._write_lock = WriterLock()
        lock = self._write_lock
        await lock.acquire(urgent=urgent)
        try:
            yield
        finally:
            lock.release()

    @contextlib.asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one write transaction, committed on success. ``urgent``: on
        SQLite, go before the transactions already waiting for the single writer."""
        async with (
            self._watched(),
            self._writer(urgent),
            self.sessionmaker() as session,
            session.begin(),
        ):
            yield session

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only."""
        async with self._watched(), self.sessionmaker() as session:
            yield session

    async def ping(self) -> None:
        """Raise :class:`DatabaseUnavailable` unless a trivial query answers."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not available"
            raise DatabaseUnavailable(str(exc)) from exc

    def on_connection_error(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` whenever the database cannot be reached or drops a
        connection (not for a statement's own errors, such as a constraint violated).

        SQLAlchemy reports dropped connections (and SQLite files it cannot open); a
        driver that cannot connect at all (asyncpg: ``ConnectionRefusedError``, a DNS
        or timeout error) raises a plain ``OSError`` out of the session, counted there."""
        self._connection_error_callbacks.append(callback)
        if len(self._connection_error_callbacks) == 1:
            event.listen(self.engine.sync_engine, "handle_error", self._handle_error)

    def _handle_error(self, context: Any) -> None:
        if context.is_disconnect or context.connection is None:
            self._connection_failed()

    def _connection_failed(self) -> None:
        for callback in self._connection_error_callbacks:
            callback()

    @contextlib.asynccontextmanager
    async def _watched(self) -> AsyncIterator[None]:
        try:
            yield
        except OSError:
            self._connection_failed()
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


def _answer_busy_at_once(dbapi_conn: Any, _record: Any) -> None:
    """An inline connection must not wait in SQLite's busy handler on the loop's thread:
    it hears "busy" at once and waits on its own thread instead."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=0")
    cur.close()


# Postgres's SQLSTATEs for a transaction it rolled back to resolve a conflict between
# transactions (deadlock_detected, serialization_failure): the same work may simply go again
_LOCK_CONFLICTS = frozenset({"40P01", "40001"})


def lock_conflict(exc: BaseException) -> bool:
    """True when ``exc`` (a SQLAlchemy DBAPIError) says the database rolled this
    transaction back because of a deadlock or a serialization conflict."""
    orig = getattr(exc, "orig", None)
    for err in (orig, getattr(orig, "__cause__", None)):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if code in _LOCK_CONFLICTS:
            return True
    return False

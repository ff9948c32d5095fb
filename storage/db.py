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
import copy
import os
import sqlite3
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

from storage.sqlite_inline import BUSY_TIMEOUT_MS, busy_wait, connect_inline
from storage.uow import Session

# asyncpg waits this long for a connection (its default is a minute)
CONNECT_TIMEOUT_SECONDS = 5.0


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


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite`` URL (None: not SQLite, or in memory)."""
    path = url.split("///", 1)[-1].split("?", 1)[0] if url.startswith("sqlite") else ""
    return Path(path) if path and path != ":memory:" else None


def private_sqlite_file(url: str, *, create_dir: bool = True) -> None:
    """Create the SQLite file readable by its owner only (0600) before SQLite does, and
    tighten one found looser, by path; SQLite gives its WAL and shared-memory files the
    same mode. Its folder, when created here (migrations do; the app does not), is the
    owner's only too (0700).

    Never a descriptor on an existing database file: closing any descriptor of a file
    drops every POSIX lock this process holds on it, SQLite's included, and another
    process would then take the database for unused and delete its -wal and -shm under
    the live connections (writes lost, issue #21). A file created here is a new inode
    (``O_EXCL``) that no connection can have locked yet."""
    file = sqlite_path(url)
    if file is None:
        return
    if not file.parent.exists():
        if not create_dir:
            return  # SQLite will say it cannot open the file
        file.parent.mkdir(parents=True, mode=0o700)
    if not file.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(file, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    for each in (file, Path(f"{file}-wal"), Path(f"{file}-shm")):
        with contextlib.suppress(FileNotFoundError):  # -wal/-shm come and go
            if each.stat().st_mode & 0o077:
                each.chmod(0o600)


class DatabaseUnavailable(Exception):
    """The database could not be reached; callers answer 503 so Meta retries."""


class DatabaseBusy(DatabaseUnavailable):
    """Another transaction held the lock past a :meth:`Database.prompt` handle's bound."""


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
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
            kwargs["connect_args"] = {"timeout": CONNECT_TIMEOUT_SECONDS}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            if sqlite_inline:
                event.listen(self.engine.sync_engine, "do_connect", connect_inline)
                event.listen(self.engine.sync_engine, "connect", _answer_busy_at_once)
            else:
                event.listen(self.engine.sync_engine.pool, "checkout", _long_busy_wait)
        self.sessionmaker = async_sessionmaker(self.engine, class_=Session, expire_on_commit=False)
        self.sqlite_inline = self.is_sqlite and sqlite_inline
        self._write_lock = WriterLock()
        self._connection_error_callbacks: list[Callable[[], object]] = []
        self._lock_wait: float | None = None  # see prompt()

    def prompt(self, seconds: float) -> Database:
        """This database — the same engine, writer lock and callbacks — with write
        transactions that give up after ``seconds`` waiting for a lock (this process's
        other writers, another process's write lock, a Postgres row or table lock) and
        raise: for the webhook, which Meta waits on and retries after a 503. Background
        work keeps the long waits. Dispose of the original, not of this handle."""
        handle = copy.copy(self)
        handle._lock_wait = seconds
        return handle

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def _writer(self, urgent: bool) -> AsyncIterator[None]:
        if not self.is_sqlite:
            yield
            return
        lock = self._write_lock
        if self._lock_wait is None:
            await lock.acquire(urgent=urgent)
        else:
            try:
                await asyncio.wait_for(lock.acquire(urgent=urgent), self._lock_wait)
            except TimeoutError:
                raise DatabaseBusy("this process's writers held SQLite too long") from None
        try:
            yield
        finally:
            lock.release()

    @contextlib.asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one write transaction, committed on success, with the rows
        its unit of work staged (``storage/uow.py``: replies, conversations) written
        right before the commit; on an exception all of it is rolled back. ``urgent``:
        on SQLite, go before the transactions already waiting for the single writer."""
        async with (
            self._watched(),
            self._writer(urgent),
            self.sessionmaker() as session,
            session.begin(),
        ):
            if self._lock_wait is None:
                yield session
                await session.uow.write(session)
                return
            with busy_wait(int(self._lock_wait * 1000)):
                await self._bound_lock_waits(session)
                yield session
                await session.uow.write(session)

    async def _bound_lock_waits(self, session: AsyncSession) -> None:
        """This transaction waits at most ``_lock_wait`` for a lock: SQLite's busy
        handler (inline connections: :func:`busy_wait`), Postgres's ``lock_timeout``
        (for this transaction only). Not a statement timeout: a big batch on a busy
        machine may take longer and must still commit (the webhook answers 503 at its
        own bound meanwhile, and Meta's retry is a duplicate)."""
        assert self._lock_wait is not None
        ms = int(self._lock_wait * 1000)
        if not self.is_sqlite:
            await session.execute(
                text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": f"{ms}ms"}
            )
        elif not self.sqlite_inline:
            # for this checkout only: _long_busy_wait sets it back at the next one
            await session.execute(text(f"PRAGMA busy_timeout={ms}"))

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

    async def probe(self, *, seconds: float = 1.0) -> str:
        """What ``/health`` says of the database: ``ok``; ``locked`` when the webhook's
        insert could not take its write lock within ``seconds`` (another process holds
        SQLite's, or a lock on the inbox table); ``unreachable`` when it cannot be
        opened or does not answer within ``seconds`` plus the connect timeout."""
        try:
            async with asyncio.timeout(seconds + CONNECT_TIMEOUT_SECONDS):
                if self.is_sqlite:
                    return await asyncio.to_thread(self._probe_sqlite, seconds)
                return await self._probe_postgres(seconds)
        except TimeoutError:
            return "unreachable"

    def _probe_sqlite(self, seconds: float) -> str:
        """SQLite's write lock taken and given back at once, on a connection of its own
        (SQLite's: closing it keeps this process's locks on the file)."""
        path = sqlite_path(self.url)
        if path is None:
            return "ok"  # in memory
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=seconds)
        except sqlite3.Error:
            return "unreachable"
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF in (5, 6)  # BUSY, LOCKED
            return "locked" if busy or "locked" in str(exc) else "unreachable"
        except sqlite3.Error:
            return "unreachable"
        finally:
            conn.close()
        return "ok"

    async def _probe_postgres(self, seconds: float) -> str:
        """The lock the webhook's insert takes on the inbox table, taken and given back
        (a transaction rolled back), waiting at most ``seconds`` for it."""
        from storage.models import InboundUpdate

        try:
            async with self.engine.connect() as conn:
                await conn.execute(
                    text("SELECT set_config('lock_timeout', :ms, true)"),
                    {"ms": f"{int(seconds * 1000)}ms"},
                )
                await conn.execute(
                    text(f"LOCK TABLE {InboundUpdate.__tablename__} IN ROW EXCLUSIVE MODE")
                )
                await conn.rollback()
        except Exception as exc:  # any driver error: say which kind
            return "locked" if _sqlstate(exc) == "55P03" else "unreachable"
        return "ok"

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


def _long_busy_wait(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A connection not inline waits the usual time again, whatever a prompt
    transaction that used it before set (:meth:`Database.prompt`)."""
    cur = dbapi_conn.cursor()
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


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for err in (orig, getattr(orig, "__cause__", None)):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if code:
            return str(code)
    return None


def lock_conflict(exc: BaseException) -> bool:
    """True when ``exc`` (a SQLAlchemy DBAPIError) says the database rolled this
    transaction back because of a deadlock or a serialization conflict."""
    orig = getattr(exc, "orig", None)
    for err in (orig, getattr(orig, "__cause__", None)):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if code in _LOCK_CONFLICTS:
            return True
    return False

"""SQLite statements on the event loop's own thread.

aiosqlite runs every call of a connection on a thread of its own and hands the result
back through the event loop. On this product's hot path that hop costs more than the
statement: a message is about fifteen statements of tens of microseconds each, and
every hop is a future, a queue, a cross-thread wake-up and one more turn of a busy
loop — an eighth of the serving process's Python time under the launch rush (py-spy,
docs/BENCHMARKS.md), and a turn of the loop of latency per statement.

:class:`InlineConnection` is an aiosqlite connection whose calls run where they are
awaited. What makes that safe here:

- The writes through one ``Database`` are serialised by its writer lock, so they never
  wait for each other in SQLite.
- A writer that lock does not know — another process (a CLI command, a worker on the
  same file) — would make SQLite wait in its busy handler, which must not block the
  loop: these connections answer "busy" at once (``busy_timeout`` 0) and such a call is then run
  again on the connection's thread with the usual 30 s wait (the webhook's insert:
  :func:`busy_wait`, about a second). A busy statement did nothing, so running it again
  is exact.
- A call that may take long (a fan-out over every participant, an export) can be sent
  to the thread for its duration with :func:`offloaded`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import aiosqlite

BUSY_TIMEOUT_MS = 30_000

_offload: contextvars.ContextVar[bool] = contextvars.ContextVar("sqlite_offload", default=False)
_busy_ms: contextvars.ContextVar[int] = contextvars.ContextVar(
    "sqlite_busy_ms", default=BUSY_TIMEOUT_MS
)


@contextlib.contextmanager
def busy_wait(ms: int) -> Iterator[None]:
    """Wait at most ``ms`` for another process's write lock in this context (the
    webhook's insert, which Meta waits on) instead of ``BUSY_TIMEOUT_MS``."""
    token = _busy_ms.set(ms)
    try:
        yield
    finally:
        _busy_ms.reset(token)


@contextlib.contextmanager
def offloaded() -> Iterator[None]:
    """Run this context's SQLite calls on the connections' threads (long reads and
    writes that should not hold the event loop)."""
    token = _offload.set(True)
    try:
        yield
    finally:
        _offload.reset(token)


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "database is locked" in str(exc)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the awaiting thread (see the module)."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if _offload.get():
            return await self._waiting(fn, *args, **kwargs)
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        # another process writes: wait for it on the connection's thread
        return await self._waiting(fn, *args, **kwargs)

    async def _waiting(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn`` on the connection's thread, with SQLite's busy handler waiting up to
        ``BUSY_TIMEOUT_MS`` (or this context's :func:`busy_wait`) for another process's
        write lock."""
        conn = self._conn
        wait_ms = _busy_ms.get()

        def call() -> Any:
            conn.execute(f"PRAGMA busy_timeout={wait_ms}")
            try:
                return fn(*args, **kwargs)
            finally:
                conn.execute("PRAGMA busy_timeout=0")

        return await super()._execute(call)


def connect_inline(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
    """SQLAlchemy ``do_connect`` hook: open SQLAlchemy's aiosqlite adapter over an
    :class:`InlineConnection` (used on the loop's thread, so not bound to its own)."""
    cparams["check_same_thread"] = False

    def create(*args: Any, **kwargs: Any) -> InlineConnection:
        conn = InlineConnection(functools.partial(sqlite3.connect, *args, **kwargs), 64)
        conn._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own
        return conn

    return dialect.loaded_dbapi.connect(*cargs, async_creator_fn=create, **cparams)

"""The durable inbox: webhook bodies split into units, stored, then processed.

Meta may batch several messages or statuses into one POST, while pywa's types read the
first one of a body. So a body is split into one unit per message / status / change,
each a complete webhook body of its own, keyed by the ``wamid`` for messages. Units are
stored before Meta gets its 200; processing happens afterwards (right away in a tracked
background task, and again by the sweeper for anything a crash left pending).

Processing parses each unit with ``pywa_async``'s own update types and handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from pywa_async import WhatsApp
from pywa_async.handlers import (
    CallbackButtonHandler,
    CallbackSelectionHandler,
    MessageHandler,
    MessageStatusHandler,
)
from pywa_async.types import CallbackButton, CallbackSelection, Message, MessageStatus

from bot import metrics
from storage.db import Database
from storage.repo import inbox as inbox_repo

log = logging.getLogger(__name__)


class MalformedUpdate(ValueError):
    """The body is JSON but not a WhatsApp webhook update."""


def split_update(body: Any) -> list[dict[str, Any]]:
    """One unit per message, status or other change, each a self-contained body."""
    if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
        raise MalformedUpdate("no entry list")
    units: list[dict[str, Any]] = []
    obj = body.get("object", "whatsapp_business_account")
    for entry in body["entry"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            raise MalformedUpdate("entry without changes")
        for change in entry["changes"]:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                raise MalformedUpdate("change without value")
            field = str(change.get("field", ""))
            value = change["value"]

            def wrap(v: dict[str, Any], entry: dict[str, Any] = entry, field: str = field) -> dict:
                return {
                    "object": obj,
                    "entry": [
                        {"id": entry.get("id", ""), "changes": [{"field": field, "value": v}]}
                    ],
                }

            rest = {k: v for k, v in value.items() if k not in ("messages", "statuses")}
            messages = value.get("messages") if field == "messages" else None
            statuses = value.get("statuses") if field == "messages" else None
            for msg in messages or []:
                if not isinstance(msg, dict):
                    raise MalformedUpdate("message is not an object")
                wamid = msg.get("id")
                contacts = _contacts(rest, msg.get("from"), msg.get("from_user_id"))
                unit_body = wrap({**rest, "contacts": contacts, "messages": [msg]})
                key = str(wamid) if wamid else "m:" + _digest(unit_body)
                units.append({"key": key, "kind": "message", "field": field, "body": unit_body})
            for st in statuses or []:
                if not isinstance(st, dict):
                    raise MalformedUpdate("status is not an object")
                contacts = _contacts(rest, st.get("recipient_id"), st.get("recipient_user_id"))
                unit_body = wrap({**rest, "contacts": contacts, "statuses": [st]})
                key = f"st:{st.get('id')}:{st.get('status')}:{st.get('recipient_id', '')}"
                units.append({"key": key, "kind": "status", "field": field, "body": unit_body})
            if not messages and not statuses:
                unit_body = wrap(value)
                units.append(
                    {
                        "key": "x:" + _digest(unit_body),
                        "kind": "other",
                        "field": field,
                        "body": unit_body,
                    }
                )
    return units


def _contacts(value: dict[str, Any], wa_id: Any, user_id: Any) -> list[dict[str, Any]]:
    """The unit's contact, in the shape pywa reads (older bodies lack ``user_id``, some
    statuses lack ``contacts`` altogether)."""
    found = [c for c in value.get("contacts") or [] if isinstance(c, dict)]
    match = [
        c
        for c in found
        if (wa_id and c.get("wa_id") == wa_id) or (user_id and c.get("user_id") == user_id)
    ]
    contact = dict((match or found or [{}])[0])
    contact.setdefault("profile", {})
    if wa_id and str(wa_id).isdigit() and not contact.get("wa_id"):
        contact["wa_id"] = str(wa_id)
    contact.setdefault("user_id", user_id)
    return [contact]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:40]


@dataclasses.dataclass
class _Unit:
    key: str
    handled: bool = False
    error: str | None = None


_current: contextvars.ContextVar[_Unit] = contextvars.ContextVar("jastipin_unit")

UserUpdate = Message | CallbackButton | CallbackSelection
MessageCallback = Callable[[str, UserUpdate], Awaitable[None]]
StatusCallback = Callable[[str, MessageStatus], Awaitable[None]]
DoneCallback = Callable[[str], Awaitable[None]]


class InboxProcessor:
    """Runs stored units through pywa's parser into our callbacks.

    ``on_message`` and ``on_status`` own the unit's transaction and mark it done inside
    it (so "done" and the effect commit together); a unit no handler claims (account
    updates, template news, …) is acknowledged with ``on_ignored``.
    """

    def __init__(
        self,
        db: Database,
        wa: WhatsApp,
        *,
        on_message: MessageCallback,
        on_status: StatusCallback,
        on_ignored: DoneCallback,
    ) -> None:
        self.db = db
        self.wa = wa
        self._on_message = on_message
        self._on_status = on_status
        self._on_ignored = on_ignored
        self.concurrency = 1 if db.is_sqlite else 8
        self._queue: asyncio.Queue[str] | None = None
        self._consumers: list[asyncio.Task[None]] = []
        wa.add_handlers(
            # pywa types its handlers against the sync client; ours is the async one
            MessageHandler(cast(Any, self._message)),
            CallbackButtonHandler(cast(Any, self._message)),
            CallbackSelectionHandler(cast(Any, self._message)),
            MessageStatusHandler(cast(Any, self._status)),
        )

    async def _message(self, _: WhatsApp, update: UserUpdate) -> None:
        unit = _current.get()
        unit.handled = True
        try:
            await self._on_message(unit.key, update)
        except Exception as exc:
            unit.error = f"{type(exc).__name__}: {exc}"
            log.exception("processing an inbound message failed", extra={"unit": unit.key})

    async def _status(self, _: WhatsApp, update: MessageStatus) -> None:
        unit = _current.get()
        unit.handled = True
        try:
            await self._on_status(unit.key, update)
        except Exception as exc:
            unit.error = f"{type(exc).__name__}: {exc}"
            log.exception("processing a status failed", extra={"unit": unit.key})

    async def process(self, key: str) -> None:
        """Process one stored unit (no-op if it is already done)."""
        async with self.db.read() as session:
            row = await inbox_repo.get(session, key)
            if row is None or row.status != "pending":
                return
            body = json.dumps(row.body).encode()
        unit = _Unit(key)
        token = _current.set(unit)
        try:
            await self.wa.webhook_update_handler(body)
        finally:
            _current.reset(token)
        if unit.error is not None:
            metrics.INBOX_FAILURES.inc()
            async with self.db.transaction() as session:
                await inbox_repo.record_failure(session, key, unit.error)
        elif not unit.handled:
            await self._on_ignored(key)

    def schedule(self, keys: list[str]) -> None:
        """Queue units for processing by a few background consumers.

        A small, fixed number of consumers (one on SQLite, whose single writer would
        otherwise make every webhook commit wait behind a crowd of conversations) keeps
        acknowledging Meta fast under load; the backlog is durable in the inbox anyway.
        """
        if not keys:
            return
        if self._queue is None:
            self._queue = asyncio.Queue()
        while len(self._consumers) < self.concurrency:
            task = asyncio.get_running_loop().create_task(self._consume(self._queue))
            self._consumers.append(task)
        for key in keys:
            self._queue.put_nowait(key)

    async def _consume(self, queue: asyncio.Queue[str]) -> None:
        while True:
            key = await queue.get()
            try:
                await self.process(key)
            except Exception:
                log.exception("inbox unit processing crashed", extra={"unit": key})
            finally:
                queue.task_done()

    async def drain(self) -> None:
        """Wait until every unit scheduled so far was processed (tests, shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        """Finish the queued units, then stop the consumers."""
        await self.drain()
        for task in self._consumers:
            task.cancel()
        for task in self._consumers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._consumers.clear()

    async def sweep(self, *, older_than_seconds: float = 5.0) -> int:
        """Retry units left pending (a crash, a failure); return how many were tried."""
        import datetime as dt

        async with self.db.read() as session:
            keys = await inbox_repo.pending_keys(
                session, older_than=dt.timedelta(seconds=older_than_seconds)
            )
        for key in keys:
            await self.process(key)
        return len(keys)


class InboxWriter:
    """Group commit for the webhook: concurrent requests share one insert transaction.

    Each request hands its units over and waits for the commit that contains them, so
    Meta still gets its 200 only after the update is durable; under load many requests
    ride on one commit instead of queueing for the database one by one.
    """

    def __init__(self, db: Database, *, max_batch: int = 500) -> None:
        self.db = db
        self.max_batch = max_batch
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[set[str]]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def store(self, units: list[dict[str, Any]]) -> set[str]:
        """Store units durably; return the keys that were new. Raises what the DB raised."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        future: asyncio.Future[set[str]] = asyncio.get_running_loop().create_future()
        self._pending.append((units, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = (
                    self._pending[: self.max_batch],
                    self._pending[self.max_batch :],
                )
                await self._commit(batch)

    async def _commit(
        self, batch: list[tuple[list[dict[str, Any]], asyncio.Future[set[str]]]]
    ) -> None:
        seen: set[str] = set()
        units: list[dict[str, Any]] = []
        for request_units, _ in batch:
            for unit in request_units:
                if unit["key"] not in seen:  # the same wamid twice in one batch
                    seen.add(unit["key"])
                    units.append(unit)
        try:
            async with self.db.transaction() as session:
                new = set(await inbox_repo.store_units(session, units))
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
            if not isinstance(exc, Exception):
                raise
            return
        for request_units, future in batch:
            if not future.done():
                mine = {u["key"] for u in request_units} & new
                new -= mine  # a key is "new" for exactly one request
                future.set_result(mine)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

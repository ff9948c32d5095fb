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
import collections
import contextlib
import contextvars
import dataclasses
import hashlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, cast

from pywa_async import WhatsApp
from pywa_async.handlers import (
    CallbackButtonHandler,
    CallbackSelectionHandler,
    MessageHandler,
    MessageStatusHandler,
)
from pywa_async.types import CallbackButton, CallbackSelection, Message, MessageStatus
from sqlalchemy.ext.asyncio import AsyncSession

from bot import metrics
from bot.logs import describe_error
from bot.retry import Backoff
from storage import trace
from storage.db import Database
from storage.repo import inbox as inbox_repo
from storage.sealed import active

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
                # a wamid carries the sender's number in base64: keys hold its digest
                key = "w:" + _id(wamid) if wamid else "m:" + _digest(unit_body)
                units.append(
                    {
                        "key": key,
                        "kind": "message",
                        "field": field,
                        "body": unit_body,
                        "lane": inbox_repo.lane_of(unit_body, active().digest_id),
                    }
                )
            for st in statuses or []:
                if not isinstance(st, dict):
                    raise MalformedUpdate("status is not an object")
                contacts = _contacts(rest, st.get("recipient_id"), st.get("recipient_user_id"))
                unit_body = wrap({**rest, "contacts": contacts, "statuses": [st]})
                # a message id names its one recipient: the key needs no number
                key = f"st:{_id(st.get('id'))}:{st.get('status')}"
                units.append(
                    {
                        "key": key,
                        "kind": "status",
                        "field": field,
                        "body": unit_body,
                        "lane": inbox_repo.lane_of(unit_body, active().digest_id),
                    }
                )
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


def _id(wamid: Any) -> str:
    return active().digest_id(str(wamid))


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:40]


@dataclasses.dataclass(repr=False)
class _Unit:
    """One stored unit on its way through: what pywa parsed it into, and how it went."""

    key: str
    body: dict[str, Any]
    user: str  # whose messages must stay in order ("" for statuses and other changes)
    ts: int  # Meta's timestamp of the message (ordering), 0 when none
    update: UserUpdate | MessageStatus | None = None
    incoming: Any = None
    error: str | None = None
    attempts: int = 0  # attempts started before this process took it up (the sweeper's)
    parsed: bool = False
    started: bool = False  # this attempt is counted (inbox_repo.start_attempts)
    prepared: bool = False  # its media was fetched aside (InboxProcessor._fetch_aside)
    waiting: bool = False  # set aside for its media: its user stays busy until it is back
    request_id: str | None = None  # the webhook's X-Request-Id: on every line about it
    lane: str | None = None  # the lease it is processed under (Postgres), None: none
    ids: Mapping[str, int | str] = dataclasses.field(default_factory=dict)  # trip, user

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Lines written meanwhile carry the unit's request id, its key and the ids it
        is about; what is learned inside (the trip, the user) stays with the unit."""
        with trace.scope(self.request_id, **{"unit": loggable(self.key), **self.ids}):
            try:
                yield
            finally:
                self.ids = trace.fields()

    @property
    def kind(self) -> str:
        if isinstance(self.update, MessageStatus):
            return "status"
        return "other" if self.update is None else "message"

    def __repr__(self) -> str:
        # ids only: the body holds numbers, names and what the person typed
        return f"<unit {loggable(self.key)}>"


LEASE_SECONDS = 10.0
"""How long a lane's lease runs (Postgres): renewed every third of it while the lane is
held, so it runs out only after its process died or stopped answering; then another
process takes the lane up."""

WANTED_SECONDS = 2.0
"""A unit handed in while another process holds its lane (two API processes receiving
one user) is offered to the lease again for this long, a tenth of a second apart; the
holder takes it up itself before it lets go of the lane (``release_lanes``), and past
this the sweepers do."""

MEDIA_CONCURRENCY = 8
"""Media downloads (and their decoding, itself bounded by ``storage/isolated.py``) one
process runs at once, each set aside from the batches."""

_current: contextvars.ContextVar[_Unit] = contextvars.ContextVar("jastipin_unit")

UserUpdate = Message | CallbackButton | CallbackSelection


class UnitHandler(Protocol):
    """What the processor hands parsed units to (``bot.dispatcher.Dispatcher``)."""

    def needs_media(self, update: UserUpdate) -> bool: ...

    async def prepare(self, key: str, update: UserUpdate) -> Any: ...

    async def apply_message(
        self,
        session: AsyncSession,
        key: str,
        update: UserUpdate,
        incoming: Any,
        loaded: Any = None,
    ) -> bool: ...

    async def apply_status(
        self, session: AsyncSession, key: str, update: MessageStatus
    ) -> bool: ...

    async def apply_ignored(self, session: AsyncSession, key: str) -> bool: ...

    async def load_batch(
        self, session: AsyncSession, updates: dict[str, UserUpdate]
    ) -> Mapping[str, Any]:
        """What a batch's messages need, loaded together, by unit key: handed back to
        :meth:`apply_message` (``loaded``) for each of them."""
        ...

    def after_commit(self) -> None: ...


def _stored(row: inbox_repo.Unit) -> dict[str, Any]:
    """A unit read back from the inbox, as :meth:`InboxProcessor.schedule` takes it."""
    key, kind, body, attempts, request_id, lane = row
    return {
        "key": key,
        "kind": kind,
        "body": body,
        "attempts": attempts,
        "request_id": request_id,
        "lane": lane,
    }


def loggable(key: str) -> str:
    """A unit key fit for a log line. Keys hold digests of Meta's ids, never a number;
    status units stored before 2026-12-02 were keyed ``st:<wamid>:<status>:<number>``,
    and their number never goes into a log."""
    if key.startswith("st:") and not key.startswith("st:h1:"):
        return ":".join(key.split(":")[:3])
    return key


def _lock_order(unit: _Unit) -> tuple[str, int]:
    """The order a batch's units take their row locks in: messages by user (one lock
    order for every consumer), statuses by the outbox row they confirm — ascending, as
    a sending worker records its sends — so a status racing its own send's record can
    wait for it but never deadlock with it (seen on Postgres in the rush)."""
    update = unit.update
    if isinstance(update, MessageStatus):
        tracker = str(update.tracker or "")
        if tracker.startswith("ob:") and tracker[3:].isdigit():
            return unit.user, int(tracker[3:])
    return unit.user, 0


def ordering(unit: dict[str, Any]) -> tuple[str, int]:
    """(user, Meta's timestamp) of a message unit: one user's messages are handled one at
    a time in the order they were sent; statuses and other changes in any order."""
    if unit.get("kind") != "message":
        return "", 0
    try:
        value = unit["body"]["entry"][0]["changes"][0]["value"]
        msg = value["messages"][0]
        user = str(msg.get("from_user_id") or msg.get("from") or "")
        return user, int(msg.get("timestamp") or 0)
    except (KeyError, IndexError, TypeError, ValueError):
        return "", 0


class InboxProcessor:
    """Runs stored units through pywa's parser into the dispatcher, many users at once,
    each user's messages one at a time and in the order they were sent.

    Units wait in a lane per user, sorted by Meta's timestamp (two messages delivered
    swapped are handled in the order they were written). A few consumers each take the
    first unit of up to ``batch`` different users and run them in ONE transaction,
    claimed with one statement (a group commit for processing). A unit with media
    (a photo, a PDF) is set aside instead: its download and decoding run in a task of
    their own (no database lock held while bytes travel, at most
    :data:`MEDIA_CONCURRENCY` at once) and it joins a later batch once ready, so one
    user's slow download never delays another user; that user's next message waits
    for it (the user stays busy). Should one unit fail, the batch rolls back and each
    of its units runs again in a transaction of its own, so a failure costs only its
    own unit (retried by the sweeper) and never the others' effects.

    Every attempt is counted (committed) before its work starts, so a unit whose
    processing kills the process is counted too: the sweeper runs a unit that was tried
    before in a batch of its own, and after ``MAX_ATTEMPTS`` it is parked as failed
    (``jastipin queue dead``, /admin/queue) instead of being replayed forever.
    """

    def __init__(
        self,
        db: Database,
        wa: WhatsApp,
        handler: UnitHandler,
        *,
        batch: int | None = None,
        consumers: int | None = None,
    ) -> None:
        self.db = db
        self.wa = wa
        self.handler = handler
        # SQLite has one writer: one consumer with big batches; Postgres runs several
        # smaller batches side by side (smaller: fewer row locks held at once)
        self.batch = batch or (64 if db.is_sqlite else 16)
        self.concurrency = consumers or (1 if db.is_sqlite else 4)
        self._lanes: dict[str, list[_Unit]] = {}
        self._busy: set[str] = set()
        self._ready: collections.deque[str] = collections.deque()
        self._loose: collections.deque[_Unit] = collections.deque()  # no order needed
        # units whose media is ready: their users are still busy (first in the next batch)
        self._prepared: collections.deque[_Unit] = collections.deque()
        self._aside: set[asyncio.Task[None]] = set()
        self._media_slots = asyncio.Semaphore(MEDIA_CONCURRENCY)
        self._known: set[str] = set()  # queued or in flight: the sweeper leaves them be
        self._wake = asyncio.Event()  # work arrived or a user's lane became free
        self._idle = asyncio.Event()
        self._idle.set()
        self._consumers: list[asyncio.Task[None]] = []
        # Postgres: a process parses a user's units only under that lane's lease
        # (storage/repo/inbox.py), so several processes share one backlog
        self.leasing = not db.is_sqlite
        self.lease_seconds = LEASE_SECONDS
        self.holder = f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._held: dict[str, int] = {}  # leased lanes → their units in hand
        self._freed: set[str] = set()  # held lanes with no unit in hand: to give back
        # units handed in whose lane is not held: lane → (since, units by key)
        self._wanted: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._contended: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}  # retried
        self._leasing = asyncio.Lock()  # one lease statement of this process at a time
        self._leaser: asyncio.Task[None] | None = None
        self._lease_wake = asyncio.Event()
        self._renewed = 0.0  # loop time of the last renewal
        self._leased = False  # leases were taken: given back when stopping
        wa.add_handlers(
            # pywa types its handlers against the sync client; ours is the async one
            MessageHandler(cast(Any, self._parsed)),
            CallbackButtonHandler(cast(Any, self._parsed)),
            CallbackSelectionHandler(cast(Any, self._parsed)),
            MessageStatusHandler(cast(Any, self._parsed)),
        )

    async def _parsed(self, _: WhatsApp, update: UserUpdate | MessageStatus) -> None:
        _current.get().update = update

    # --- queueing ------------------------------------------------------------------------

    def schedule(self, units: list[dict[str, Any]]) -> None:
        """Queue stored units (``key``, ``kind``, ``body``, optionally ``attempts``,
        ``request_id`` and ``lane``). On Postgres a unit of a user's lane goes through
        the lane's lease first (:meth:`_lease_round`), even when this process holds the
        lane already: the round also reads the lane's units another process stored
        before (a user writing to two API instances), so none is overtaken."""
        if not self.leasing:
            self._enqueue(units)
            return
        now = asyncio.get_running_loop().time()
        mine: list[dict[str, Any]] = []
        for raw in units:
            lane = raw.get("lane")
            if raw["key"] in self._known:
                continue
            if not lane:
                mine.append(raw)
                continue
            since, _ = self._contended.get(lane, (now, {}))
            self._wanted.setdefault(lane, (since, {}))[1][raw["key"]] = raw
        self._enqueue(mine)
        if self._wanted:
            self._idle.clear()
            self._start_leaser()
            self._lease_wake.set()

    def _enqueue(self, units: list[dict[str, Any]]) -> None:
        """Queue units this process may work on (their lane held, or none needed)."""
        fresh = [u for u in units if u["key"] not in self._known]
        if not fresh:
            return
        while len(self._consumers) < self.concurrency:
            # a context of their own: not that of the request that happened to start them
            task = asyncio.get_running_loop().create_task(
                self._consume(), context=contextvars.Context()
            )
            self._consumers.append(task)
        for raw in fresh:
            user, ts = ordering(raw)
            unit = _Unit(
                raw["key"],
                raw["body"],
                user,
                ts,
                attempts=raw.get("attempts", 0),
                request_id=raw.get("request_id"),
                lane=raw.get("lane") if self.leasing else None,
            )
            self._known.add(unit.key)
            if unit.lane:
                self._held[unit.lane] = self._held.get(unit.lane, 0) + 1
            if not user:
                self._loose.append(unit)
                continue
            lane = self._lanes.setdefault(user, [])
            lane.append(unit)
            lane.sort(key=lambda u: u.ts)  # stable: same second keeps arrival order
            if user not in self._busy and len(lane) == 1:
                self._ready.append(user)
        self._idle.clear()
        self._wake.set()

    def _take(self) -> list[_Unit]:
        """The first unit of up to ``batch`` users that are not busy (then busy)."""
        taken: list[_Unit] = []
        while self._prepared and len(taken) < self.batch:
            unit = self._prepared.popleft()
            unit.waiting = False
            taken.append(unit)
        while self._ready and len(taken) < self.batch:
            user = self._ready.popleft()
            lane = self._lanes.get(user)
            if not lane or user in self._busy:
                continue
            self._busy.add(user)
            taken.append(lane.pop(0))
        while self._loose and len(taken) < self.batch:
            taken.append(self._loose.popleft())
        return taken

    def _release(self, units: list[_Unit]) -> None:
        for unit in units:
            self._known.discard(unit.key)
            if unit.lane and unit.lane in self._held:
                self._held[unit.lane] -= 1
                if self._held[unit.lane] <= 0:  # nothing of it in hand: give it back
                    self._freed.add(unit.lane)
                    self._lease_wake.set()
            if not unit.user:
                continue
            self._busy.discard(unit.user)
            lane = self._lanes.get(unit.user)
            if lane:
                self._ready.append(unit.user)
            else:
                self._lanes.pop(unit.user, None)
        self._check_idle()

    def _check_idle(self) -> None:
        if not self._known and not self._wanted and not self._contended:
            self._idle.set()

    # --- leases (Postgres) ---------------------------------------------------------------

    def _start_leaser(self) -> None:
        if self._leaser is None or self._leaser.done():
            self._leaser = asyncio.get_running_loop().create_task(
                self._lease_loop(), context=contextvars.Context()
            )

    async def _lease_loop(self) -> None:
        """Leases the lanes of units handed in, gives back the lanes this process has
        no unit of left, and renews the ones it holds."""
        backoff = Backoff(0.1, cap=5.0)
        renew_every = self.lease_seconds / 3
        loop = asyncio.get_running_loop()
        while True:
            if not self._wanted and not self._freed:
                # lanes held elsewhere are offered again a tenth of a second on
                self._lease_wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._lease_wake.wait(), 0.1 if self._contended else renew_every
                    )
            try:
                if self._held and loop.time() - self._renewed >= renew_every:
                    async with self._leasing, self.db.transaction() as session:
                        await inbox_repo.renew_leases(session, self.holder, self.lease_seconds)
                    self._renewed = loop.time()
                if self._wanted or self._freed or self._contended:
                    await self._lease_round()
                backoff.succeeded()
            except Exception:
                log.exception("inbox lease round failed")
                await asyncio.sleep(backoff.failed())

    async def _lease_round(self) -> None:
        """One transaction: the freed lanes given back (unless a unit waits in one), the
        wanted lanes leased; then the pending units of every lane held anew queued."""
        loop = asyncio.get_running_loop()
        async with self._leasing:
            freed = sorted(lane for lane in self._freed if self._held.get(lane) == 0)
            self._freed.clear()
            for lane in freed:
                del self._held[lane]  # meanwhile a unit of it waits for the lease
            wanted = self._contended
            for lane, (since, units_of) in self._wanted.items():
                wanted[lane] = (since, {**wanted.get(lane, (since, {}))[1], **units_of})
            self._wanted, self._contended = {}, {}
            if not freed and not wanted:
                return
            in_hand = [key for _, units in wanted.values() for key in units]
            try:
                async with self.db.transaction() as session:
                    released = await inbox_repo.release_lanes(session, freed, self.holder)
                    kept = set(freed) - released
                    got = await inbox_repo.lease_lanes(
                        session, sorted(wanted), self.holder, self.lease_seconds
                    )
                    ours = sorted(kept | got)
                    rows = await inbox_repo.pending_in_lanes(session, ours, besides=in_hand)
            except BaseException:
                # nothing changed: the same round again next time
                for lane in freed:
                    self._held.setdefault(lane, 0)
                    self._freed.add(lane)
                self._contended.update(wanted)
                raise
            if got:
                self._leased = True
            for lane in ours:
                self._held.setdefault(lane, 0)
            units = [u for lane in ours if lane in wanted for u in wanted[lane][1].values()]
            units += [_stored(row) for row in rows]
            self._enqueue(units)
            for lane in ours:
                if self._held[lane] == 0:  # nothing left in it after all
                    self._freed.add(lane)
            now = loop.time()
            for lane, (since, units_of) in wanted.items():
                if lane in ours:
                    continue
                if now - since < WANTED_SECONDS:
                    self._contended[lane] = (since, units_of)
                else:  # the holder takes it up (or the sweepers do)
                    log.debug("inbox lane held elsewhere", extra={"units": len(units_of)})
            self._check_idle()

    async def _give_back(self) -> None:
        """Every lease of this process given back (stopping): the units left pending
        are another process's to take at once."""
        self._held.clear()
        self._freed.clear()
        self._wanted.clear()
        self._contended.clear()
        if not self._leased:
            return
        self._leased = False
        try:
            async with asyncio.timeout(5), self.db.transaction() as session:
                await inbox_repo.release_all(session, self.holder)
        except Exception:  # they run out by themselves
            log.warning("inbox leases not given back", exc_info=True)

    async def _consume(self) -> None:
        while True:
            units = self._take()
            if not units:
                # nothing between taking and waiting yields, so no wake-up is lost
                self._wake.clear()
                await self._wake.wait()
                continue
            # a unit tried before may be what killed a process: alone, it costs no other
            suspects = [u for u in units if u.attempts > 0]
            batches = [[u] for u in suspects] + [[u for u in units if u.attempts == 0]]
            for batch in batches:
                if not batch:
                    continue
                try:
                    await self.run_batch(batch, aside=True)
                except Exception:
                    log.exception("inbox batch crashed")
                finally:
                    # units set aside for their media keep their user busy
                    self._release([u for u in batch if not u.waiting])
                    if self._ready or self._loose or self._prepared:
                        self._wake.set()

    # --- processing ----------------------------------------------------------------------

    async def run_batch(self, units: list[_Unit], *, aside: bool = False) -> list[_Unit]:
        """Parse, prepare (media) and apply a batch of units of different users; the
        units it finished. With ``aside``, units whose media is still to be fetched are
        set aside instead (:meth:`_fetch_aside`) and come back in a later batch."""
        for unit in units:
            if unit.parsed:
                continue
            token = _current.set(unit)
            try:
                with unit.scope():
                    await self.wa.webhook_update_handler(json.dumps(unit.body).encode())
            finally:
                _current.reset(token)
            unit.parsed = True
        done = units
        if aside:
            slow = [u for u in units if not u.prepared and self._has_media(u)]
            for unit in slow:
                unit.waiting = True
                task = asyncio.get_running_loop().create_task(self._fetch_aside(unit))
                self._aside.add(task)
                task.add_done_callback(self._aside.discard)
            done = [u for u in units if all(u is not s for s in slow)]
            if not done:
                return done
        await self._start([u for u in done if not u.started and not u.prepared])
        work = [u for u in done if u.started]
        await asyncio.gather(*(self._prepare(u) for u in work if not u.prepared))
        await self._apply_batch(work)
        return done

    def _has_media(self, unit: _Unit) -> bool:
        update = unit.update
        return isinstance(update, UserUpdate) and self.handler.needs_media(update)

    async def _start(self, units: list[_Unit]) -> None:
        """Count an attempt of each unit, committed before any of its work starts;
        a unit that had all its attempts is parked (and not started)."""
        if not units:
            return
        async with self.db.transaction() as session:
            started, parked = await inbox_repo.start_attempts(session, [u.key for u in units])
        for unit in units:
            unit.started = unit.key in started
            if unit.key in parked:
                with unit.scope():
                    log.error("inbox unit parked: never finished")
        if parked:
            metrics.INBOX_FAILURES.inc(len(parked))

    async def _fetch_aside(self, unit: _Unit) -> None:
        """A unit's media fetched (downloaded, decoded, stored) in a task of its own;
        then the unit waits for the next batch. Its user stays busy meanwhile."""
        try:
            async with self._media_slots:
                await self._start([unit])
                if unit.started:
                    await self._prepare(unit)
        except Exception:  # the database, most likely: the sweeper tries again
            unit.started = False
            with unit.scope():
                log.exception("preparing an inbound unit crashed")
        unit.prepared = True  # not started (parked, handled) or failed: the batch skips it
        self._prepared.append(unit)
        self._wake.set()

    async def _apply_batch(self, units: list[_Unit]) -> None:
        """Apply started, prepared units in one transaction (else one by one)."""
        ready = sorted((u for u in units if u.error is None), key=_lock_order)
        try:
            # the fast path: the whole batch claimed with one statement and applied in one
            # transaction, without a savepoint per unit (two statements each)
            async with self.db.transaction() as session:
                claimed = await inbox_repo.claim_many(session, [u.key for u in ready])
                mine = [u for u in ready if u.key in claimed]
                # the batch's users and conversations in a few statements, not a few each
                loaded = await self.handler.load_batch(
                    session,
                    {u.key: u.update for u in mine if isinstance(u.update, UserUpdate)},
                )
                for unit in mine:  # sorted by user: one lock order for every consumer
                    await self._apply(session, unit, loaded.get(unit.key))
        except Exception as exc:
            # one unit failed (or the batch could not commit: a deadlock, the database):
            # nothing of the batch stayed; each unit again in its own transaction
            if len(ready) > 1:
                log.warning("inbox batch failed, one by one", extra={"error": type(exc).__name__})
            for unit in ready:
                await self._apply_alone(unit)
        else:
            self._handled(mine)  # committed
        self.handler.after_commit()
        failed = [u for u in units if u.error is not None]
        if failed:
            metrics.INBOX_FAILURES.inc(len(failed))
            async with self.db.transaction() as session:
                for unit in failed:
                    await inbox_repo.record_failure(session, unit.key, unit.error or "")

    async def _prepare(self, unit: _Unit) -> None:
        if isinstance(unit.update, Message | CallbackButton | CallbackSelection):
            with unit.scope():
                try:
                    unit.incoming = await self.handler.prepare(unit.key, unit.update)
                except Exception as exc:
                    unit.error = describe_error(exc)  # kept at rest: never a buyer's words
                    log.exception("preparing an inbound message failed")

    async def _apply(self, session: AsyncSession, unit: _Unit, loaded: Any = None) -> None:
        with unit.scope():  # replies queued meanwhile keep its request id (and trip)
            if isinstance(unit.update, MessageStatus):
                await self.handler.apply_status(session, unit.key, unit.update)
            elif unit.update is not None:
                await self.handler.apply_message(
                    session, unit.key, unit.update, unit.incoming, loaded
                )
            else:
                await self.handler.apply_ignored(session, unit.key)

    @staticmethod
    def _handled(units: list[_Unit]) -> None:
        """One line per message handled (committed), with its request, trip and user:
        what on-call follows a message by (docs/RUNBOOK.md); statuses only at debug."""
        for unit in units:
            with unit.scope():
                level = logging.DEBUG if unit.kind != "message" else logging.INFO
                log.log(level, "inbox unit handled", extra={"kind": unit.kind})

    async def _apply_alone(self, unit: _Unit) -> None:
        unit.error = None
        try:
            async with self.db.transaction() as session:
                if not await inbox_repo.claim(session, unit.key):
                    return
                await self._apply(session, unit)
            self._handled([unit])
        except Exception as exc:
            unit.error = describe_error(exc)  # kept at rest: never a buyer's words
            with unit.scope():
                log.exception("processing an inbound unit failed")

    async def drain(self) -> None:
        """Wait until every unit scheduled so far was processed (tests, shutdown)."""
        await self._idle.wait()

    async def close(self, *, within: float | None = None) -> None:
        """Finish the queued units (for at most ``within`` seconds: what is left stays
        pending in the inbox, a transaction cut off rolls back, and the next process's
        sweeper picks them up), then stop the consumers."""
        try:
            await asyncio.wait_for(self.drain(), timeout=within)
        except TimeoutError:
            log.warning("inbox units left pending at shutdown", extra={"left": len(self._known)})
        tasks = [*self._consumers, *self._aside]
        if self._leaser is not None:
            tasks.append(self._leaser)
            self._leaser = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._consumers.clear()
        self._aside.clear()
        self._prepared.clear()
        # whatever was not processed is still pending in the database
        self._lanes.clear()
        self._busy.clear()
        self._ready.clear()
        self._loose.clear()
        self._known.clear()
        await self._give_back()
        self._idle.set()

    async def sweep(self, *, older_than_seconds: float = 5.0) -> int:
        """Queue units left pending (a crash, a failure, or stored by an API process for
        the workers) that this process is not handling already, and wait for them;
        returns how many were queued."""
        import datetime as dt

        older_than = dt.timedelta(seconds=older_than_seconds)
        if self.leasing:
            # only units of lanes no other process holds, their lanes leased at once
            async with self._leasing:
                async with self.db.transaction() as session:
                    leased = await inbox_repo.lease_pending(
                        session,
                        older_than=older_than,
                        holder=self.holder,
                        seconds=self.lease_seconds,
                        lanes=self.batch,  # a batch's users a pass: workers share a backlog
                    )
                units = [_stored(row) for row in leased if row[0] not in self._known]
                lanes = {lane for *_, lane in leased if lane}
                for lane in lanes:
                    self._held.setdefault(lane, 0)
                if lanes:
                    self._leased = True
                    self._start_leaser()
                self._enqueue(units)
                for lane in lanes:  # handed in meanwhile: ours now
                    for waiting in (self._wanted, self._contended):
                        if lane in waiting:
                            self._enqueue(list(waiting.pop(lane)[1].values()))
                # a leased lane whose units were all in hand already: given back
                self._freed.update(lane for lane, n in self._held.items() if n == 0)
                if self._freed:
                    self._lease_wake.set()
        else:
            async with self.db.read() as session:
                rows = await inbox_repo.pending_units(session, older_than=older_than)
            units = [
                {"key": key, "kind": kind, "body": body, "attempts": attempts, "request_id": rid}
                for key, kind, body, attempts, rid in rows
                if key not in self._known
            ]
            self.schedule(units)
        await self.drain()
        return len(units)


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
            # a context of its own: its commits serve many requests, not the first one's
            self._task = asyncio.get_running_loop().create_task(
                self._run(), context=contextvars.Context()
            )
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
            async with self.db.transaction(urgent=True) as session:  # Meta is waiting
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

"""The real processes in a test, as an operator starts them: ``jastipin serve``,
workers, one-shot commands, each writing its log to a file; signed webhooks posted as
Meta posts them, and the chat steps of a buyer (shared by the end-to-end tests)."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy import func, select, update

from bot import simulate
from storage.crypto import normalise_phone
from storage.db import Database
from storage.demo import DEMO_CODE
from storage.models import (
    Broadcast,
    BroadcastDelivery,
    Jastiper,
    OutboxMessage,
    Participant,
    Trip,
    User,
    utcnow,
)
from storage.sealed import open_cipher
from tests.conftest import (
    ACCESS_TOKEN,
    APP_SECRET,
    META_RETRIES,
    META_RETRY_PAUSE,
    PHONE_ID,
    REDIS_URL,
    VERIFY_TOKEN,
    _truncate,
    phone,
)
from tests.fakes.graph_api import FakeGraphAPI, message_text

JASTIPIN = str(Path(sys.executable).parent / "jastipin")
LEASE_SECONDS = 3
# above how far status webhooks may lag on a busy machine: 10 s was not, with 8 people's
# tests on these 2 cores (80 of 300 recipients sent twice, the confirming webhooks late)
GRACE_SECONDS = 30
# how long a process may take to start or to exit, and a database or Redis read to answer,
# before the test fails saying so: generous, as 8 others may be loading the machine
START_SECONDS = 90
EXIT_SECONDS = 30
QUERY_SECONDS = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """The processes an operator runs, each writing its log to a file in ``tmp_path``."""

    def __init__(self, tmp_path: Path, fake: FakeGraphAPI, db_url: str, prefix: str) -> None:
        self.tmp_path = tmp_path
        self.fake = fake
        self.db_url = db_url
        self.prefix = prefix
        self.port = free_port()
        self.pii_key = secrets.token_bytes(32)
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("WA_", "PII_", "BROADCAST_", "OUTBOX_", "INBOX_"))
            },
            "DATABASE_URL": db_url,
            "JASTIPIN_DATA_DIR": str(tmp_path),
            "PORT": str(self.port),
            "WA_ACCESS_TOKEN": ACCESS_TOKEN,
            "WA_APP_SECRET": APP_SECRET,
            "WA_VERIFY_TOKEN": VERIFY_TOKEN,
            "WA_PHONE_ID": PHONE_ID,
            "WA_API_BASE": fake.base_url,
            "PII_ENCRYPTION_KEY": base64.urlsafe_b64encode(self.pii_key).decode(),
            "REDIS_URL": REDIS_URL,
            "QUEUE_PREFIX": prefix,
            "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
            "OUTBOX_RESEND_GRACE_SECONDS": str(GRACE_SECONDS),
            "OUTBOX_POLL_SECONDS": "0.1",
            "BROADCAST_RATE_LIMIT": "20",
            "BROADCAST_NUMBER_CAP": "30",
            "LOG_LEVEL": "INFO",
        }
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self._files: list[IO[bytes]] = []
        self.http: httpx.AsyncClient | None = None
        self._clients: list[httpx.AsyncClient] = []

    def _log(self, name: str) -> IO[bytes]:
        f = (self.tmp_path / f"{name}.log").open("ab")
        self._files.append(f)
        return f

    async def run(self, *argv: str) -> None:
        """A one-shot command (``db upgrade``, ``demo``, ``scheduler --once``)."""
        log = self._log("cli")
        proc = await asyncio.create_subprocess_exec(
            JASTIPIN, *argv, env=self.env, stdout=log, stderr=log
        )
        try:
            code = await asyncio.wait_for(proc.wait(), timeout=120)
        except TimeoutError:
            proc.kill()
            raise
        assert code == 0, f"jastipin {' '.join(argv)} exited {code}:\n{self.log_text('cli')}"

    async def start(
        self, name: str, *argv: str, env: dict[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        log = self._log(name)
        proc = await asyncio.create_subprocess_exec(
            JASTIPIN, *argv, env={**self.env, **(env or {})}, stdout=log, stderr=log
        )
        self.procs[name] = proc
        return proc

    async def serve(self, name: str = "serve", port: int | None = None) -> httpx.AsyncClient:
        """``jastipin serve`` (another API instance: a ``name`` and a ``port`` of its
        own), healthy; its client (the first one's is also ``self.http``)."""
        port = port or self.port
        proc = await self.start(name, "serve", env={"PORT": str(port)})
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15)
        self._clients.append(http)
        if port == self.port:
            self.http = http
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_SECONDS
        while loop.time() < deadline and proc.returncode is None:
            try:
                if (await http.get("/health")).status_code == 200:
                    return http
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"{name} not healthy after {START_SECONDS} s (exit code {proc.returncode}):\n"
            f"{self.log_text(name)}"
        )

    async def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs, in-flight sends and transactions are cut off."""
        proc = self.procs.pop(name)
        os.kill(proc.pid, signal.SIGKILL)
        assert await exited(proc, name) == -signal.SIGKILL

    async def post(self, body: dict[str, Any], *, to: httpx.AsyncClient | None = None) -> None:
        """A signed webhook, as Meta posts it (``to``: another API instance's client)."""
        http = to or self.http
        assert http is not None
        raw = simulate.encode(body)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": simulate.sign(raw, APP_SECRET),
        }
        resp = await http.post("/api/webhooks/whatsapp", content=raw, headers=headers)
        # as Meta does: a 503 (a lock wait ran out on a busy machine) is posted again
        for _ in range(META_RETRIES):
            if resp.status_code != 503:
                break
            await asyncio.sleep(META_RETRY_PAUSE)
            resp = await http.post("/api/webhooks/whatsapp", content=raw, headers=headers)
        assert resp.status_code == 200, resp.text

    async def close(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.terminate()
        for name, proc in self.procs.items():
            try:
                await asyncio.wait_for(proc.wait(), timeout=20)
            except TimeoutError:
                proc.kill()
                await exited(proc, name)
        self.procs.clear()
        for http in self._clients:
            await http.aclose()
        for f in self._files:
            f.close()

    def log_text(self, name: str | None = None) -> str:
        paths = [self.tmp_path / f"{name}.log"] if name else sorted(self.tmp_path.glob("*.log"))
        return "\n".join(p.read_text(errors="replace") for p in paths if p.exists())


async def exited(proc: asyncio.subprocess.Process, name: str) -> int:
    """The exit code of a process sent SIGKILL (or one that is exiting), waited for with
    a deadline: a test never waits for ever on a child."""
    try:
        return await asyncio.wait_for(proc.wait(), timeout=EXIT_SECONDS)
    except TimeoutError:
        raise AssertionError(
            f"{name} (pid {proc.pid}) still running {EXIT_SECONDS} s on"
        ) from None


# How often a test looks again. The fake Graph API the workers send to runs on the test's
# event loop: a check every 20 ms (a count over every message sent) took most of what a
# loaded machine left the test process, the fake answered the sends late, the workers'
# requests timed out (outcome unknown, backing off, sent again after the grace) and the
# broadcast crawled while the test waited.
POLL_SECONDS = 0.25


async def until(check: Callable[[], bool], within: float, what: Callable[[], str]) -> None:
    """Poll ``check`` until it holds, failing with ``what()`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(what())
        await asyncio.sleep(POLL_SECONDS)


def received(fake: FakeGraphAPI, text: str) -> Counter[str]:
    """How many messages containing ``text`` each number got."""
    return Counter(m["to"] for m in fake.sent if text in (message_text(m) or ""))


def choices(message: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(title, id, is a list row) of the buttons or list rows in a message."""
    inter = message.get("interactive") or {}
    action = inter.get("action") or {}
    if inter.get("type") == "button":
        return [(b["reply"]["title"], b["reply"]["id"], False) for b in action["buttons"]]
    if inter.get("type") == "list":
        return [(r["title"], r["id"], True) for s in action["sections"] for r in s["rows"]]
    return []


def shows(message: dict[str, Any], expect: str) -> bool:
    return expect in (message_text(message) or "") or any(
        expect == title for title, _id, _row in choices(message)
    )


async def answered(s: Stack, number: str, since: int, expect: str) -> None:
    """Wait until a message to ``number`` after the first ``since`` shows ``expect``."""
    await until(
        lambda: any(shows(m, expect) for m in s.fake.sent_to(number)[since:]),
        within=20,
        what=lambda: f"no {expect!r} in {s.fake.texts_to(number)[since:]}",
    )


async def say(s: Stack, number: str, text: str, *, name: str, expect: str) -> None:
    since = len(s.fake.sent_to(number))
    await s.post(simulate.text(number, text, name=name))
    await answered(s, number, since, expect)


async def tap(s: Stack, number: str, title: str, *, name: str, expect: str) -> None:
    """Tap the button (or list row) titled ``title`` in the latest message offering it."""
    offered = [c for m in s.fake.sent_to(number) for c in choices(m) if c[0] == title]
    assert offered, f"{title!r} was never offered to the buyer"
    _title, payload_id, as_list = offered[-1]
    since = len(s.fake.sent_to(number))
    await s.post(simulate.tap(number, payload_id, title, as_list=as_list, name=name))
    await answered(s, number, since, expect)


async def join(s: Stack, number: str, name: str) -> None:
    """JOIN DEMO, take the WhatsApp profile name, consent to trip updates."""
    await say(s, number, "JOIN DEMO", name=name, expect=f"Pakai {name}")
    await tap(s, number, f"Pakai {name}", name=name, expect="Ya, kabari aku")
    await tap(s, number, "Ya, kabari aku", name=name, expect="Kamu sudah terdaftar")


@pytest.fixture
async def stack(
    pg_url: str, tmp_path: Path, fake_graph: FakeGraphAPI, redis_client: Any
) -> AsyncIterator[Stack]:
    client = redis_client
    await _truncate(pg_url)
    prefix = f"jp-e2e-{secrets.token_hex(4)}"
    s = Stack(tmp_path, fake_graph, pg_url, prefix)
    try:
        yield s
    finally:
        await s.close()
        # the Dramatiq namespace is "<prefix>-dramatiq", the pace keys "<prefix>:pace:*"
        async with asyncio.timeout(QUERY_SECONDS):
            async for key in client.scan_iter(match=f"{prefix}*"):
                await client.delete(key)


async def _open_rows(db: Database) -> int:
    """Outbox rows still pending or sending."""
    async with asyncio.timeout(QUERY_SECONDS), db.read() as session:
        return int(
            (
                await session.execute(
                    select(func.count(OutboxMessage.id)).where(
                        OutboxMessage.status.in_(("pending", "sending"))
                    )
                )
            ).scalar_one()
        )


async def until_drained(db: Database, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (left := await _open_rows(db)) > 0:
        if loop.time() > deadline:
            raise AssertionError(f"{left} outbox row(s) still pending or sending")
        await asyncio.sleep(POLL_SECONDS)


async def jastipers_broadcast(db: Database) -> tuple[str, dict[str, int]]:
    """The status of the jastiper's broadcast (not an automatic notice) and how many of
    its deliveries are in each status."""
    async with asyncio.timeout(QUERY_SECONDS), db.read() as session:
        broadcast_id, status = (
            await session.execute(
                select(Broadcast.id, Broadcast.status).where(Broadcast.kind == "manual")
            )
        ).one()
        rows = await session.execute(
            select(BroadcastDelivery.status, func.count())
            .where(BroadcastDelivery.broadcast_id == broadcast_id)
            .group_by(BroadcastDelivery.status)
        )
        return status, {status: n for status, n in rows.all()}


async def seed_participants(s: Stack, count: int, text: str) -> list[str]:
    """``count`` consenting participants of the demo trip inside their 24-hour window,
    and a confirmed broadcast to them."""
    cipher = open_cipher(s.pii_key)
    numbers = [phone() for _ in range(count)]
    db = Database(s.db_url)
    try:
        async with db.transaction() as session:
            trip_id, tina_id = (
                await session.execute(
                    select(Trip.id, Jastiper.user_id)
                    .join(Jastiper, Jastiper.id == Trip.jastiper_id)
                    .where(Trip.code == DEMO_CODE)
                )
            ).one()
            # the automatic summary depends on the day and hour: not part of this test
            await session.execute(
                update(Trip).where(Trip.id == trip_id).values(summary_every="off")
            )
            now = utcnow()
            users = [
                User(
                    phone_hash=cipher.lookup_hash(n),
                    phone_enc=cipher.encrypt(normalise_phone(n)),
                    profile_name=f"P{i}",
                    display_name=f"P{i}",
                    last_inbound_at=now,
                )
                for i, n in enumerate(numbers)
            ]
            session.add_all(users)
            await session.flush()
            session.add_all(
                Participant(trip_id=trip_id, user_id=u.id, consent_at=now, last_active_at=now)
                for u in users
            )
            session.add(
                Broadcast(
                    trip_id=trip_id,
                    created_by=tina_id,
                    text=text,
                    status="queued",
                    segment="all",
                    estimated_recipients=count,
                    estimated_free=count,
                )
            )
    finally:
        await db.dispose()
    return numbers

"""A unit that kills the process handling it is parked after five attempts, never
replayed forever, and costs no other unit.

The real `jastipin serve` is restarted in a loop, as systemd or Docker would restart it;
the poison is a text holding the test-only crash marker (JASTIPIN_TEST_CRASH_MARKER,
honoured only with APP_ENV=test), which ends the process with os._exit as a decoder
crash or the OOM killer would: no exception handler, no rollback code runs."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot import simulate
from storage.db import Database
from storage.models import InboundStatus, InboundUpdate
from storage.repo.inbox import MAX_ATTEMPTS
from tests.conftest import APP_SECRET, phone
from tests.fakes.graph_api import FakeGraphAPI
from tests.stack import JASTIPIN, Stack

# a real serve is started six times (five crashes, then the parking): its start-up is
# many seconds on a loaded machine, every wait bounded inside
pytestmark = pytest.mark.timeout(900)

MARKER = "POISON-7f3a"
CRASH_EXIT = 70  # what the marker's os._exit returns


async def _units(url: str) -> list[tuple[str, int, str | None]]:
    """(status, attempts, last_error) of every stored message unit, oldest first."""
    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(InboundUpdate.status, InboundUpdate.attempts, InboundUpdate.last_error)
                .where(InboundUpdate.kind == "message")
                .order_by(InboundUpdate.id)
            )
            return [(s, n, e) for s, n, e in rows.all()]
    finally:
        await db.dispose()


async def _post_once(port: int, body: dict[str, object]) -> None:
    """A signed webhook; the process may die before it answers (Meta would retry)."""
    raw = simulate.encode(body)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
        with contextlib.suppress(httpx.TransportError):
            await client.post(
                "/api/webhooks/whatsapp",
                content=raw,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": simulate.sign(raw, APP_SECRET),
                },
            )


async def test_a_unit_that_kills_its_process_is_parked_after_five_attempts(
    database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> None:
    s = Stack(tmp_path, fake_graph, database_url, "jp-poison")
    for name in ("REDIS_URL", "QUEUE_PREFIX"):
        s.env.pop(name)
    s.env.update(
        {"APP_ENV": "test", "JASTIPIN_TEST_CRASH_MARKER": MARKER, "INBOX_SWEEP_SECONDS": "0.2"}
    )
    innocent = phone()
    try:
        await s.run("db", "upgrade")
        await s.run("demo")
        # Given one webhook body carrying a poison message and another user's JOIN
        await s.serve()
        body = simulate.text(phone(), f"halo {MARKER}")
        join = simulate.text(innocent, "JOIN DEMO", name="Sari")
        both = copy.deepcopy(body)
        value = both["entry"][0]["changes"][0]["value"]
        value["messages"] += join["entry"][0]["changes"][0]["value"]["messages"]
        value["contacts"] += join["entry"][0]["changes"][0]["value"]["contacts"]
        await _post_once(s.port, both)

        # When the process dies on it and is started again, each time it dies
        exits: list[int] = []
        async with asyncio.timeout(240):
            while True:
                proc = s.procs["serve"]
                while proc.returncode is None:
                    units = await _units(database_url)
                    if any(status == InboundStatus.FAILED.value for status, _, _ in units):
                        break
                    await asyncio.sleep(0.1)
                if proc.returncode is None:
                    break  # parked: this process lives on
                exits.append(await proc.wait())
                s.procs.pop("serve")
                await s.start("serve", "serve")

        # Then it was tried five times, each attempt counted though none returned,
        # and then parked as failed instead of killing the next process too
        assert exits == [CRASH_EXIT] * MAX_ATTEMPTS
        # the other user's message, in the same body, is answered once, never parked
        await fake_graph.wait_for(1, timeout=30, to=innocent)
        welcomes = [t for t in fake_graph.texts_to(innocent) if "Jastip Tokyo Demo" in t]
        assert len(welcomes) == 1
        poison, joined = await _units(database_url)
        assert poison[:2] == (InboundStatus.FAILED.value, MAX_ATTEMPTS)
        assert "none finished" in (poison[2] or "")
        assert joined[0] == InboundStatus.DONE.value
        assert s.http is not None and (await s.http.get("/health")).status_code == 200
        # and the operator sees it among the dead
        dead = await asyncio.to_thread(
            subprocess.run,
            [JASTIPIN, "queue", "dead"],
            env=s.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert dead.returncode == 0, dead.stderr
        assert f"message  attempts={MAX_ATTEMPTS}" in dead.stdout
        assert "1 parked inbound unit(s)" in dead.stdout
        assert MARKER not in dead.stdout  # the message itself is never shown
    finally:
        await s.close()

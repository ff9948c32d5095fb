"""A database outage does not flood the logs or the error tracker: the worker's sender,
its lanes failing on every pass against a Postgres that cannot be reached, backs off
exponentially, writes one line per failure kind per interval (with a count), and sends
one error report per fingerprint per minute.

What is counted is what the code decided (connection attempts, lines, events), never
how fast a loaded machine ran it: the backoff only makes the counts smaller.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
import sentry_sdk

from bot.logs import RepeatFilter, setup_logging
from bot.outbox import OutboxDispatcher
from bot.reports import init_sentry
from bot.transport import SandboxTransport
from storage.crypto import PiiCipher
from storage.db import Database
from tests.reliability.sentry import LOCAL_DSN, LocalTransport

# nothing listens on port 9 of loopback: every connection is refused at once
UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:9/jastipin"
OUTAGE_SECONDS = 3.0
LANES = 4
POLL = 0.05


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The process's JSON log lines, as ``jastipin worker`` writes them."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    setup_logging("worker", "INFO", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def sentry() -> Iterator[LocalTransport]:
    transport = LocalTransport()
    init_sentry(LOCAL_DSN, transport=transport)
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


async def test_an_outage_writes_a_few_lines_and_a_few_events(
    captured_logs: io.StringIO, sentry: LocalTransport
) -> None:
    # Given a worker's sender whose database cannot be reached
    db = Database(UNREACHABLE)
    attempts = 0

    def count() -> None:
        nonlocal attempts
        attempts += 1

    db.on_connection_error(count)
    outbox = OutboxDispatcher(
        db, SandboxTransport(), PiiCipher(b"k" * 32), lanes=LANES, poll_seconds=POLL
    )
    # When it runs through a few seconds of outage
    running = asyncio.create_task(outbox.run())
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.wait_for(outbox.shutdown(running, within=5), timeout=10)
    await db.dispose()
    sentry_sdk.flush(timeout=5)

    # Then each lane tried again after 2×, 4×, … the poll interval, not every poll
    at_poll_pace = LANES * OUTAGE_SECONDS / POLL  # 240
    assert 0 < attempts <= LANES * 8, attempts  # log2(3 s / 0.05 s) + 1 tries a lane
    assert attempts < at_poll_pace / 5
    # one line for the failure (its repeats held back and counted), not one a pass
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    failed = [line for line in lines if line["msg"] == "outbox dispatcher pass failed"]
    assert len(failed) == 1 and failed[0]["level"] == "error" and "exc" in failed[0]
    assert len(captured_logs.getvalue()) < 20_000  # kilobytes
    # one error report for it, not one a pass
    events = [e for e in sentry.events() if e.get("logentry", {}).get("message")]
    assert [e["logentry"]["message"] for e in events] == ["outbox dispatcher pass failed"]


def test_a_repeating_line_is_written_once_per_interval_with_its_count() -> None:
    clock = [0.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatFilter(every=30, clock=lambda: clock[0]))
    handler.setFormatter(logging.Formatter("%(message)s %(repeated)s", defaults={"repeated": 0}))
    log = logging.getLogger("tests.flood.lines")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        for _ in range(10 * 60 * 4):  # ten minutes at 4 failures a second
            log.error("sender pass failed")
            log.info("heartbeat")  # infos are never held back
            clock[0] += 1 / 4
        log.error("sender pass failed")
    finally:
        log.removeHandler(handler)
    errors = [line for line in stream.getvalue().splitlines() if line.startswith("sender")]
    assert len(errors) == 21  # the first, then one per 30 s
    assert errors[0] == "sender pass failed 0"
    # every failure is accounted for: written, or counted on the next line written
    assert sum(int(line.split()[-1]) + 1 for line in errors) == 10 * 60 * 4 + 1
    assert stream.getvalue().count("heartbeat") == 10 * 60 * 4

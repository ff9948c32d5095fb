"""``jastipin worker`` and ``jastipin scheduler`` observed: each, started as an operator
starts it, answers ``GET /metrics`` on its ``METRICS_PORT`` (bearer token when
``METRICS_TOKEN`` is set), and its ``jastipin_`` and ``dramatiq_`` metrics move as it
works — on Postgres and Redis."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import simulate
from bot.broker import build_broker
from bot.settings import Settings
from bot.tasks import build_actors
from storage.demo import DEMO_PHONE
from tests.conftest import phone
from tests.fakes.graph_api import message_text
from tests.stack import Stack
from tests.stack import free_port as _free_port
from tests.stack import stack as stack

TOKEN = "metrics-test-token"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` that carry ``labels`` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


class Scraper:
    def __init__(self, port: int, log: Callable[[], str]) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.log = log

    async def get(self, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(300):
                try:
                    return await client.get(self.url, headers=headers)
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        raise AssertionError(f"nothing answers {self.url}:\n{self.log()}")

    async def samples(self) -> Samples:
        resp = await self.get()
        assert resp.status_code == 200, resp.text
        return _parse(resp.text)

    async def until(self, check: Callable[[Samples], bool], what: str) -> Samples:
        """Scrape until ``check`` holds; fail (with the process's log) after a while."""
        for _ in range(300):
            samples = await self.samples()
            if check(samples):
                return samples
            await asyncio.sleep(0.1)
        raise AssertionError(f"{what}; last scrape of {self.url}:\n{self.log()}")


@pytest.fixture
async def observed_stack(stack: Stack) -> AsyncIterator[Stack]:
    stack.env.update(METRICS_TOKEN=TOKEN, METRICS_REFRESH_SECONDS="0.2", OUTBOX_INLINE="0")
    await stack.run("db", "upgrade")
    await stack.run("demo")
    yield stack


async def _start(s: Stack, name: str) -> Scraper:
    """``jastipin <name>`` on a port of its own (two of them on one host need two)."""
    port = _free_port()
    saved, s.env = s.env, dict(s.env, METRICS_PORT=str(port))
    try:
        await s.start(name, name)
    finally:
        s.env = saved
    return Scraper(port, lambda: s.log_text(name))


async def test_worker_and_scheduler_serve_metrics_that_move_as_they_work(
    observed_stack: Stack,
) -> None:
    """A buyer's JOIN is stored by the api and waits in the outbox: the scheduler's
    metrics show it pending and ageing, a queued broadcast job waiting in Redis, and
    its own jobs' runs. Then a worker starts: it sends the reply and runs the job, and
    its counters say so while the scheduler's gauges go back to zero."""
    s = observed_stack
    await s.serve()
    scheduler = await _start(s, "scheduler")

    # the metrics are the operator's: no token, no metrics
    refused = await scheduler.get(token=None)
    assert refused.status_code == 401
    assert (await scheduler.get(token="wrong")).status_code == 401

    jobs = ("expire_orders", "dispatch_broadcasts", "outbox_recovery")
    # the whole first pass: a scrape may land between two of its jobs
    first = await scheduler.until(
        lambda m: all(
            _value(m, "jastipin_scheduler_job_runs_total", job=job, result="ok") > 0
            for job in jobs
        ),
        "the scheduler's first pass was never counted",
    )
    for job in jobs:
        assert _value(first, "jastipin_scheduler_job_runs_total", job=job, result="ok") >= 1, job
        assert _value(first, "jastipin_scheduler_job_seconds_count", job=job) >= 1, job
        assert _value(first, "jastipin_scheduler_job_last_success_timestamp_seconds", job=job)
    assert _value(first, "jastipin_scheduler_job_failures_total") == 0
    assert _value(first, "jastipin_outbox_pending") == 0

    # a buyer writes; the api stores the reply, and no worker runs to send it yet
    buyer = phone()
    await s.post(simulate.text(buyer, "JOIN DEMO", name="Ani"))
    # a broadcast job waits in Redis for a worker (an id no broadcast has: a no-op)
    settings = Settings.from_env(s.env)
    actors = build_actors(build_broker(settings), settings)
    actors.send_broadcast.send(987654321)
    waiting = await scheduler.until(
        lambda m: (
            _value(m, "jastipin_outbox_pending") >= 1
            and _value(m, "jastipin_outbox_oldest_pending_age_seconds") > 0
            and _value(m, "jastipin_queue_messages", queue="broadcasts", state="ready") == 1
        ),
        "the waiting reply and the queued job never showed in the scheduler's gauges",
    )
    assert _value(waiting, "jastipin_queue_messages", queue="broadcasts", state="dead") == 0
    assert not s.fake.sent_to(buyer), "sent without a worker"

    worker = await _start(s, "worker")
    sent = await worker.until(
        lambda m: (
            _value(m, "jastipin_wa_messages_sent_total") >= 1
            and _value(m, "dramatiq_messages_total", actor_name="send_broadcast") >= 1
        ),
        "the worker's sends and jobs were never counted",
    )
    texts = [message_text(m) or "" for m in s.fake.sent_to(buyer)]
    assert any("Selamat datang" in t for t in texts), f"counted a send nobody got: {texts}"
    assert _value(sent, "jastipin_wa_send_seconds_count") >= 1
    assert _value(sent, "dramatiq_message_errors_total") == 0
    assert _value(sent, "dramatiq_message_duration_milliseconds_count", queue_name="broadcasts")
    await worker.until(
        lambda m: _value(m, "jastipin_outbox_pending") == 0, "the worker's gauge never drained"
    )
    await scheduler.until(
        lambda m: (
            _value(m, "jastipin_outbox_pending") == 0
            and _value(m, "jastipin_outbox_oldest_pending_age_seconds") == 0
            and _value(m, "jastipin_queue_messages", queue="broadcasts", state="ready") == 0
        ),
        "the scheduler's gauges never went back to zero after the worker's work",
    )
    assert DEMO_PHONE not in s.log_text(), "a phone number reached the logs"


async def test_a_scheduler_that_cannot_reach_the_database_refuses_to_start_saying_why(
    observed_stack: Stack,
) -> None:
    """A process that cannot check its PII key against the database (issue #21: a wrong
    key would answer jastipers as strangers and create duplicate users) does not start:
    one sentence, exit 3, no traceback; its supervisor restarts it, and
    JastipinSchedulerDown pages while it cannot (a database outage *after* start is
    counted as database errors: tests/reliability/test_error_flood.py)."""
    s = observed_stack
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    s.env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{dead}/nowhere"
    await _start(s, "scheduler")
    proc = s.procs["scheduler"]
    code = await asyncio.wait_for(proc.wait(), timeout=90)
    log = s.log_text("scheduler")
    assert code == 3, log
    assert "refusing to start: the PII key cannot be checked, the database does not answer" in log
    assert "Traceback" not in log

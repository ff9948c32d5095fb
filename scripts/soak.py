"""Soak: a long mixed journey against one real ``jastipin serve``; does anything grow?

Buyers hop between the flows an update at a time (JOIN DEMO → their name → consent →
KATALOG → a product → PESANAN → MENU → CARI matcha → BANTUAN, round and round: nearly
every update changes the conversation's flow), the demo jastiper types commands
(``/help``, ``/products DEMO``, ``/trips``, ``/trip DEMO``, ``MENU``), asks for
``--broadcasts`` broadcasts to the buyers and confirms them in chat, and every
``--cli-every`` seconds ``jastipin queue status`` and ``jastipin scheduler --once`` run
beside the server, as an operator's would. Every user waits for the bot's answer (as it
reaches the fake Graph API of ``bench_rush.py``, in a process of its own) before its next
update. Not a test: it measures and prints.

    .venv/bin/python scripts/soak.py --updates 20000                  # a short run
    .venv/bin/python scripts/soak.py                                  # 100,000 updates
    .venv/bin/python scripts/soak.py --minutes 30 --postgres postgresql://postgres@127.0.0.1/test

Printed, for the first ``--window`` answered updates after a warm-up and for the last
``--window``: the resident memory (VmRSS) of ``serve``, its CPU time per update (what the
process spent, robust on a shared machine) and the reply latency (median, p95: wall clock,
which a busy machine stretches); then how the end compares with the start. A progress
line goes to stderr every ``--report`` seconds.

A fresh database each run (a SQLite file in a temporary directory, or a scratch Postgres
database created and dropped), ``jastipin db upgrade`` and ``jastipin demo``. The number's
cap is the upgraded tier (``BROADCAST_NUMBER_CAP=1000``) and the per-user rate limit is
off, so that neither paces the run; with ``--statuses`` the fake posts a signed ``sent``
status webhook back for every message, as Meta does.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchkit import (  # noqa: E402
    JASTIPIN,
    SECRET,
    Ports,
    Processes,
    cancel_on_sigterm,
    feed,
    proc_figures,
    rss_mb,
    run_cli,
    scratch,
    start_fake,
    until_up,
)

from bot import simulate  # noqa: E402
from storage.demo import DEMO_PHONE  # noqa: E402

STEP_TIMEOUT = 60.0  # seconds an update may wait for its answer before it counts as lost


@dataclasses.dataclass
class Chatter:
    """One number the soak writes from, and what the bot sent it (the last few)."""

    number: str
    name: str
    received: int = 0
    last: collections.deque[dict[str, Any]] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=4)
    )
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def deliver(self, message: dict[str, Any]) -> None:
        self.received += 1
        self.last.append(message)
        self.arrived.set()

    async def answer(self, before: int) -> dict[str, Any] | None:
        """The first message after the ``before``-th (None after STEP_TIMEOUT)."""
        deadline = time.monotonic() + STEP_TIMEOUT
        while self.received <= before:
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self.arrived.wait()
        return self.last[max(0, len(self.last) - (self.received - before))]

    def choice(self, title_prefix: str) -> tuple[str, str, bool] | None:
        """(id, title, is a list row) of the newest button or row whose title starts so."""
        for message in reversed(self.last):
            for cid, title, _desc, is_row in message.get("choices") or []:
                if title.startswith(title_prefix):
                    return cid, title, is_row
        return None


class Soak:
    def __init__(self, args: argparse.Namespace, http: aiohttp.ClientSession, url: str) -> None:
        self.args = args
        self.http = http
        self.url = url
        self.done = 0  # updates answered
        self.lost = 0  # updates not answered within STEP_TIMEOUT
        self.off_script = 0  # an expected button was missing: typed MENU instead
        self.latency: list[float] = []  # seconds, in the order the updates were answered
        self.cli_runs: collections.Counter[str] = collections.Counter()
        self.broadcasts_sent = 0
        self.stop = asyncio.Event()

    async def post(self, body: dict[str, Any]) -> None:
        raw = simulate.encode(body)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": simulate.sign(raw, SECRET),
        }
        for attempt in range(10):  # as Meta does: again while it is not acknowledged
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.http.post(self.url, data=raw, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 200:
                        return
            await asyncio.sleep(min(0.2 * 2**attempt, 5))
        raise RuntimeError("the webhook was not acknowledged ten times in a row")

    async def step(self, who: Chatter, body: dict[str, Any]) -> dict[str, Any] | None:
        """One update, and the bot's answer to it."""
        before = who.received
        t0 = time.monotonic()
        await self.post(body)
        answer = await who.answer(before)
        if answer is None:
            self.lost += 1
        else:
            self.latency.append(time.monotonic() - t0)
            self.done += 1
        if self.done >= self.args.updates:
            self.stop.set()
        return answer

    async def say(self, who: Chatter, text: str) -> dict[str, Any] | None:
        return await self.step(who, simulate.text(who.number, text, name=who.name))

    async def tap(self, who: Chatter, title_prefix: str) -> dict[str, Any] | None:
        found = who.choice(title_prefix)
        if found is None:
            self.off_script += 1
            return await self.say(who, "MENU")
        cid, title, is_row = found
        return await self.step(
            who, simulate.tap(who.number, cid, title, as_list=is_row, name=who.name)
        )

    async def buyer(self, who: Chatter, rng: random.Random) -> None:
        """Round and round the flows: join, shop, orders, menu."""
        while not self.stop.is_set():
            await self.say(who, "JOIN DEMO")
            await self.tap(who, "Pakai ")
            await self.tap(who, "Ya, kabari aku")
            await self.say(who, "KATALOG")
            await self.tap(who, rng.choice(("Tokyo Banana", "Kit Kat Matcha", "Calbee")))
            await self.say(who, "PESANAN")
            await self.say(who, "MENU")
            await self.say(who, "CARI matcha")
            await self.say(who, "BANTUAN")

    async def jastiper(self, who: Chatter) -> None:
        """Commands in the jastiper flow between menu words; the broadcasts on the way."""
        marks = [
            self.args.updates * (i + 1) // (self.args.broadcasts + 1)
            for i in range(self.args.broadcasts)
        ]
        while not self.stop.is_set():
            for text in ("/help", "/products DEMO", "MENU", "/trips", "/trip DEMO"):
                await self.say(who, text)
            if marks and self.done >= marks[0]:
                marks.pop(0)
                n = self.broadcasts_sent + 1
                await self.say(who, f"/broadcast DEMO Barang sudah sampai, cek pesananmu ({n})")
                if await self.tap(who, "Kirim"):
                    self.broadcasts_sent += 1

    async def operator(self, env: dict[str, str]) -> None:
        """``jastipin queue status`` and ``jastipin scheduler --once`` beside the server."""
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.args.cli_every)
            if self.stop.is_set():
                return
            for argv in (["queue", "status"], ["scheduler", "--once"]):
                try:
                    await run_cli(argv, env)
                    self.cli_runs[" ".join(argv)] += 1
                except RuntimeError as exc:
                    self.cli_runs[f"{' '.join(argv)} FAILED"] += 1
                    print(f"  {' '.join(argv)}: {str(exc)[:300]}", file=sys.stderr)


def _deliver(chatters: dict[str, Chatter]) -> Callable[[dict[str, Any]], None]:
    """Each message the fake accepted to its chatter."""

    def deliver(message: dict[str, Any]) -> None:
        chatter = chatters.get(message["to"].lstrip("+"))
        if chatter is not None:
            chatter.deliver(message)

    return deliver


@dataclasses.dataclass
class Sample:
    at: float  # monotonic
    done: int
    rss_mb: float
    cpu_s: float


def _window(samples: list[Sample], latency: list[float], first: int, last: int) -> dict[str, Any]:
    """Figures between the samples nearest to ``first`` and ``last`` answered updates."""
    a = min(samples, key=lambda s: abs(s.done - first))
    b = min(samples, key=lambda s: abs(s.done - last))
    updates = max(1, b.done - a.done)
    lat = sorted(latency[a.done : b.done]) or [0.0]
    return {
        "updates": f"{a.done:,}-{b.done:,}",
        "rss_mb": round(b.rss_mb, 1),
        "cpu_ms_per_update": round((b.cpu_s - a.cpu_s) * 1000 / updates, 2),
        "updates_per_s": round(updates / max(1e-9, b.at - a.at), 1),
        "latency_p50_ms": round(statistics.median(lat) * 1000, 1),
        "latency_p95_ms": round(lat[int(len(lat) * 0.95)] * 1000, 1),
    }


async def _measure(args: argparse.Namespace, workdir: Path, database: str) -> dict[str, Any]:
    procs = Processes(workdir)
    ports = Ports.free()
    env = ports.env(database, workdir)
    env.update(BROADCAST_NUMBER_CAP="1000", USER_RATE_LIMIT="0")
    rng = random.Random(args.seed)
    buyers = [
        Chatter(f"62857{i:08d}", f"{rng.choice(('Sari', 'Budi', 'Dewi', 'Eka'))} {i}")
        for i in range(args.buyers)
    ]
    tina = Chatter(DEMO_PHONE, "Tina")
    chatters = {c.number: c for c in [*buyers, tina]}
    samples: list[Sample] = []
    try:
        print("migrating and seeding the demo", file=sys.stderr)
        await run_cli(["db", "upgrade"], env)
        await run_cli(["demo"], env)
        await start_fake(procs, ports, statuses=args.statuses)
        serve = await procs.start("serve", [JASTIPIN, "serve"], env)
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=args.buyers + 8)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            for name, url in (
                ("fake", f"{ports.fake_base}/_fake/stats"),
                ("serve", f"http://127.0.0.1:{ports.serve}/health"),
            ):
                await until_up(http, procs, name, url, within=args.start_within)
            soak = Soak(args, http, ports.webhook)
            feeder = asyncio.create_task(feed(ports.feed_base, _deliver(chatters)))
            began = time.monotonic()
            tasks = [
                asyncio.create_task(soak.buyer(b, random.Random(i))) for i, b in enumerate(buyers)
            ]
            tasks += [
                asyncio.create_task(soak.jastiper(tina)),
                asyncio.create_task(soak.operator(env)),
            ]
            last_report = began
            try:
                while not soak.stop.is_set():
                    await asyncio.sleep(1.0)
                    _peak, cpu = proc_figures(serve)
                    now = time.monotonic()
                    samples.append(Sample(now, soak.done, rss_mb(serve) or 0.0, cpu or 0.0))
                    if not procs.alive("serve"):
                        raise RuntimeError(f"serve exited:\n{procs.tail('serve')}")
                    if args.minutes and now - began > args.minutes * 60:
                        soak.stop.set()
                    if now - last_report >= args.report:
                        last_report = now
                        recent = _window(
                            samples, soak.latency, max(0, soak.done - 2000), soak.done
                        )
                        print(
                            f"  {(now - began) / 60:5.1f} min  {soak.done:,} answered  "
                            f"{recent['updates_per_s']}/s  serve {recent['rss_mb']} MB  "
                            f"{recent['cpu_ms_per_update']} ms CPU/update  "
                            f"p50 {recent['latency_p50_ms']} ms  lost {soak.lost}",
                            file=sys.stderr,
                        )
            finally:
                soak.stop.set()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                feeder.cancel()
                await asyncio.gather(feeder, return_exceptions=True)
            elapsed = time.monotonic() - began
            peak, _cpu = proc_figures(serve)
    finally:
        await procs.stop()
    done = soak.done
    warm = min(args.warmup, done // 10)
    size = min(args.window, max(1, (done - warm) // 3))
    start = _window(samples, soak.latency, warm, warm + size)
    end = _window(samples, soak.latency, done - size, done)
    return {
        "database": database.split("://")[0],
        "answered_updates": done,
        "lost_updates": soak.lost,
        "off_script": soak.off_script,
        "minutes": round(elapsed / 60, 1),
        "buyers": args.buyers,
        "broadcasts_sent": soak.broadcasts_sent,
        "cli_runs": dict(soak.cli_runs),
        "start": start,
        "end": end,
        "rss_growth_pct": round(100 * (end["rss_mb"] / max(1e-9, start["rss_mb"]) - 1), 1),
        "cpu_per_update_growth_pct": round(
            100 * (end["cpu_ms_per_update"] / max(1e-9, start["cpu_ms_per_update"]) - 1), 1
        ),
        "serve_rss_peak_mb": round(peak or 0, 1),
        "serve_rss_mb_over_time": [
            (s.done, round(s.rss_mb)) for s in samples[:: max(1, len(samples) // 12)]
        ],
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    cancel_on_sigterm()
    async with scratch("jastipin-soak-", args.postgres) as (workdir, database):
        return await _measure(args, workdir, database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=100_000, help="answered updates")
    parser.add_argument("--minutes", type=float, default=0, help="stop after this long")
    parser.add_argument("--buyers", type=int, default=40, help="concurrent buyers")
    parser.add_argument("--broadcasts", type=int, default=2, help="spread over the run")
    parser.add_argument("--cli-every", type=float, default=60, help="seconds between CLI runs")
    parser.add_argument("--warmup", type=int, default=2000, help="updates left out first")
    parser.add_argument("--window", type=int, default=5000, help="updates per measured window")
    parser.add_argument("--report", type=float, default=30, help="seconds between progress")
    parser.add_argument("--statuses", action="store_true", help="status webhooks back")
    parser.add_argument("--start-within", type=float, default=300, help="seconds to start")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--postgres", metavar="URL", help="a Postgres server to use")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:28} {value}")


if __name__ == "__main__":
    main()

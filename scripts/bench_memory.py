"""Benchmark: the memory of ``jastipin serve`` with 100,000 stored buyers, before, during
and after a broadcast to all of them (issue #10: RSS ≤ 300 MB). Not a test: it
measures and prints.

    .venv/bin/python scripts/bench_memory.py                     # 100,000 buyers, SQLite
    .venv/bin/python scripts/bench_memory.py --buyers 20000 --rate 500
    .venv/bin/python scripts/bench_memory.py --postgres postgresql://postgres@127.0.0.1/test

A fresh database (a SQLite file, or a scratch Postgres database created and dropped),
``jastipin db upgrade`` and ``jastipin demo``, then ``--buyers`` consenting participants
of the demo trip inside their 24-hour window, written straight into the tables. Then the
embedded default as a real process — one ``jastipin serve``, Dramatiq's in-process
broker — against the fake Graph API of ``bench_rush.py`` (its own process, posting a
signed ``sent`` status webhook back for every message, as Meta does). The demo jastiper
asks for the broadcast in chat (``/broadcast DEMO …``) and taps *Kirim*
(``--broadcasts N``: N times, one after the other); the serving process estimates it,
fans it out on its worker thread and sends it at ``BROADCAST_RATE_LIMIT`` (``--rate``).
Resident memory (VmRSS) of ``serve`` is sampled every second; printed: at rest with the
buyers stored, the peak, when the last message left, and after the status webhooks
settled (after each broadcast: ``rounds``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_rush import _db  # noqa: E402
from benchkit import (  # noqa: E402
    JASTIPIN,
    SECRET,
    Ports,
    Processes,
    cancel_on_sigterm,
    proc_figures,
    rss_mb,
    run_cli,
    scratch,
    start_fake,
    until_up,
)

from bot import simulate  # noqa: E402
from bot.settings import Settings  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.demo import DEMO_PHONE  # noqa: E402
from storage.models import Participant, Trip, User, utcnow  # noqa: E402
from storage.sealed import open_cipher  # noqa: E402

TEXT = "Halo semua! Barang sudah sampai di Jakarta, cek pesanan kamu ya."


async def _seed(env: dict[str, str], buyers: int, chunk: int = 5000) -> None:
    """``buyers`` consenting participants of the demo trip, inside their window."""
    settings = Settings.from_env(env)
    cipher = open_cipher(settings.pii_key)
    db = Database(settings.database_url)
    try:
        now = utcnow()
        async with db.read() as session:
            trip = (await session.execute(Trip.__table__.select())).first()
        assert trip is not None, "the demo trip is missing"
        for start in range(0, buyers, chunk):
            numbers = [f"62878{i:08d}" for i in range(start, min(buyers, start + chunk))]
            async with db.transaction() as session:
                await session.execute(
                    User.__table__.insert(),
                    [
                        {
                            "phone_hash": cipher.lookup_hash(n),
                            "phone_enc": cipher.encrypt(n),
                            "display_name": f"Pembeli {n[-5:]}",
                            "locale": "id",
                            "last_inbound_at": now,
                            "is_admin": False,
                            "created_at": now,
                        }
                        for n in numbers
                    ],
                )
                hashes = [cipher.lookup_hash(n) for n in numbers]
                ids = (
                    await session.execute(
                        User.__table__.select()
                        .with_only_columns(User.__table__.c.id)
                        .where(User.__table__.c.phone_hash.in_(hashes))
                    )
                ).scalars()
                await session.execute(
                    Participant.__table__.insert(),
                    [
                        {"trip_id": trip.id, "user_id": uid, "consent_at": now, "created_at": now}
                        for uid in ids
                    ],
                )
    finally:
        await db.dispose()


class Feed:
    """What the fake Graph API accepted, read from its long-poll feed."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base
        self.messages: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}

    async def poll(self) -> None:
        async with self.session.get(f"{self.base}/feed?after={len(self.messages)}") as resp:
            body = await resp.json()
        self.messages += body.pop("messages")
        self.info = body

    async def wait_for(
        self, to: str, needle: str, *, after: int = 0, limit: float = 60
    ) -> dict[str, Any]:
        """The first message to ``to`` containing ``needle`` from the ``after``-th on."""
        deadline = time.monotonic() + limit
        seen = after
        while time.monotonic() < deadline:
            for message in self.messages[seen:]:
                if message.get("to") == to and needle in json.dumps(message):
                    return message
            seen = len(self.messages)
            await self.poll()
        raise RuntimeError(f"no message to {to} with {needle!r} within {limit:g} s")


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    raw = simulate.encode(body)
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": simulate.sign(raw, SECRET),
    }
    async with session.post(url, data=raw, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"webhook answered {resp.status}: {await resp.text()}")


async def _broadcast(
    args: argparse.Namespace,
    http: aiohttp.ClientSession,
    feed: Feed,
    webhook: str,
    serve: int,
    n: int,
    samples: list[float],
) -> dict[str, Any]:
    """The ``n``-th broadcast to every buyer, asked for and confirmed in chat; returns
    its figures once every message left and its status webhooks were taken."""
    t_estimate = time.monotonic()
    text = f"{TEXT} ({n})"
    before = len(feed.messages)
    await _post(http, webhook, simulate.text(DEMO_PHONE, f"/broadcast DEMO {text}"))
    ask = await feed.wait_for(DEMO_PHONE, "Kirim", after=before, limit=120)
    estimate_s = time.monotonic() - t_estimate
    button = next(c[0] for c in ask["choices"] if c[1] == "Kirim")
    t_send = time.monotonic()
    await _post(http, webhook, simulate.tap(DEMO_PHONE, button, "Kirim"))
    target = args.buyers * n
    delivered = sent_at = None
    while time.monotonic() - t_send < args.timeout:
        await asyncio.sleep(1)
        rss = rss_mb(serve)
        if rss is not None:
            samples.append(rss)
        await feed.poll()
        to_buyers = sum(1 for m in feed.messages if str(m.get("to", "")).startswith("62878"))
        if sent_at is None and to_buyers >= target:
            sent_at = time.monotonic()
            delivered = rss_mb(serve)
        if sent_at is not None and not feed.info.get("statuses_queued"):
            break
        if int(time.monotonic() - t_send) % 10 == 0:
            print(f"  broadcast {n}: {to_buyers:,} sent, serve {rss:.0f} MB", file=sys.stderr)
    await asyncio.sleep(5)
    return {
        "estimate_s": round(estimate_s, 2),
        "send_s": round((sent_at or time.monotonic()) - t_send, 1),
        "rss_when_sent_mb": round(delivered or 0, 1),
        "rss_settled_mb": round(rss_mb(serve) or 0, 1),
    }


async def _measure(args: argparse.Namespace, workdir: Path, database: str) -> dict[str, Any]:
    procs = Processes(workdir)
    ports = Ports.free()
    env = ports.env(database, workdir)
    env["BROADCAST_RATE_LIMIT"] = str(args.rate)
    try:
        print(f"migrating, seeding the demo and {args.buyers:,} buyers", file=sys.stderr)
        await run_cli(["db", "upgrade"], env)
        await run_cli(["demo"], env)
        t0 = time.monotonic()
        await _seed(env, args.buyers)
        seeded_in = time.monotonic() - t0
        await start_fake(procs, ports, status_posters=32)
        serve = await procs.start("serve", [JASTIPIN, "serve"], env)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            await until_up(http, procs, "fake", f"{ports.fake_base}/_fake/stats")
            await until_up(http, procs, "serve", f"http://127.0.0.1:{ports.serve}/health")
            await asyncio.sleep(2)
            at_rest = rss_mb(serve)
            feed = Feed(http, ports.feed_base)
            webhook = ports.webhook
            print(f"serve at rest: {at_rest:.0f} MB; /broadcast DEMO", file=sys.stderr)
            samples: list[float] = []
            rounds: list[dict[str, Any]] = []
            for n in range(1, args.broadcasts + 1):
                rounds.append(await _broadcast(args, http, feed, webhook, serve, n, samples))
            peak, cpu = proc_figures(serve)
        done = await _db(
            database,
            "SELECT status, estimated_recipients FROM broadcasts ORDER BY id",
        )
    finally:
        await procs.stop()
    last = rounds[-1]
    return {
        "database": database.split("://")[0],
        "buyers": args.buyers,
        "seeded_s": round(seeded_in, 1),
        "estimate_s": last["estimate_s"],
        "rss_at_rest_mb": round(at_rest or 0, 1),
        "rss_peak_mb": round(peak or 0, 1),
        "rss_when_sent_mb": last["rss_when_sent_mb"],
        "rss_settled_mb": last["rss_settled_mb"],
        "send_s": last["send_s"],
        "sent_to_buyers": sum(
            1 for m in feed.messages if str(m.get("to", "")).startswith("62878")
        ),
        "statuses_posted": feed.info.get("statuses"),
        "broadcasts": [tuple(r) for r in done],
        "rounds (settled MB)": [r["rss_settled_mb"] for r in rounds],
        "serve_cpu_s": cpu,
        "serve_samples_mb": [round(s) for s in samples[:: max(1, len(samples) // 20)]],
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    cancel_on_sigterm()
    async with scratch("jastipin-memory-", args.postgres) as (workdir, database):
        return await _measure(args, workdir, database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000, help="BROADCAST_RATE_LIMIT")
    parser.add_argument("--broadcasts", type=int, default=1, help="one after another")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per broadcast")
    parser.add_argument("--postgres", metavar="URL", help="a Postgres server to use")
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    for key, value in result.items():
        print(f"{key:20} {value}")


if __name__ == "__main__":
    main()

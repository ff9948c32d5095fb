"""Benchmark: a broadcast to N recipients against a fake Graph API with latency.

Prints the achieved messages/s over the configured cap (the goal is ≥ 0.95), the
busiest one-second window (it must never exceed the cap), and how long the fan-out
took. Not a test: it measures and prints.

    .venv/bin/python scripts/bench_broadcast.py --recipients 10000 --cap 80 --cap 1000
    .venv/bin/python scripts/bench_broadcast.py --postgres postgresql://postgres@127.0.0.1/test \\
        --redis redis://127.0.0.1:6379/0 --workers 2

Each run: a fresh database (SQLite file, or a scratch Postgres database), the demo trip
with N consenting participants inside their 24-hour window, one confirmed broadcast,
fanned out by the Dramatiq actor's function, then sent by ``--workers`` outbox
dispatchers (the worker's sending loop) in this process, paced by BROADCAST_RATE_LIMIT
= cap / workers and, with ``--redis``, the shared per-number cap.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchkit import free_port, fresh_database  # noqa: E402

from bot.jobs import fan_out  # noqa: E402
from bot.runtime import build_runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.demo import seed_demo  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Broadcast, Participant, Trip, User, utcnow  # noqa: E402
from storage.sealed import open_cipher  # noqa: E402

TEXT = "Benchmark broadcast"


async def _start_fake(latency: float) -> tuple[asyncio.subprocess.Process, str]:
    """The fake Graph API in a process of its own, so that its CPU is not ours."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.graph_api",
        "--port",
        str(port),
        "--latency",
        str(latency),
        "--token",
        "bench-token",
        cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            try:
                await client.get(f"{base}/_fake/stats")
                return proc, base
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the fake Graph API did not start")


async def _wait_sent(base: str, count: int, limit: float) -> list[float]:
    """When each accepted message arrived (epoch seconds), once ``count`` did."""
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(timeout=60) as client:
        while time.monotonic() < deadline:
            stats = (await client.get(f"{base}/_fake/stats")).json()
            if stats["sent"] >= count:
                break
            await asyncio.sleep(0.2)
        sent = (await client.get(f"{base}/_fake/sent")).json()
    return [float(m["at"]) for m in sent]


async def _seed(settings: Settings, recipients: int) -> int:
    cipher = open_cipher(settings.pii_key)
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            await seed_demo(session, cipher)
        now = utcnow()
        async with db.transaction() as session:
            trip = (await session.execute(Trip.__table__.select())).first()
            assert trip is not None
            users = []
            for i in range(recipients):
                number = f"62877{i:08d}"
                users.append(
                    {
                        "phone_hash": cipher.lookup_hash(number),
                        "phone_enc": cipher.encrypt(number),
                        "display_name": f"Bench {i}",
                        "locale": "id",
                        "last_inbound_at": now,
                        "is_admin": False,
                        "created_at": now,
                    }
                )
            await session.execute(User.__table__.insert(), users)
            ids = (
                await session.execute(User.__table__.select().where(User.created_at == now))
            ).all()
            await session.execute(
                Participant.__table__.insert(),
                [
                    {"trip_id": trip.id, "user_id": row.id, "consent_at": now, "created_at": now}
                    for row in ids
                ],
            )
            row = Broadcast(trip_id=trip.id, text=TEXT, status="queued", segment="all")
            session.add(row)
            await session.flush()
            return int(row.id)
    finally:
        await db.dispose()


async def _worker(settings: Settings, workdir: Path, index: int) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "JASTIPIN_DATA_DIR": str(workdir),
        "WA_ACCESS_TOKEN": "bench-token",
        "WA_APP_SECRET": "bench",
        "WA_VERIFY_TOKEN": "bench",
        "WA_PHONE_ID": settings.wa_phone_id or "",
        "WA_API_BASE": settings.wa_api_base,
        "PII_ENCRYPTION_KEY": base64.urlsafe_b64encode(settings.pii_key).decode(),
        "QUEUE_PREFIX": settings.queue_prefix,
        "BROADCAST_RATE_LIMIT": str(settings.broadcast_rate_limit),
        "BROADCAST_NUMBER_CAP": str(settings.broadcast_number_cap),
        "OUTBOX_POLL_SECONDS": str(settings.outbox_poll_seconds),
        "OUTBOX_BATCH": str(settings.outbox_batch),
        "OUTBOX_LANES": str(settings.outbox_lanes),
        "LOG_LEVEL": "WARNING",
    }
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    log = (workdir / f"worker{index}.log").open("w")
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "jastipin"), "worker", env=env, stdout=log, stderr=log
    )


async def _one(args: argparse.Namespace, cap: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="jastipin-bench-bc-"))
    async with fresh_database(workdir, args.postgres) as database:
        await _one_on(args, cap, workdir, database)


async def _one_on(args: argparse.Namespace, cap: int, workdir: Path, database: str) -> None:
    prefix = f"bench-{secrets.token_hex(3)}"
    fake, fake_base = await _start_fake(args.latency)
    runtimes = []
    try:
        settings = Settings(
            database_url=database,
            data_dir=workdir,
            media_dir=workdir / "media",
            wa_access_token="bench-token",
            wa_phone_id="1122334455667",
            wa_app_secret="bench",
            wa_verify_token="bench",
            wa_api_base=fake_base,
            pii_key=secrets.token_bytes(32),
            redis_url=args.redis,
            queue_prefix=prefix,
            broadcast_rate_limit=cap / args.workers,
            broadcast_number_cap=cap,
            outbox_poll_seconds=0.05,
            outbox_batch=args.batch,
            # enough sends in flight to cover the latency: cap × latency, with room
            outbox_lanes=args.lanes
            or max(4, math.ceil(cap / args.workers * (args.latency + 0.3) / args.batch) + 1),
            log_level="WARNING",
        )
        await asyncio.to_thread(upgrade, database)
        broadcast_id = await _seed(settings, args.recipients)
        runtimes = [build_runtime(settings)]
        t0 = time.perf_counter()
        queued = await fan_out(runtimes[0].db, broadcast_id)
        fanned = time.perf_counter() - t0
        start = time.time()
        if args.processes:
            # real `jastipin worker` processes, as deployed; timed from their first send
            procs = [await _worker(settings, workdir, i) for i in range(args.workers)]
            stamps = await _wait_sent(fake_base, queued, args.timeout)
            for proc in procs:
                proc.terminate()
                await proc.wait()
            start = min(stamps, default=start)
        else:
            runtimes += [build_runtime(settings) for _ in range(args.workers - 1)]
            tasks = [asyncio.create_task(rt.outbox.run()) for rt in runtimes]
            stamps = await _wait_sent(fake_base, queued, args.timeout)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        stamps = [s for s in stamps if s >= start]
        sent = len(stamps)
        elapsed = (max(stamps) - start) if stamps else float("nan")
        per_second = Counter(int(s) for s in stamps)
        # whole seconds only: the first and last are partial
        full = sorted(per_second.items())[1:-1]
        achieved = sent / elapsed if sent else 0.0
        steady = sum(n for _s, n in full) / len(full) if full else achieved
        print(
            f"cap {cap:5}/s  workers {args.workers}{' processes' if args.processes else ''}  "
            f"recipients {args.recipients}  "
            f"lanes {settings.outbox_lanes}×{settings.outbox_batch}  "
            f"latency {args.latency * 1000:.0f} ms  db {database.split('+')[0].split(':')[0]}"
            f"{' + redis' if args.redis else ''}"
        )
        print(f"  fan-out            {queued} deliveries queued in {fanned:.2f} s")
        print(f"  sent               {sent} in {elapsed:.2f} s")
        print(f"  achieved msgs/s    {achieved:,.1f}  →  {achieved / cap:.3f} of the cap")
        print(f"  steady msgs/s      {steady:,.1f}  →  {steady / cap:.3f} of the cap")
        print(f"  busiest second     {max(per_second.values()) if per_second else 0}")
    finally:
        for rt in runtimes:
            await rt.aclose()
        fake.terminate()
        await fake.wait()
        if args.redis:
            import redis

            client = redis.Redis.from_url(args.redis)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
            client.close()


async def _run(args: argparse.Namespace) -> None:
    for cap in args.cap or [80, 1000]:
        await _one(args, cap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--cap", type=int, action="append", help="messages/s (repeatable)")
    parser.add_argument("--latency", type=float, default=0.2, help="fake Graph API seconds")
    parser.add_argument("--workers", type=int, default=1, help="outbox dispatchers")
    parser.add_argument(
        "--processes",
        action="store_true",
        help="run the dispatchers as `jastipin worker` processes (use --redis for the "
        "shared cap, --postgres for a database several processes write well)",
    )
    parser.add_argument("--batch", type=int, default=50, help="OUTBOX_BATCH")
    parser.add_argument("--lanes", type=int, help="OUTBOX_LANES (default: from cap × latency)")
    parser.add_argument("--postgres", metavar="URL", help="a Postgres server to use")
    parser.add_argument("--redis", metavar="URL", help="share the cap through Redis")
    parser.add_argument("--timeout", type=float, default=600)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()

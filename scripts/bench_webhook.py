"""Benchmark: signed webhooks posted concurrently at a served ``jastipin serve``.

Prints inbound messages/s (time until Meta would have its 200) with p50/p95/p99 of the
acknowledgement latency, and the end-to-end figure (until every reply was accepted by a
local fake Graph API). Not a test: it asserts nothing, it measures.

For scale, the same load (same messages, bodies, signatures and concurrency) is first
posted at a bare aiohttp handler in a process of its own, before ``jastipin serve``
starts: it reads the body, checks ``X-Hub-Signature-256`` with pywa's validator (as
bot/webhook.py does), ``json.loads`` it and answers 200, no more. Its msgs/s is printed
with the ratios ``end-to-end / bare`` and ``inbound / bare``: the share of what aiohttp
and the signature check alone allow on this machine that the whole bot achieves.

    .venv/bin/python scripts/bench_webhook.py --messages 3000 --concurrency 64
    .venv/bin/python scripts/bench_webhook.py --postgres postgresql://postgres@127.0.0.1/test
    .venv/bin/python scripts/bench_webhook.py --workers 1   # API stores, a worker processes
    .venv/bin/python scripts/bench_webhook.py --senders 1   # API processes, a worker sends
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchkit import free_port, pg_exec  # noqa: E402

from bot import simulate  # noqa: E402
from tests.fakes.graph_api import FakeGraphAPI  # noqa: E402

SECRET = "bench-secret"
JASTIPIN = str(Path(sys.executable).parent / "jastipin")
WEBHOOK = "/api/webhooks/whatsapp"


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _attempts(database: str) -> tuple[int, int, int]:
    """(message units, attempts started on them, units started more than once): a unit
    parsed by two processes is started by both."""
    sql = (
        "SELECT count(*), coalesce(sum(attempts), 0), count(*) FILTER (WHERE attempts > 1) "
        "FROM inbound_updates WHERE kind = 'message'"
    )
    if database.startswith("sqlite"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(database.split(":///", 1)[1])) as conn:
            row = conn.execute(sql).fetchone()
    else:
        import asyncpg

        conn = await asyncpg.connect(database)
        try:
            row = await conn.fetchrow(sql)
        finally:
            await conn.close()
    return int(row[0]), int(row[1]), int(row[2])


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def _serve_bare(port: int, secret: str) -> None:
    """The child process: a bare aiohttp webhook handler, what any webhook must do and no
    more. It exits on SIGTERM, and when its stdin closes (the bench died without it)."""
    from aiohttp import web
    from pywa.utils import webhook_updates_validator

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get("X-Hub-Signature-256")
        if not signature:
            return web.Response(status=401, text="Missing signature")
        if not webhook_updates_validator(secret, body, signature):
            return web.Response(status=403, text="Bad signature")
        try:
            json.loads(body)
        except ValueError:
            return web.Response(status=400, text="Malformed update")
        return web.Response(text="ok")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def orphaned() -> None:
        sys.stdin.buffer.read()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=orphaned, daemon=True).start()
    app = web.Application()
    app.router.add_post(WEBHOOK, receive)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def _post_load(
    port: int, bodies: list[tuple[bytes, str]], concurrency: int
) -> tuple[float, float, list[float], dict[int, int]]:
    """Posts every signed body at 127.0.0.1:port with ``concurrency`` requests in flight;
    when the first was sent (``time.perf_counter()``), the seconds until all were answered,
    each one's latency, and the count per status."""
    latencies: list[float] = []
    # aiohttp, not httpx, for the load: httpx saturates a core long before the
    # server does and would measure itself
    session = aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{port}",
        connector=aiohttp.TCPConnector(limit=concurrency),
    )
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            raw, sig = queue.get_nowait()
            t0 = time.perf_counter()
            async with session.post(
                WEBHOOK,
                data=raw,
                headers={
                    "X-Hub-Signature-256": sig,
                    "Content-Type": "application/json",
                },
            ) as resp:
                await resp.read()
            latencies.append(time.perf_counter() - t0)
            statuses[resp.status] = statuses.get(resp.status, 0) + 1

    try:
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    finally:
        await session.close()
    return start, elapsed, latencies, statuses


async def _measure_bare(
    args: argparse.Namespace, workdir: Path, bodies: list[tuple[bytes, str]]
) -> tuple[float, dict[int, int]]:
    """The same load at the bare handler (``--serve-bare``): seconds until all were
    answered, and the count per status. The child is stopped however this ends."""
    port = free_port()
    log_path = workdir / "bare.log"
    with log_path.open("w") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve-bare",
            str(port),
            SECRET,
            stdin=asyncio.subprocess.PIPE,
            stdout=log,
            stderr=log,
        )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as probe:
            deadline = time.monotonic() + 30
            while True:
                if proc.returncode is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the bare aiohttp server did not come up:\n{tail}")
                try:
                    async with probe.get(f"http://127.0.0.1:{port}/health") as resp:
                        if resp.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        _, elapsed, _, statuses = await asyncio.wait_for(
            _post_load(port, bodies, args.concurrency), timeout=args.timeout
        )
        return elapsed, statuses
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


async def _run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="jastipin-bench-"))
    database = f"sqlite+aiosqlite:///{workdir}/bench.db"
    scratch = None
    if args.postgres:
        # a scratch database of its own, so earlier runs cannot skew the figures
        scratch = f"jastipin_bench_{secrets.token_hex(4)}"
        await pg_exec(args.postgres, f'CREATE DATABASE "{scratch}"')
        database = args.postgres.rsplit("/", 1)[0] + "/" + scratch
    try:
        await _measure(args, workdir, database)
    finally:
        if scratch:
            await pg_exec(args.postgres, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


async def _measure(args: argparse.Namespace, workdir: Path, database: str) -> None:
    async with FakeGraphAPI.running(token="bench-token") as fake:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "JASTIPIN_DATA_DIR": str(workdir),
            "PORT": str(port),
            "WA_ACCESS_TOKEN": "bench-token",
            "WA_APP_SECRET": SECRET,
            "WA_VERIFY_TOKEN": "bench",
            "WA_PHONE_ID": "1122334455667",
            "WA_API_BASE": fake.base_url,
            "PII_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "LOG_LEVEL": "WARNING",
        }
        for argv in (["db", "upgrade"], ["demo"]):
            proc = await asyncio.create_subprocess_exec(JASTIPIN, *argv, env=env)
            await proc.wait()
        bodies = []
        for i in range(args.messages):
            number = f"62899{i:08d}"
            text = "JOIN DEMO" if i % 2 == 0 else "MENU"
            raw = simulate.encode(simulate.text(number, text, name=f"Bench {i}"))
            bodies.append((raw, simulate.sign(raw, SECRET)))
        # the bare handler first, alone on the machine: jastipin serve is not started yet
        bare, bare_statuses = await _measure_bare(args, workdir, bodies)
        if args.workers or args.store_only:
            env["INBOX_INLINE"] = "0"
        elif args.senders:
            env["OUTBOX_INLINE"] = "0"  # the API converses; the workers send
        server = await asyncio.create_subprocess_exec(
            JASTIPIN, "serve", env=env, stderr=asyncio.subprocess.DEVNULL
        )
        workers = [
            await asyncio.create_subprocess_exec(
                JASTIPIN, "worker", env=env, stderr=asyncio.subprocess.DEVNULL
            )
            for _ in range(args.workers or args.senders)
        ]
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                limits=httpx.Limits(max_connections=args.concurrency),
                timeout=60,
            ) as client:
                for _ in range(600):  # up to a minute: start-up on a loaded machine
                    try:
                        if (await client.get("/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                start, acked, latencies, statuses = await _post_load(
                    port, bodies, args.concurrency
                )
                try:
                    if args.store_only:
                        raise TimeoutError
                    await fake.wait_for(args.messages, timeout=args.timeout)
                    replied = time.perf_counter() - start
                except TimeoutError:
                    replied = float("nan")
        finally:
            # CPU seconds each process used (Linux), read before it exits
            cpu = [_cpu_seconds(proc.pid) for proc in (server, *workers)]
            for proc in (server, *workers):
                proc.terminate()
                await proc.wait()
        units, attempts, twice = await _attempts(database)
    n = args.messages
    mode = (
        f"API stores, {args.workers} worker(s) process"
        if args.workers
        else f"API processes inline, {args.senders} worker(s) send"
        if args.senders
        else "API processes inline"
    )
    print(f"database            {database.split('://')[0]}; {mode}")
    print(f"messages            {n} (concurrency {args.concurrency}), statuses {statuses}")
    print(f"inbound msgs/s      {n / acked:,.0f}  (all acknowledged in {acked:.2f} s)")
    p50, p95, p99 = (_pct(latencies, q) * 1000 for q in (0.50, 0.95, 0.99))
    mean = statistics.fmean(latencies) * 1000
    print(f"ack latency ms      p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  mean {mean:.1f}")
    print(f"end-to-end msgs/s   {n / replied:,.0f}  (every reply sent in {replied:.2f} s)")
    if all(c is not None for c in cpu):
        total = sum(c or 0.0 for c in cpu)
        each = " + ".join(f"{c:.1f}" for c in cpu if c is not None)
        per = total / n * 1000
        print(f"CPU s (API + workers) {each} = {total:.1f}  ({per:.1f} ms per message)")
    print(f"units started         {attempts} attempts for {units} units ({twice} started twice+)")
    odd = "" if set(bare_statuses) == {200} else f", statuses {bare_statuses}"
    print(
        f"bare aiohttp handler  {n / bare:,.0f} msgs/s  "
        f"(signature check + parse + 200, same load{odd})"
    )
    # (n / replied) / (n / bare): the bot's msgs/s as a share of the bare handler's
    print(f"end-to-end / bare     {bare / replied:.2f}")
    print(f"inbound / bare        {bare / acked:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="a Postgres server URL (e.g. postgresql://postgres@127.0.0.1/test); the bench "
        "creates and drops a scratch database there (default: a fresh SQLite file)",
    )
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--store-only",
        action="store_true",
        help="measure the acknowledgement path alone: nothing processes the stored updates",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run N `jastipin worker` processes and let the API only store (INBOX_INLINE=0)",
    )
    parser.add_argument(
        "--senders",
        type=int,
        default=0,
        help="run N `jastipin worker` processes that only send (OUTBOX_INLINE=0 on the API)",
    )
    # the child process of the bench: the bare aiohttp handler on 127.0.0.1:PORT
    parser.add_argument(
        "--serve-bare", nargs=2, metavar=("PORT", "SECRET"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_bare:
        _serve_bare(int(args.serve_bare[0]), args.serve_bare[1])
        return
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()

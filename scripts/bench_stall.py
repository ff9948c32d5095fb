"""Benchmark: other users' replies while one user's media download stalls.

A served ``jastipin serve`` (SQLite by default, the embedded broker) and a local fake
Graph API. The demo jastiper sends a photo whose download the fake holds for
``--stall`` seconds (15 by default); meanwhile ``--users`` other people each send
BANTUAN, spread over the stall. Prints p50/p95/max of their reply latency (webhook
posted -> reply accepted by the fake Graph API) and how many were answered while the
download was still held. Not a test: it asserts nothing, it measures.

    .venv/bin/python scripts/bench_stall.py
    .venv/bin/python scripts/bench_stall.py --stall 0   # the same load, no download held
    .venv/bin/python scripts/bench_stall.py --postgres postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchkit import free_port, fresh_database, served_env  # noqa: E402

from bot import simulate  # noqa: E402
from storage.demo import DEMO_PHONE  # noqa: E402
from tests.fakes.graph_api import FakeGraphAPI  # noqa: E402

SECRET = "bench-secret"
TOKEN = "bench-token"
JASTIPIN = str(Path(sys.executable).parent / "jastipin")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(JASTIPIN, *cmd, env=env)
    if await asyncio.wait_for(proc.wait(), timeout=180) != 0:
        raise SystemExit(f"jastipin {' '.join(cmd)} failed")


async def bench(users: int, stall: float, postgres: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with (
            fresh_database(workdir, postgres) as database,
            FakeGraphAPI.running(token=TOKEN) as fake,
        ):
            port = free_port()
            env = served_env(
                database,
                workdir,
                port=port,
                api_base=fake.base_url,
                token=TOKEN,
                secret=SECRET,
                phone_id="1234",
            )
            await _run(["db", "upgrade"], env)
            await _run(["demo"], env)
            serve = await asyncio.create_subprocess_exec(JASTIPIN, "serve", env=env)
            try:
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", timeout=30
                ) as client:
                    await _measure(client, fake, users, stall)
            finally:
                serve.terminate()
                await asyncio.wait_for(serve.wait(), timeout=60)


async def _post(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    raw = simulate.encode(body)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": ""}
    headers["X-Hub-Signature-256"] = simulate.sign(raw, SECRET)
    resp = await client.post("/api/webhooks/whatsapp", content=raw, headers=headers)
    resp.raise_for_status()


async def _measure(
    client: httpx.AsyncClient, fake: FakeGraphAPI, users: int, stall: float
) -> None:
    for _ in range(300):
        try:
            if (await client.get("/health")).status_code == 200:
                break
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    # warm-up: one user's full round trip (imports, caches, connections)
    await _post(client, simulate.text("628000000000", "BANTUAN"))
    await fake.wait_for(1, timeout=30, to="628000000000")

    if stall > 0:
        buf = io.BytesIO()
        Image.new("RGB", (640, 480), "olive").save(buf, "JPEG")
        photo = fake.add_media(buf.getvalue(), "image/jpeg")
        fake.stall_next_media_downloads(1)
        await _post(client, simulate.media(DEMO_PHONE, "image", photo, "image/jpeg"))
        async with asyncio.timeout(30):
            while fake.stalled_now == 0:  # noqa: ASYNC110 - the fake's counter, no event
                await asyncio.sleep(0.01)
    stalled_at = time.perf_counter()

    latencies: list[float] = []
    while_stalled = 0

    async def one(n: int) -> None:
        nonlocal while_stalled
        number = f"62857{n:08d}"  # not the demo jastiper's 6281100000001
        start = time.perf_counter()
        await _post(client, simulate.text(number, "BANTUAN"))
        await fake.wait_for(1, timeout=60, to=number)
        latencies.append(time.perf_counter() - start)
        if fake.stalled_now:
            while_stalled += 1

    spacing = (stall or 15.0) * 0.8 / users
    tasks = []
    for n in range(users):
        tasks.append(asyncio.create_task(one(n)))
        await asyncio.sleep(spacing)
    await asyncio.gather(*tasks)
    if stall > 0:
        held = time.perf_counter() - stalled_at
        await asyncio.sleep(max(0.0, stall - held))
        fake.release_stalled_media_downloads()
        await fake.wait_for(1, timeout=60, to=DEMO_PHONE)
    ms = [x * 1000 for x in latencies]
    print(
        f"one download held {stall:g} s; {users} other users' BANTUAN replies: "
        f"p50 {statistics.median(ms):.0f} ms, p95 {_pct(ms, 0.95):.0f} ms, "
        f"max {max(ms):.0f} ms; {while_stalled}/{users} answered while it was held"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--stall", type=float, default=15.0)
    parser.add_argument("--postgres", help="a Postgres server URL (a scratch database)")
    args = parser.parse_args()
    asyncio.run(bench(args.users, args.stall, args.postgres))


if __name__ == "__main__":
    main()

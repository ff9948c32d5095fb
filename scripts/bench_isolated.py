"""Benchmark: what decoding a proof in a separate process costs, and the alternatives.

Cleans the same small receipt photo (and a 4096 x 3072 photo) ``--runs`` times three
ways and prints the median wall time and the CPU time of each:

- ``thread``: ``clean_proof`` on a thread of this process (the old way: no limits);
- ``process``: ``storage.uploads.prepare_proof``, a child process per job with limits
  (what runs now);
- ``pool``: a warm ``ProcessPoolExecutor`` (forkserver) whose worker set the same limits
  in its initializer (cheaper per job, but a job that times out or dies breaks the
  pool and every job queued on it). Its CPU is not counted: a pool's worker is not a
  finished child of this process.

    .venv/bin/python scripts/bench_isolated.py --runs 10
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import io
import multiprocessing
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage import isolated, uploads  # noqa: E402


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (isolated.MEMORY_LIMIT, isolated.MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (isolated.CPU_SECONDS, isolated.CPU_SECONDS + 1))


def _photo(size: tuple[int, int]) -> bytes:
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


async def _time(label: str, runs: int, job: Callable[[], Awaitable[object]]) -> None:
    walls: list[float] = []
    cpu = _cpu()
    for _ in range(runs):
        start = time.perf_counter()
        await job()
        walls.append(time.perf_counter() - start)
    per_job = (_cpu() - cpu) / runs
    wall = statistics.median(walls) * 1000
    print(f"{label:28} median {wall:6.0f} ms, CPU {per_job * 1000:5.0f} ms")


async def main(runs: int) -> None:
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("forkserver")
    with (
        concurrent.futures.ThreadPoolExecutor(1) as thread,
        concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx, initializer=_limits) as pool,
    ):
        await loop.run_in_executor(pool, uploads.clean_proof, _photo((64, 48)))  # warm
        for name, data in (("640x480", _photo((640, 480))), ("4096x3072", _photo((4096, 3072)))):
            await _time(
                f"thread   {name}",
                runs,
                lambda d=data: loop.run_in_executor(thread, uploads.clean_proof, d),
            )
            await _time(f"process  {name}", runs, lambda d=data: uploads.prepare_proof(d))
            await _time(
                f"pool     {name}",
                runs,
                lambda d=data: loop.run_in_executor(pool, uploads.clean_proof, d),
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))

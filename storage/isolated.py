"""Heavy work on hostile input in a separate process with limits.

Decoding a stranger's picture or rendering their PDF can cost any amount of memory and
CPU (a 126 KB PDF of five million ``re f`` operators took PDFium to 1.8 GB), and a
library written in C can crash outright. So each such job runs in a child process of
its own (``python -m storage.isolated <job>``), never in the process that answers
webhooks:

- the child limits itself before it reads its input: address space (``RLIMIT_AS``,
  :data:`MEMORY_LIMIT`) and CPU time (``RLIMIT_CPU``, :data:`CPU_SECONDS`), so an
  allocation past the limit fails in the child (or kills it) and a loop is stopped by
  the kernel;
- the parent kills it after :data:`WALL_SECONDS` of wall-clock time (a child waiting on
  nothing uses no CPU) and runs at most :data:`CONCURRENT` children at a time;
- the input goes in on stdin, the answer comes back on stdout as one JSON line and the
  payload bytes: nothing the child writes is unpickled, so a child taken over by a
  hostile file still cannot run code in the parent; nor does it inherit the parent's
  secrets (its environment is only what finds Python's packages).

A process per job rather than a pool of warm workers: a job that times out or dies
takes nothing else with it (killing a pool's worker breaks every job queued on it), and
the start-up (about 0.2 s, docs/BENCHMARKS.md) is small beside a media download.

Jobs are functions ``(data, params) -> (header, payload)`` named in :data:`JOBS`; only
those can be run.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import resource
import sys
import weakref
from collections.abc import Callable
from typing import Any, Final

MEMORY_LIMIT: Final = 512 * 1024 * 1024
"""Address space of a child (bytes): the interpreter with Pillow and PDFium maps about
60 MB; cleaning a 16 MP photo peaks at about 215 MB resident (a JPEG's optimised
encoding), so twice that fits and PDFium's five million rectangles do not."""

CPU_SECONDS: Final = 5
"""CPU time a child may use (a 16 MP photo is cleaned in under a second and a half)."""

WALL_SECONDS: Final = 30.0
"""Wall-clock time a job may take, start-up included, before its child is killed: a
child waiting on nothing uses no CPU. Generous, as the CPU limit bounds the work and a
loaded machine can take seconds to start an interpreter."""

CONCURRENT: Final = 2
"""Children of one process running at once (the machine has two cores)."""

JOBS: Final[dict[str, str]] = {
    "clean_proof": "storage.uploads:isolated_clean_proof",
    # product photos' renditions (named, not imported: the child imports it)
    "resize": "services.photos:isolated_resize",
}
"""The jobs a child may run: name -> ``module:function``."""

Job = Callable[[bytes, dict[str, Any]], tuple[dict[str, Any], bytes]]

# one semaphore per event loop (tests run many loops; an asyncio primitive belongs to one)
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


class IsolatedFailed(Exception):
    """The child did not answer: it was killed by a limit or the timeout, crashed, or
    wrote something that is not an answer. ``reason`` says which, for logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def run(
    job: str,
    data: bytes,
    params: dict[str, Any] | None = None,
    *,
    wall_seconds: float = WALL_SECONDS,
    memory_limit: int = MEMORY_LIMIT,
    cpu_seconds: int = CPU_SECONDS,
) -> tuple[dict[str, Any], bytes]:
    """Run ``job`` on ``data`` in a child process with limits; its (header, payload).

    Raises:
        IsolatedFailed: the child died, overran a limit or the timeout, or answered
            nonsense.
        KeyError: no such job.
    """
    if job not in JOBS:
        raise KeyError(job)
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(CONCURRENT)
    limits = json.dumps({"as": memory_limit, "cpu": cpu_seconds, "params": params or {}})
    async with slots:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "storage.isolated",
            job,
            limits,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,  # a C library's complaints: not ours to log
            env=_child_env(),
        )
        try:
            async with asyncio.timeout(wall_seconds):
                out, _ = await proc.communicate(data)
        except TimeoutError:
            raise IsolatedFailed(f"no answer within {wall_seconds:g} s") from None
        finally:
            if proc.returncode is None:  # the timeout, or our caller was cancelled
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    if proc.returncode != 0:
        raise IsolatedFailed(f"child exited with {proc.returncode}")
    line, sep, payload = out.partition(b"\n")
    try:
        header = json.loads(line) if sep else None
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise IsolatedFailed("child answered no header")
    return header, payload


def _child_env() -> dict[str, str]:
    """The child's environment: enough to find Python's packages, none of our secrets
    (access token, PII key, database URL), should a hostile file take the child over."""
    return {k: v for k, v in os.environ.items() if k in _CHILD_ENV}


_CHILD_ENV: Final = frozenset({"PATH", "PYTHONPATH", "LANG", "LC_ALL", "TMPDIR", "HOME"})


def _limit(limits: dict[str, Any]) -> None:
    """Limit this process: address space and CPU time (soft = hard - 1 s, so SIGXCPU
    stops it first)."""
    memory = int(limits["as"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits["cpu"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def main(argv: list[str]) -> int:
    """The child: limit itself, read the input, run the job, write the answer."""
    job, raw = argv[1], argv[2]
    limits = json.loads(raw)
    module_name, _, func_name = JOBS[job].partition(":")
    func: Job = getattr(importlib.import_module(module_name), func_name)  # before limits
    _limit(limits)
    data = sys.stdin.buffer.read()
    header, payload = func(data, limits.get("params") or {})
    sys.stdout.buffer.write(json.dumps(header).encode() + b"\n" + payload)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

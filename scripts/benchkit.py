"""What the benchmark scripts share: a free local port, a statement on a Postgres
server, a fresh database per run, the environment of the served processes, the
processes themselves (started, waited for, measured from ``/proc``, stopped), the fake
Graph API of ``bench_rush.py`` in a process of its own and the feed of what it accepted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
TOKEN = "bench-token"
PHONE_ID = "1122334455667"
JASTIPIN = str(Path(sys.executable).parent / "jastipin")
WEBHOOK = "/api/webhooks/whatsapp"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def pg_exec(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(workdir: Path, postgres: str | None) -> AsyncIterator[str]:
    """The URL of a database nothing ran on: a SQLite file in ``workdir``, or — with
    ``postgres``, a server URL — a scratch database created there and dropped after, so
    that earlier runs cannot skew the figures."""
    if not postgres:
        yield f"sqlite+aiosqlite:///{workdir}/bench.db"
        return
    from bot.settings import _normalise_db_url

    scratch = f"jastipin_bench_{secrets.token_hex(4)}"
    await pg_exec(postgres, f'CREATE DATABASE "{scratch}"')
    try:
        yield _normalise_db_url(postgres.rsplit("/", 1)[0] + "/" + scratch)
    finally:
        await pg_exec(postgres, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def scratch(prefix: str, postgres: str | None) -> AsyncIterator[tuple[Path, str]]:
    """A temporary working folder (logs, the SQLite file) and a fresh database (see
    :func:`fresh_database`), both gone afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        async with fresh_database(workdir, postgres) as database:
            yield workdir, database
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def cancel_on_sigterm() -> None:
    """SIGTERM as Ctrl-C: the running task is cancelled, so the finally blocks stop
    every child."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def served_env(
    database: str,
    workdir: Path,
    *,
    port: int,
    api_base: str,
    token: str,
    secret: str,
    phone_id: str,
) -> dict[str, str]:
    """The environment of a served ``jastipin`` process of a bench: this one's, without
    any WhatsApp credentials, PII key or Redis of the shell, plus the bench's own (a
    fresh PII key each run; warnings and worse logged only)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WA_", "PII_", "REDIS_"))},
        "DATABASE_URL": database,
        "JASTIPIN_DATA_DIR": str(workdir),
        "PORT": str(port),
        "WA_ACCESS_TOKEN": token,
        "WA_APP_SECRET": secret,
        "WA_VERIFY_TOKEN": "bench",
        "WA_PHONE_ID": phone_id,
        "WA_API_BASE": api_base,
        "PII_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "LOG_LEVEL": "WARNING",
    }


@dataclasses.dataclass(frozen=True)
class Ports:
    """The local ports of one run: ``jastipin serve``, the fake Graph API and its feed."""

    serve: int
    fake: int
    feed: int

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.serve}{WEBHOOK}"

    @property
    def fake_base(self) -> str:
        return f"http://127.0.0.1:{self.fake}"

    @property
    def feed_base(self) -> str:
        return f"http://127.0.0.1:{self.feed}"

    def env(self, database: str, workdir: Path) -> dict[str, str]:
        """The environment of the served processes, sending to the fake Graph API."""
        return served_env(
            database,
            workdir,
            port=self.serve,
            api_base=self.fake_base,
            token=TOKEN,
            secret=SECRET,
            phone_id=PHONE_ID,
        )


class Processes:
    """Every child the bench starts, terminated (then killed) however the run ends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[tuple[str, asyncio.subprocess.Process]] = []
        self.stopped: dict[str, str] = {}  # how long SIGTERM took, or that it was killed

    async def start(self, name: str, argv: list[str], env: dict[str, str]) -> int:
        log = (self.workdir / f"{name}.log").open("w")
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=str(ROOT), stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
        )
        log.close()
        self.procs.append((name, proc))
        return proc.pid

    def alive(self, name: str) -> bool:
        return any(n == name and p.returncode is None for n, p in self.procs)

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds: the bot's processes first (a
        draining server may still send), the fake Graph API last."""
        bot = [(n, p) for n, p in self.procs if n != "fake"]
        fake = [(n, p) for n, p in self.procs if n == "fake"]
        for group in (bot, fake):
            t0 = time.monotonic()
            for name, proc in group:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.terminate()
                elif name not in self.stopped:
                    self.stopped[name] = f"had exited (code {proc.returncode})"
            for name, proc in group:
                if proc.returncode is not None and name in self.stopped:
                    continue
                try:
                    await asyncio.wait_for(proc.wait(), timeout=grace)
                    self.stopped[name] = f"{time.monotonic() - t0:.1f} s"
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
                    self.stopped[name] = f"killed after {grace:g} s"


async def run_cli(argv: list[str], env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        JASTIPIN,
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"jastipin {' '.join(argv)} took over 120 s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"jastipin {' '.join(argv)} failed:\n{out.decode(errors='replace')}")


async def until_up(
    probe: aiohttp.ClientSession, procs: Processes, name: str, url: str, *, within: float = 30
) -> None:
    """Until ``url`` answers 200 (``within`` seconds: a niced start on a busy machine is
    slow), or the process exited."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not procs.alive(name):
            raise RuntimeError(f"{name} exited:\n{procs.tail(name)}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with probe.get(url) as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{name} did not answer in {within:g} s:\n{procs.tail(name)}")


def proc_figures(pid: int) -> tuple[float | None, float | None]:
    """Peak resident memory (VmHWM, MB) and CPU seconds used so far, from /proc."""
    peak = cpu = None
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return peak, cpu


def rss_mb(pid: int) -> float | None:
    """Resident memory (VmRSS, MB) now, from /proc."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


async def start_fake(
    procs: Processes,
    ports: Ports,
    *,
    latency: float = 0.0,
    statuses: bool = True,
    status_posters: int = 8,
    cap: int | None = None,
) -> int:
    """The fake Graph API of ``bench_rush.py`` in a process of its own (with ``statuses``
    it posts a signed ``sent`` status webhook back for every message, as Meta does)."""
    config = {
        "port": ports.fake,
        "feed_port": ports.feed,
        "latency": latency,
        "cap": cap,
        "status_url": ports.webhook if statuses else None,
        "status_posters": status_posters,
    }
    argv = [sys.executable, str(ROOT / "scripts" / "bench_rush.py")]
    pid = await procs.start("fake", [*argv, "--serve-fake", json.dumps(config)], dict(os.environ))
    # The fake stands in for Meta, whose servers do not slow down when this machine is
    # busy: under `nice` it answered sends so late that they timed out ("outcome
    # unknown"), and each such row held that buyer's later replies until recovery.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, 0)
    return pid


async def feed(
    base: str,
    deliver: Callable[[dict[str, Any]], None],
    page: Callable[[int, dict[str, Any]], None] | None = None,
) -> None:
    """Hand every message the fake accepted to ``deliver``, as soon as it arrives (and
    each answer of the feed, with the count so far, to ``page``); runs until cancelled."""
    after = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        while True:
            try:
                async with session.get(f"{base}/feed", params={"after": after}) as resp:
                    data = await resp.json()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                await asyncio.sleep(0.5)
                continue
            for message in data["messages"]:
                after += 1
                deliver(message)
            if page is not None:
                page(after, data)

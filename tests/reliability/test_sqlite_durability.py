"""Nothing is lost on the embedded default (SQLite, no Redis), whatever runs beside
``jastipin serve`` (issue #21 item 1).

A jastiper confirms a broadcast; the serving process's scheduler hands it to the
in-process actor on its next pass. Then, while buyers keep writing and getting answers,
an operator runs the usual commands in other processes: admin and jastiper accounts,
the demo seed, a backup, a refused restore, a queue retry, a migration, a worker and a
scheduler pass. Before the fix, the actor's second ``Database`` closed a descriptor of
the file and dropped the server's SQLite locks: the next command deleted the live
``-wal``, and what the server acknowledged afterwards was gone after a restart.

Checked from a separate process after SIGKILL: every acknowledged message and every
reply the Graph API accepted is on disk, the database is intact, and the server never
held a deleted ``-wal``/``-shm`` open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot import simulate
from bot.inbox import split_update
from storage.db import Database, private_sqlite_file
from storage.demo import DEMO_PHONE
from storage.sealed import open_cipher
from tests import stack as e2e
from tests.conftest import APP_SECRET, phone
from tests.fakes.graph_api import FakeGraphAPI
from tests.stack import JASTIPIN, Stack

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the server's open files"
)

BUYERS = 4
PAUSE_SECONDS = 0.5  # between a buyer's messages: the commands beside get CPU too
COMMAND_SECONDS = 120

# read by a separate process, with nothing but SQLite, after the server was killed
_ON_DISK = """
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(json.dumps({
    "integrity": conn.execute("PRAGMA integrity_check").fetchone()[0],
    "inbound": [k for (k,) in conn.execute("SELECT key FROM inbound_updates")],
    "sent": [w for (w,) in conn.execute(
        "SELECT wa_message_id FROM outbox WHERE wa_message_id IS NOT NULL")],
    "admins": conn.execute("SELECT count(*) FROM admin_users").fetchone()[0],
}))
"""


@pytest.fixture
async def sqlite_stack(tmp_path: Path, fake_graph: FakeGraphAPI) -> AsyncIterator[Stack]:
    s = Stack(tmp_path, fake_graph, f"sqlite+aiosqlite:///{tmp_path / 'jastipin.db'}", "")
    for name in ("REDIS_URL", "QUEUE_PREFIX"):  # the embedded default: no Redis
        s.env.pop(name, None)
    s.env["BACKUP_DIR"] = str(tmp_path / "backups")
    try:
        yield s
    finally:
        await s.close()


async def _command(s: Stack, *argv: str, stdin: str = "", code: int = 0) -> str:
    """A one-shot ``jastipin`` command in its own process; its output."""
    proc = await asyncio.create_subprocess_exec(
        JASTIPIN,
        *argv,
        env=s.env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin.encode()), COMMAND_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace")
    assert proc.returncode == code, f"jastipin {' '.join(argv)} exited {proc.returncode}:\n{text}"
    return text


async def _operator(s: Stack) -> None:
    """What an operator runs beside the server: three shells at once, each running its
    commands one after another."""

    async def accounts() -> None:
        for n in (1, 2):
            await _command(
                s,
                *("admin", "create-user", "--email", f"ops{n}@example.com", "--password-stdin"),
                stdin=f"a-long-password-{n}\n",
            )
        await _command(s, "jastiper", "add", "--phone", "+6281299990000", "--name", "Rina")
        await _command(s, "demo")

    async def backups() -> None:
        assert "backup written" in await _command(s, "backup")
        refused = await _command(s, "restore", code=1)
        assert "not empty" in refused, refused
        await _command(s, "db", "upgrade")

    async def queues() -> None:
        await _command(s, "queue", "status")
        await _command(s, "queue", "retry")
        await _command(s, "scheduler", "--once")
        worker = await s.start("worker", "worker")  # sends and sweeps beside the server
        await e2e.until(
            lambda: "worker started" in s.log_text("worker"),
            within=COMMAND_SECONDS,
            what=lambda: f"the worker did not start:\n{s.log_text('worker')}",
        )
        await asyncio.sleep(1)
        worker.terminate()
        assert await asyncio.wait_for(worker.wait(), 30) == 0, s.log_text("worker")
        s.procs.pop("worker")

    await asyncio.gather(accounts(), backups(), queues())


def _deleted_files(pid: int, db: Path) -> list[str]:
    """The server's descriptors that point at a deleted database file (-wal, -shm)."""
    found = []
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds) if os.path.isdir(fds) else []:
        with contextlib.suppress(OSError):
            target = os.readlink(f"{fds}/{fd}")
            if target.startswith(str(db)) and target.endswith("(deleted)"):
                found.append(target)
    return found


async def _deleted_files_watch(pid: int, db: Path, seen: list[str], stop: asyncio.Event) -> None:
    while not stop.is_set():
        seen += _deleted_files(pid, db)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


# eleven command processes start one after another beside serve, and the scheduler's
# pass is waited for: about four minutes on a loaded machine, each wait bounded inside
@pytest.mark.timeout(900)
async def test_nothing_acknowledged_is_lost_whatever_runs_beside_serve(
    sqlite_stack: Stack,
) -> None:
    s = sqlite_stack
    db_file = s.tmp_path / "jastipin.db"
    await s.run("db", "upgrade")
    await s.run("demo")
    await s.serve()
    server = s.procs["serve"]
    deleted: list[str] = []
    stop_watch = asyncio.Event()
    watch = asyncio.create_task(_deleted_files_watch(server.pid, db_file, deleted, stop_watch))

    await e2e.say(s, DEMO_PHONE, "/summary DEMO off", name="Tina", expect="Ringkasan DEMO")
    buyers = [phone() for _ in range(BUYERS)]
    await asyncio.gather(*(e2e.join(s, n, f"B{i}") for i, n in enumerate(buyers)))
    text = f"Matcha Kit Kat sudah datang! ({secrets.token_hex(3)})"
    await e2e.say(
        s, DEMO_PHONE, f"/broadcast DEMO {text}", name="Tina", expect=f"Penerima: {BUYERS}"
    )
    await e2e.tap(s, DEMO_PHONE, "Kirim", name="Tina", expect="masuk antrean")
    # the scheduler's next pass (every 20 s) hands it to the in-process actor
    await e2e.until(
        lambda: set(e2e.received(s.fake, text)) >= set(buyers),
        within=60,
        what=lambda: f"the broadcast did not reach everyone:\n{s.log_text('serve')[-3000:]}",
    )

    acknowledged: list[dict] = []  # type: ignore[type-arg]
    writing = asyncio.Event()

    async def keep_writing(number: str, name: str) -> None:
        assert s.http is not None
        while not writing.is_set():
            body = simulate.text(
                number,
                f"halo {len(acknowledged)}",
                name=name,
                wamid=f"wamid.{secrets.token_hex(12)}",
            )
            since = len(s.fake.sent_to(number))
            raw = simulate.encode(body)
            resp = await s.http.post(
                "/api/webhooks/whatsapp",
                content=raw,
                headers={"X-Hub-Signature-256": simulate.sign(raw, APP_SECRET)},
            )
            if resp.status_code != 200:
                await asyncio.sleep(0.2)  # Meta retries later; not acknowledged
                continue
            acknowledged.append(body)
            await asyncio.sleep(PAUSE_SECONDS)
            await e2e.until(
                lambda since=since: len(s.fake.sent_to(number)) > since,  # type: ignore[misc]
                within=30,
                what=lambda: f"no answer to {number[-4:]}:\n{s.log_text('serve')[-3000:]}",
            )

    writers = [asyncio.create_task(keep_writing(n, f"B{i}")) for i, n in enumerate(buyers)]
    try:
        await _operator(s)
        await asyncio.sleep(2)  # buyers write on after the last command
    finally:
        writing.set()
        await asyncio.wait_for(asyncio.gather(*writers), 60)
    stop_watch.set()
    await asyncio.wait_for(watch, 10)
    assert acknowledged, "no buyer's message was acknowledged"

    await s.kill("serve")  # SIGKILL: what is on disk is all there is
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _ON_DISK, str(db_file), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(reader.communicate(), 60)
    disk = json.loads(out)

    assert deleted == [], f"the server wrote to deleted files: {sorted(set(deleted))}"
    assert disk["integrity"] == "ok"
    cipher = open_cipher(s.pii_key)
    keys = {u["key"] for body in acknowledged for u in split_update(body)}
    missing = keys - set(disk["inbound"])
    assert not missing, f"{len(missing)} of {len(keys)} acknowledged messages lost"
    replies = {cipher.digest_id(m["wamid"]) for m in s.fake.sent}
    lost = replies - set(disk["sent"])
    assert not lost, f"{len(lost)} of {len(replies)} replies sent are not on disk"
    assert disk["admins"] == 2, "an operator's command was lost"


_OPEN_AND_CLOSE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(conn.execute("SELECT count(*) FROM probe").fetchone()[0])
conn.close()
"""


def _wal_of(path: Path) -> Path:
    return path.with_name(f"{path.name}-wal")


async def _other_process_reads(path: Path) -> int:
    """Another process opens the database, counts the probe rows and closes it (as
    every CLI command does on its way out)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _OPEN_AND_CLOSE, str(path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return int(out)


async def test_a_second_database_handle_keeps_the_servers_locks(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """The mechanism on its own: a process with a live connection builds another
    ``Database`` (and runs what ``db upgrade`` runs first); another process opening and
    closing the file must still see it in use, so the -wal stays and nothing is lost."""
    path = tmp_path / "live.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE probe (x INTEGER)"))
            await session.execute(text("INSERT INTO probe VALUES (1)"))
        second = Database(url)
        private_sqlite_file(url)
        assert await _other_process_reads(path) == 1
        assert _wal_of(path).exists(), "the other process deleted the live -wal"
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO probe VALUES (2)"))
        assert await _other_process_reads(path) == 2, "a committed write is not on disk"
        assert _deleted_files(os.getpid(), path) == []
        await second.dispose()
    finally:
        await db.dispose()

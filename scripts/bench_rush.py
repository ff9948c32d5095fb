"""Benchmark: the launch rush — hundreds of buyers racing through the real conversation.

Buyers arrive spread over ``--over`` seconds, each from its own number, and tap through
JOIN DEMO → name → consent → Katalog → "Royce Nama Chocolate" (stock 10) → Pesan → 1 →
Lewati → Checkout → the five address fields → Benar → Konfirmasi, waiting for the bot's
answer to each step (as it reaches a fake Graph API in a process of its own) and pausing
like a person between taps. A buyer ends with an order, told the product is sold out,
or stuck (a step unanswered for ``--step-timeout`` seconds). Prints the outcomes, the
orders for the scarce product counted in the database, the reply latency per step,
the webhook intake and the peak memory of the served processes. Not a test: it asserts
nothing, it measures.

    .venv/bin/python scripts/bench_rush.py --buyers 20 --over 5          # a smoke run
    .venv/bin/python scripts/bench_rush.py                               # 500 buyers, 30 s
    .venv/bin/python scripts/bench_rush.py --postgres postgresql://postgres@127.0.0.1/test
    .venv/bin/python scripts/bench_rush.py --postgres postgresql://postgres@127.0.0.1/test \\
        --workers 2 --redis redis://127.0.0.1:6379/0 --json

Each run: a fresh database (a SQLite file in a temporary directory, or a scratch Postgres
database created and dropped), ``jastipin db upgrade`` and ``jastipin demo``, then
``jastipin serve`` (and ``--workers N`` ``jastipin worker`` processes, the API only
storing updates: ``INBOX_INLINE=0``) as real processes. The fake posts a signed ``sent``
status webhook back for every message it accepts, as Meta does (``--no-statuses``: not).
With ``--redis`` the processes share it under a queue prefix of this run (its keys are
deleted after). All traffic stays on 127.0.0.1; buyers still going ``--deadline`` seconds
after the start are cut off, then every child is stopped (SIGTERM, SIGKILL 15 s later).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchkit import (  # noqa: E402
    JASTIPIN,
    PHONE_ID,
    SECRET,
    TOKEN,
    WEBHOOK,
    Ports,
    Processes,
    feed,
    fresh_database,
    proc_figures,
    run_cli,
    start_fake,
    until_up,
)

from bot import simulate  # noqa: E402

SCARCE = "Royce Nama Chocolate"
SCARCE_STOCK = 10


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "Adi Agus Ayu Bayu Budi Citra Dewi Dian Eka Fajar Fitri Gilang Hendra Indah Intan Joko "
    "Kartika Lestari Maya Nanda Nur Putri Rina Rizky Sari Siti Tari Teguh Wahyu Wulan Yudi"
)
LAST = _words(
    "Santoso Wijaya Saputra Hidayat Kusuma Pratama Lestari Nugroho Siregar Hasibuan Simanjuntak "
    "Setiawan Gunawan Halim Tanjung Wibowo Sembiring Purba Rahayu Permana Utami Yulianti"
)
STREETS = _words("Melati Kenanga Mawar Sudirman Diponegoro Cendana Flamboyan Kartini")
CITIES = ("Jakarta Selatan", "Bandung", "Surabaya", "Medan", "Depok", "Bekasi", "Semarang")


# --------------------------------------------------------------------------- the fake


def _slim(message: dict[str, Any]) -> dict[str, Any]:
    """What a buyer reads of a message the bot sent: to whom, when, text, choices."""
    from tests.fakes.graph_api import message_text

    choices: list[tuple[str, str, str, bool]] = []  # (id, title, description, is a row)
    interactive = message.get("interactive") or {}
    action = interactive.get("action") or {}
    for button in action.get("buttons") or []:
        reply = button.get("reply") or {}
        choices.append((reply.get("id", ""), reply.get("title", ""), "", False))
    for section in action.get("sections") or []:
        for row in section.get("rows") or []:
            choices.append((row["id"], row["title"], row.get("description", ""), True))
    return {
        "to": str(message.get("to")),
        "at": message["at"],
        "text": message_text(message) or "",
        "choices": choices,
    }


async def _serve_fake(config: dict[str, Any]) -> None:
    """The child process: the fake Graph API; a long-poll feed of what it accepted
    (``GET /feed?after=N``: the accepted messages from the N-th on, within a second);
    and, as Meta does, a signed ``sent`` status webhook back for each accepted message.

    The statuses are posted here through aiohttp by a fixed number of posters, not by
    the fake's own ``status_webhook`` (one httpx task per message): with hundreds of
    them waiting for a busy bot, httpx's pool took the fake's whole core and the fake
    answered the bot's sends late enough to time them out.
    """
    from aiohttp import web

    from tests.fakes.graph_api import FakeGraphAPI

    counts = {"statuses": 0, "status_failures": 0}
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def watch(fake: FakeGraphAPI) -> None:
        seen = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await fake.wait_for(seen + 1, timeout=1.0)
            for record in fake.sent[seen:]:
                queue.put_nowait(record)
            seen = len(fake.sent)

    async def post_statuses(session: aiohttp.ClientSession, url: str) -> None:
        while True:
            record = await queue.get()
            raw = simulate.encode(
                simulate.status(
                    record["wamid"],
                    "sent",
                    str(record["to"]),
                    tracker=record.get("biz_opaque_callback_data"),
                    phone_number_id=PHONE_ID,
                )
            )
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": simulate.sign(raw, SECRET),
            }
            for attempt in range(8):  # Meta retries a webhook that was not acknowledged
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.post(url, data=raw, headers=headers) as resp:
                        await resp.read()
                        if resp.status == 200:
                            counts["statuses"] += 1
                            break
                await asyncio.sleep(0.2 * 2**attempt)
            else:
                counts["status_failures"] += 1

    async with (
        FakeGraphAPI.running(port=config["port"], token=TOKEN, latency=config["latency"]) as fake,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=config["status_posters"]),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as session,
    ):
        fake.cap = config.get("cap")

        async def feed(request: web.Request) -> web.Response:
            after = int(request.query.get("after", "0"))
            if len(fake.sent) <= after:
                with contextlib.suppress(TimeoutError):
                    await fake.wait_for(after + 1, timeout=1.0)
            return web.json_response(
                {
                    "messages": [_slim(m) for m in fake.sent[after : after + 5000]],
                    "rejected": len(fake.rejected),
                    "busiest_second": max(fake.arrivals.values(), default=0),
                    "over_cap": fake.over_cap,
                    "rejected_examples": [
                        str(e.get("error_data", e)) for _, e in fake.rejected[:3]
                    ],
                    **counts,
                    "statuses_queued": queue.qsize(),
                }
            )

        app = web.Application()
        app.router.add_get("/feed", feed)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", config["feed_port"]).start()
        tasks = []
        if config["status_url"]:
            tasks.append(asyncio.create_task(watch(fake)))
            tasks += [
                asyncio.create_task(post_statuses(session, config["status_url"]))
                for _ in range(config["status_posters"])
            ]
        try:
            await asyncio.Event().wait()
        finally:
            for task in tasks:
                task.cancel()
            await runner.cleanup()


# --------------------------------------------------------------------------- buyers


class SoldOut(Exception):
    pass


class Stuck(Exception):
    pass


SOLD_OUT_WORDS = re.compile(r"\bhabis\b|tidak tersedia|tinggal 0\b", re.IGNORECASE)
ORDER_MADE = re.compile(r"Pesanan \*(JP-[A-Z0-9]+)\* dibuat")
Expect = Callable[[dict[str, Any]], Any]


def _sold_out(message: dict[str, Any]) -> bool:
    if SOLD_OUT_WORDS.search(message["text"]):
        return True
    return any(
        title.startswith(SCARCE[:20]) and "habis" in desc.lower()
        for _, title, desc, _ in message["choices"]
    )


def _choice(title: str | re.Pattern[str], id_prefix: str | None = None) -> Expect:
    """A message offering a button or list row with this title (or this id prefix):
    that choice's (id, title, is a row)."""

    def match(message: dict[str, Any]) -> Any:
        for cid, got, _, is_row in message["choices"]:
            named = title.fullmatch(got) if isinstance(title, re.Pattern) else got == title
            if named or (id_prefix and cid.startswith(id_prefix)):
                return cid, got, is_row
        return None

    return match


def _asks(*needles: str) -> Expect:
    """A message whose text contains one of these (case-insensitive)."""

    def match(message: dict[str, Any]) -> Any:
        text = message["text"].lower()
        return message["text"] if any(n in text for n in needles) else None

    return match


@dataclasses.dataclass
class Stats:
    intake: list[float] = dataclasses.field(default_factory=list)  # seconds per POST
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)  # 0: no answer
    latency: list[tuple[str, float]] = dataclasses.field(default_factory=list)  # (step, s)
    first_post: float | None = None
    last_reply: float | None = None
    posts: int = 0


@dataclasses.dataclass
class Buyer:
    number: str
    name: str
    inbox: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    seen: int = 0
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    started: bool = False
    outcome: str = "unfinished"  # order, sold_out, stuck, unfinished, error
    step: str = "-"
    why: str = ""
    order: str | None = None

    def deliver(self, message: dict[str, Any]) -> None:
        self.inbox.append(message)
        self.arrived.set()

    async def wait(self, expect: Expect, deadline: float) -> tuple[Any, float]:
        """The first new message ``expect`` accepts (its value and arrival time at the
        fake) before ``deadline`` (monotonic); raises SoldOut or Stuck."""
        while True:
            while self.seen < len(self.inbox):
                message = self.inbox[self.seen]
                self.seen += 1
                if _sold_out(message):
                    raise SoldOut(message["at"])
                value = expect(message)
                if value is not None:
                    return value, message["at"]
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                last = self.inbox[-1]["text"] if self.inbox else "nothing at all"
                raise Stuck(f"last message: {last[:120]!r}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self.arrived.wait()


class Rush:
    def __init__(self, args: argparse.Namespace, rng: random.Random) -> None:
        self.args = args
        self.rng = rng
        self.stats = Stats()
        self.session: aiohttp.ClientSession | None = None

    async def post(self, buyer: Buyer, body: dict[str, Any], deadline: float) -> None:
        """Deliver one webhook as Meta would: signed, and again (same message id) after
        a short backoff while it is not acknowledged with a 200."""
        assert self.session is not None
        raw = simulate.encode(body)
        headers = {
            "X-Hub-Signature-256": simulate.sign(raw, SECRET),
            "Content-Type": "application/json",
        }
        for attempt in range(100):
            t0 = time.perf_counter()
            try:
                async with self.session.post(WEBHOOK, data=raw, headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            self.stats.intake.append(time.perf_counter() - t0)
            self.stats.statuses[status] += 1
            self.stats.posts += 1
            if status == 200:
                return
            pause = min(0.5 * 2**attempt, 8.0)
            if time.monotonic() + pause >= deadline:
                raise Stuck(f"webhook not acknowledged (last status {status or 'none'})")
            await asyncio.sleep(pause)

    async def step(self, buyer: Buyer, name: str, body: dict[str, Any], expect: Expect) -> Any:
        """Post one step's webhook and wait for the answer carrying the next step."""
        buyer.step = name
        buyer.started = True
        t0 = time.time()
        if self.stats.first_post is None:
            self.stats.first_post = t0
        deadline = time.monotonic() + self.args.step_timeout
        await self.post(buyer, body, deadline)
        try:
            value, at = await buyer.wait(expect, deadline)
        except SoldOut as told:
            self._answered(name, t0, told.args[0])
            raise
        self._answered(name, t0, at)
        return value

    def _answered(self, name: str, t0: float, at: float) -> None:
        self.stats.latency.append((name, max(0.0, at - t0)))
        self.stats.last_reply = max(self.stats.last_reply or at, at)

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(self.args.pause_min, self.args.pause_max))

    async def buyer(self, buyer: Buyer, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self._shop(buyer)
        except SoldOut:
            buyer.outcome = "sold_out"
        except Stuck as stuck:
            buyer.outcome, buyer.why = "stuck", str(stuck)
        except Exception as exc:  # a bench bug must not hide the other buyers' figures
            buyer.outcome, buyer.why = "error", f"{type(exc).__name__}: {exc}"

    async def _shop(self, b: Buyer) -> None:
        n, kw = b.number, {"name": b.name, "phone_number_id": PHONE_ID}

        def tap(choice: tuple[str, str, bool]) -> dict[str, Any]:
            cid, title, is_row = choice
            return simulate.tap(n, cid, title, as_list=is_row, **kw)

        def text(body: str) -> dict[str, Any]:
            return simulate.text(n, body, **kw)

        consent = _choice("Ya, kabari aku", "join:consent_yes:")
        pakai = _choice(re.compile(r"Pakai .+"), "join:name:")
        ask_name = _asks("namamu")

        def named(message: dict[str, Any]) -> Any:
            return pakai(message) or consent(message) or ask_name(message)

        got = await self.step(b, "join", text("JOIN DEMO"), named)
        await self.pause()
        if isinstance(got, str):  # no profile-name button: type the name
            got = await self.step(b, "name", text(b.name), consent)
            await self.pause()
        elif pakai({"choices": [(got[0], got[1], "", got[2])]}):
            got = await self.step(b, "name", tap(got), consent)
            await self.pause()
        got = await self.step(b, "consent", tap(got), _choice("Katalog", "menu:catalog"))
        await self.pause()
        got = await self.step(b, "catalog", tap(got), _choice(SCARCE[:24]))
        await self.pause()

        pesan, kembali = _choice("Pesan", "shop:order:"), _choice("Kembali", "cat:page:")

        def product(message: dict[str, Any]) -> Any:
            if pesan(message):
                return pesan(message)
            return "no-pesan" if kembali(message) else None

        got = await self.step(b, "product", tap(got), product)
        if got == "no-pesan":
            raise SoldOut
        await self.pause()
        got = await self.step(b, "order", tap(got), _choice("1", "shop:qty:1"))
        await self.pause()
        got = await self.step(b, "qty", tap(got), _choice("Lewati", "shop:skipnote:"))
        await self.pause()
        got = await self.step(b, "note", tap(got), _choice("Checkout", "shop:checkout:"))
        await self.pause()
        await self.step(b, "checkout", tap(got), _asks("nama penerima"))
        r = self.rng
        fields = [
            ("recipient", b.name, _asks("nomor hp penerima")),
            ("phone", "08" + "".join(r.choices("0123456789", k=10)), _asks("alamat lengkap")),
            (
                "street",
                f"Jl. {r.choice(STREETS)} No. {r.randint(1, 200)}, RT 0{r.randint(1, 9)}/RW "
                f"0{r.randint(1, 9)}, Kebayoran Baru",
                _asks("kota atau kabupaten"),
            ),
            ("city", r.choice(CITIES), _asks("kode pos?")),
            ("postal", f"{r.randint(10000, 99999)}", _choice("Benar", "addr:ok")),
        ]
        for name, value, expect in fields:
            await self.pause()
            got = await self.step(b, name, text(value), expect)
        await self.pause()
        got = await self.step(b, "address_ok", tap(got), _choice("Konfirmasi", "shop:confirm:"))
        await self.pause()

        def made(message: dict[str, Any]) -> Any:
            found = ORDER_MADE.search(message["text"])
            return found.group(1) if found else None

        b.order = await self.step(b, "confirm", tap(got), made)
        b.outcome = "order"


def _numbers(rng: random.Random, count: int) -> list[str]:
    seen: set[str] = set()
    while len(seen) < count:
        seen.add("62812" + "".join(rng.choices("0123456789", k=rng.randint(5, 7))))
    return list(seen)


def _feed_page(info: dict[str, Any]) -> Callable[[int, dict[str, Any]], None]:
    """What the feed says besides the messages, kept in ``info``."""

    def page(sent: int, data: dict[str, Any]) -> None:
        info["sent"] = sent
        for key in ("rejected", "rejected_examples", "statuses", "status_failures"):
            info[key] = data[key]
        info["busiest_second"], info["over_cap"] = data["busiest_second"], data["over_cap"]
        info["statuses_queued"] = data["statuses_queued"]

    return page


def _deliver(buyers: dict[str, Buyer], info: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """Each message to its buyer (counted in ``others`` when it is to someone else)."""

    def deliver(message: dict[str, Any]) -> None:
        buyer = buyers.get(message["to"].lstrip("+"))
        if buyer is not None:
            buyer.deliver(message)
        else:
            info["others"] += 1

    return deliver


# --------------------------------------------------------------------------- the run


async def _db(database: str, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    began = time.monotonic()
    # SIGTERM as Ctrl-C: cancel the run, so the finally blocks stop every child
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="jastipin-rush-"))
    procs = Processes(workdir)
    try:
        async with fresh_database(workdir, args.postgres) as database:
            try:
                result = await _measure(args, workdir, database, procs, began)
            finally:
                await procs.stop()
    finally:
        if args.redis:
            await _forget_redis_keys(args.redis, args.queue_prefix)
        if args.keep:
            print(f"kept {workdir} (logs, SQLite file)", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["run_seconds"] = round(time.monotonic() - began, 1)
    return result


async def _forget_redis_keys(url: str, prefix: str) -> None:
    """Delete the keys this run's processes left (Dramatiq heartbeats, pace counters)."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _measure(
    args: argparse.Namespace, workdir: Path, database: str, procs: Processes, began: float
) -> dict[str, Any]:
    ports = Ports.free()
    env = ports.env(database, workdir)
    if args.redis:
        env["REDIS_URL"] = args.redis
        env["QUEUE_PREFIX"] = args.queue_prefix  # queues and pace keys of this run only
    _progress(f"database {database.split('://')[0]}: migrating and seeding the demo")
    await run_cli(["db", "upgrade"], env)
    await run_cli(["demo"], env)
    rows = await _db(database, "SELECT id, stock FROM products WHERE name = :n", n=SCARCE)
    if len(rows) != 1:
        raise RuntimeError(f"expected one demo product {SCARCE!r}, found {len(rows)}")
    seeded = rows[0].stock
    if seeded != SCARCE_STOCK:
        await _db(
            database, "UPDATE products SET stock = :s WHERE id = :i", s=SCARCE_STOCK, i=rows[0].id
        )

    fake_pid = await start_fake(
        procs,
        ports,
        latency=args.graph_latency,
        statuses=not args.no_statuses,
        status_posters=args.status_posters,
        cap=args.fake_cap,
    )
    serve_env = dict(env)
    if args.workers:
        serve_env["INBOX_INLINE"] = "0"  # the API only stores; the workers process
    elif args.senders:
        serve_env["OUTBOX_INLINE"] = "0"  # the API converses; the workers send
    serve_pid = await procs.start("serve", [JASTIPIN, "serve"], serve_env)
    worker_pids = [
        await procs.start(f"worker{i + 1}", [JASTIPIN, "worker"], env)
        for i in range(args.workers or args.senders)
    ]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as probe:
        await until_up(probe, procs, "fake", f"{ports.fake_base}/_fake/stats")
        await until_up(probe, procs, "serve", f"http://127.0.0.1:{ports.serve}/health")

    rng = random.Random(args.seed)
    buyers = [
        Buyer(number, f"{rng.choice(FIRST)} {rng.choice(LAST)}")
        for number in _numbers(rng, args.buyers)
    ]
    by_number = {b.number: b for b in buyers}
    info: dict[str, Any] = {"others": 0, "sent": 0, "rejected": 0, "statuses": 0}
    info.update(status_failures=0, statuses_queued=0, busiest_second=0, over_cap=0)
    info["rejected_examples"] = []
    rush = Rush(args, rng)
    feeder = asyncio.create_task(
        feed(ports.feed_base, _deliver(by_number, info), _feed_page(info))
    )
    connector = aiohttp.TCPConnector(limit=args.connections)
    rush.session = aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{ports.serve}",
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=args.step_timeout),
    )
    layout = (
        f"API stores, {args.workers} worker(s) process (INBOX_INLINE=0)"
        if args.workers
        else f"API processes inline, {args.senders} worker(s) send (OUTBOX_INLINE=0)"
        if args.senders
        else "API processes inline"
    )
    layout += f"; {'Redis ' + args.redis if args.redis else 'no Redis'}"
    layout += "; status webhooks " + ("off" if args.no_statuses else "on")
    _progress(f"rush: {args.buyers} buyers over {args.over:g} s ({layout})")
    rush_start = time.monotonic()
    try:
        tasks = [
            asyncio.create_task(rush.buyer(b, i * args.over / max(1, args.buyers)))
            for i, b in enumerate(buyers)
        ]
        pending = set(tasks)
        stop_at = began + args.deadline
        while pending and time.monotonic() < stop_at:
            _, pending = await asyncio.wait(
                pending, timeout=min(10.0, max(0.0, stop_at - time.monotonic()))
            )
            outcomes = Counter(b.outcome for b in buyers)
            _progress(
                f"  {time.monotonic() - rush_start:5.0f} s: "
                + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
                + f"; bot sent {info['sent']}"
            )
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        rush_seconds = time.monotonic() - rush_start
        memory = {"serve": proc_figures(serve_pid)}
        for i, pid in enumerate(worker_pids):
            memory[f"worker{i + 1}"] = proc_figures(pid)
        memory["fake"] = proc_figures(fake_pid)  # CPU only: is the fake keeping up?
        memory["bench"] = proc_figures(os.getpid())
    finally:
        await rush.session.close()
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    await procs.stop()  # before counting: nothing is written behind our back

    counted = await _db(
        database,
        "SELECT COUNT(DISTINCT o.id) AS orders, COALESCE(SUM(i.quantity), 0) AS units "
        "FROM orders o JOIN order_items i ON i.order_id = o.id "
        "JOIN products p ON p.id = i.product_id WHERE p.name = :n AND o.status <> 'cancelled'",
        n=SCARCE,
    )
    left = await _db(database, "SELECT stock FROM products WHERE name = :n", n=SCARCE)
    log_lines, log_examples = {}, []
    for name, _ in procs.procs:  # LOG_LEVEL=WARNING: every line is a warning or worse
        lines = (workdir / f"{name}.log").read_text(errors="replace").splitlines()
        log_lines[name] = len(lines)
        log_examples += [_log_example(name, line) for line in lines[:2]]
    return _figures(
        args,
        database,
        layout,
        buyers,
        rush.stats,
        info,
        memory,
        seeded=seeded,
        orders=int(counted[0].orders),
        units=int(counted[0].units),
        stock_left=left[0].stock,
        rush_seconds=rush_seconds,
        log_lines=log_lines,
        stopped=dict(procs.stopped),
        log_examples=log_examples[:6],
    )


def _log_example(name: str, line: str) -> str:
    """A logged line, short: its message and the last line of its traceback (the
    exception itself), which a cut of the JSON line would lose."""
    try:
        record = json.loads(line)
    except ValueError:
        return f"{name}: {line[:200]}"
    exc = str(record.get("exc") or "").strip().splitlines()
    return f"{name}: {record.get('msg')}" + (f" — {exc[-1][:300]}" if exc else "")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def _figures(
    args: argparse.Namespace,
    database: str,
    layout: str,
    buyers: list[Buyer],
    stats: Stats,
    info: dict[str, Any],
    memory: dict[str, tuple[float | None, float | None]],
    **extra: Any,
) -> dict[str, Any]:
    outcomes = Counter(b.outcome for b in buyers)
    latencies = [s for _, s in stats.latency]
    per_step: dict[str, list[float]] = {}
    for step, s in stats.latency:
        per_step.setdefault(step, []).append(s)
    span = (
        (stats.last_reply - stats.first_post)
        if stats.first_post and stats.last_reply and stats.last_reply > stats.first_post
        else float("nan")
    )
    ms = lambda s: round(s * 1000, 1)  # noqa: E731
    return {
        "database": database.split("://")[0].split("+")[0],
        "layout": layout,
        "buyers": args.buyers,
        "over_seconds": args.over,
        "pause_seconds": [args.pause_min, args.pause_max],
        "step_timeout_seconds": args.step_timeout,
        "started": sum(b.started for b in buyers),
        "finished_with_order": outcomes["order"],
        "finished_sold_out": outcomes["sold_out"],
        "stuck": outcomes["stuck"],
        "unfinished_at_deadline": outcomes["unfinished"],
        "bench_errors": outcomes["error"],
        "sold_out_by_step": dict(Counter(b.step for b in buyers if b.outcome == "sold_out")),
        "stuck_by_step": dict(Counter(b.step for b in buyers if b.outcome == "stuck")),
        "unfinished_by_step": dict(Counter(b.step for b in buyers if b.outcome == "unfinished")),
        "stuck_examples": sorted({b.why for b in buyers if b.outcome in ("stuck", "error")})[:5],
        "scarce_product": SCARCE,
        "scarce_stock_seeded": extra["seeded"],
        "scarce_orders": extra["orders"],
        "scarce_units": extra["units"],
        "scarce_stock_left": extra["stock_left"],
        "steps_answered": len(latencies),
        "reply_ms": {
            "p50": ms(_pct(latencies, 0.50)),
            "p95": ms(_pct(latencies, 0.95)),
            "p99": ms(_pct(latencies, 0.99)),
            "max": ms(max(latencies, default=float("nan"))),
        },
        "steps_over_5s": sum(s > 5 for s in latencies),
        "steps_over_30s": sum(s > 30 for s in latencies),
        "per_step_ms": {
            step: {
                "n": len(v),
                "p50": ms(_pct(v, 0.5)),
                "p95": ms(_pct(v, 0.95)),
                "max": ms(max(v)),
            }
            for step, v in per_step.items()
        },
        "webhooks_posted": stats.posts,
        "webhook_statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "webhooks_non_200": sum(v for k, v in stats.statuses.items() if k != 200),
        "intake_ms": {
            "p50": ms(_pct(stats.intake, 0.50)),
            "p99": ms(_pct(stats.intake, 0.99)),
            "max": ms(max(stats.intake, default=float("nan"))),
        },
        "end_to_end_msgs_per_s": round(stats.posts / span, 1) if span == span else None,
        "first_post_to_last_reply_s": round(span, 1) if span == span else None,
        "bot_messages_sent": info["sent"],
        "bot_messages_to_others": info["others"],
        "bot_messages_rejected": info["rejected"],
        "fake_cap": args.fake_cap,
        "busiest_second_at_fake": info["busiest_second"],
        "answered_130429_past_cap": info["over_cap"],
        # the least time the cap allows for this many sends (each second at most cap)
        "floor_at_cap_s": round(info["sent"] / args.fake_cap, 1) if args.fake_cap else None,
        # the serving process's CPU per answered step (all it did: intake, processing,
        # sending, status webhooks), the figure that says whether a change made it lighter
        "serve_cpu_ms_per_step": (
            round(1000 * memory["serve"][1] / len(latencies), 2)
            if memory.get("serve") and memory["serve"][1] and latencies
            else None
        ),
        "rejected_examples": info["rejected_examples"],
        "status_webhooks_posted": info["statuses"],
        "status_webhooks_failed": info["status_failures"],
        "status_webhooks_queued_at_end": info["statuses_queued"],
        "peak_rss_mb": {
            k: round(v[0], 1) if v[0] else None
            for k, v in memory.items()
            if k not in ("fake", "bench")
        },
        "cpu_seconds": {k: round(v[1], 1) if v[1] else None for k, v in memory.items()},
        "rush_seconds": round(extra["rush_seconds"], 1),
        "log_lines": extra["log_lines"],
        "shutdown": extra["stopped"],
        "log_examples": extra["log_examples"],
    }


def _print(r: dict[str, Any]) -> None:
    def counts(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1]))

    print(f"database             {r['database']}; {r['layout']}")
    print(
        f"buyers               {r['buyers']} over {r['over_seconds']:g} s, pause "
        f"{r['pause_seconds'][0]:g}–{r['pause_seconds'][1]:g} s, "
        f"step timeout {r['step_timeout_seconds']:g} s"
    )
    print(f"  started            {r['started']}")
    print(f"  with an order      {r['finished_with_order']}")
    told = f"  (at {counts(r['sold_out_by_step'])})" if r["sold_out_by_step"] else ""
    print(f"  told sold out      {r['finished_sold_out']}{told}")
    stuck = f"  ({counts(r['stuck_by_step'])})" if r["stuck_by_step"] else ""
    print(f"  stuck              {r['stuck']}{stuck}")
    if r["unfinished_at_deadline"]:
        print(
            f"  cut off (deadline) {r['unfinished_at_deadline']}"
            f"  ({counts(r['unfinished_by_step'])})"
        )
    if r["bench_errors"]:
        print(f"  bench errors       {r['bench_errors']}")
    for why in r["stuck_examples"]:
        print(f"    e.g. {why}")
    print(
        f"scarce product       {r['scarce_product']}: {r['scarce_orders']} orders not cancelled "
        f"({r['scarce_units']} units), stock {r['scarce_stock_seeded']} → "
        f"{r['scarce_stock_left']}"
    )
    lat = r["reply_ms"]
    print(
        f"reply latency ms     p50 {lat['p50']:.0f}  p95 {lat['p95']:.0f}  p99 {lat['p99']:.0f}"
        f"  max {lat['max']:.0f}  ({r['steps_answered']} steps answered)"
    )
    print(f"slow steps           > 5 s: {r['steps_over_5s']}   > 30 s: {r['steps_over_30s']}")
    print(
        f"webhooks             {r['webhooks_posted']} posted, non-200: {r['webhooks_non_200']}"
        f"  (statuses {r['webhook_statuses']})"
    )
    intake = r["intake_ms"]
    print(
        f"intake ms            p50 {intake['p50']:.1f}  p99 {intake['p99']:.1f}  "
        f"max {intake['max']:.1f}"
    )
    e2e = r["end_to_end_msgs_per_s"]
    print(
        f"end-to-end msgs/s    {e2e if e2e is not None else 'n/a'}  (first post to last reply "
        f"{r['first_post_to_last_reply_s']} s)"
    )
    print(
        f"bot sent             {r['bot_messages_sent']} messages ({r['bot_messages_to_others']}"
        f" not to buyers), rejected by the fake {r['bot_messages_rejected']}, "
        f"status webhooks posted {r['status_webhooks_posted']}"
        + (
            f" (failed {r['status_webhooks_failed']}, still queued "
            f"{r['status_webhooks_queued_at_end']})"
            if r["status_webhooks_failed"] or r["status_webhooks_queued_at_end"]
            else ""
        )
    )
    print(
        f"at the fake          busiest second {r['busiest_second_at_fake']} sends; cap "
        f"{r['fake_cap'] or 'none'}, answered 130429 past it {r['answered_130429_past_cap']}"
        + (
            f"; the cap's floor for these sends {r['floor_at_cap_s']} s"
            if r["floor_at_cap_s"] is not None
            else ""
        )
    )
    for example in r["rejected_examples"]:
        print(f"    e.g. {example}")
    print(
        "peak RSS MB          "
        + "  ".join(f"{k} {v if v is not None else '?'}" for k, v in r["peak_rss_mb"].items())
    )
    print(
        "CPU s                "
        + "  ".join(f"{k} {v if v is not None else '?'}" for k, v in r["cpu_seconds"].items())
        + (
            f"  (serve {r['serve_cpu_ms_per_step']} ms per answered step)"
            if r["serve_cpu_ms_per_step"] is not None
            else ""
        )
    )
    print(
        "log lines (WARNING+) "
        + "  ".join(f"{k} {v}" for k, v in r["log_lines"].items() if k != "fake")
    )
    for example in r["log_examples"]:
        print(f"    e.g. {example}")
    print("shutdown (SIGTERM)   " + "  ".join(f"{k} {v}" for k, v in r["shutdown"].items()))
    print(f"run time             {r['run_seconds']} s (rush {r['rush_seconds']} s)")
    print("per step             answered   p50 ms   p95 ms   max ms")
    for step, s in r["per_step_ms"].items():
        print(f"  {step:<18} {s['n']:>8} {s['p50']:>8.0f} {s['p95']:>8.0f} {s['max']:>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=500)
    parser.add_argument("--over", type=float, default=30, help="seconds the arrivals spread over")
    parser.add_argument("--pause-min", type=float, default=0.5, help="a person's pause (s)")
    parser.add_argument("--pause-max", type=float, default=2.0)
    parser.add_argument(
        "--step-timeout", type=float, default=60, help="a step unanswered this long is stuck"
    )
    parser.add_argument(
        "--deadline", type=float, default=300, help="stop the run this many seconds after start"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="a Postgres server URL (e.g. postgresql://postgres@127.0.0.1/test); the bench "
        "creates and drops a scratch database there (default: a fresh SQLite file)",
    )
    parser.add_argument(
        "--senders",
        type=int,
        default=0,
        help="run N `jastipin worker` processes that send while the API processes inline "
        "(OUTBOX_INLINE=0 on the API)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run N `jastipin worker` processes and let the API only store (INBOX_INLINE=0)",
    )
    parser.add_argument("--redis", metavar="URL", help="REDIS_URL for the served processes")
    parser.add_argument(
        "--graph-latency", type=float, default=0.0, help="seconds the fake takes per send"
    )
    parser.add_argument(
        "--fake-cap",
        type=int,
        default=None,
        help="the fake answers 130429 past this many sends in a second, as Meta does at "
        "the number's tier (the bot's cap: BROADCAST_NUMBER_CAP in the environment)",
    )
    parser.add_argument(
        "--no-statuses", action="store_true", help="the fake posts no status webhooks back"
    )
    parser.add_argument(
        "--status-posters", type=int, default=32, help="status webhooks in flight at once"
    )
    parser.add_argument("--connections", type=int, default=200, help="webhook connections")
    parser.add_argument("--seed", type=int, default=1, help="numbers, names, pauses")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--serve-fake", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.queue_prefix = f"bench-rush-{secrets.token_hex(3)}"
    if args.serve_fake:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_fake(json.loads(args.serve_fake)))
        return
    try:
        result = asyncio.run(_run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: every child process stopped", file=sys.stderr)
        raise SystemExit(130) from None
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print(result)


if __name__ == "__main__":
    main()

"""Profile: SQL statements and CPU per inbound message along the buyer's journey.

Runs the real app in-process (SQLite by default, ``--postgres URL`` for Postgres) behind
a fake Graph API, walks ``--buyers`` buyers through JOIN → name → consent → catalogue →
product → quantity → note → checkout → address → confirm, and prints for each step the
SQL statements it cost (counted with an engine event) and, with ``--cprofile FILE``, a
cProfile of the whole run. Not a test: it measures.

    .venv/bin/python scripts/profile_journey.py --buyers 20
    .venv/bin/python scripts/profile_journey.py --buyers 50 --cprofile /tmp/journey.prof
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from sqlalchemy import event  # noqa: E402

from bot import simulate  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.keys import CIPHER, DB, OUTBOX, PROCESSOR  # noqa: E402
from bot.settings import Settings  # noqa: E402
from storage.demo import seed_demo  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.fakes.graph_api import FakeGraphAPI  # noqa: E402

SECRET = "profile-secret"
TOKEN = "profile-token"
ADDRESS = ["Rina", "081234567890", "Jalan Melati No 5 RT 1", "Jakarta", "12345"]


def _choice(message: dict, title: str) -> tuple[str, bool] | None:
    inter = message.get("interactive") or {}
    action = inter.get("action") or {}
    if inter.get("type") == "button":
        for b in action["buttons"]:
            if b["reply"]["title"].startswith(title):
                return b["reply"]["id"], False
    if inter.get("type") == "list":
        for s in action["sections"]:
            for r in s["rows"]:
                if r["title"].startswith(title):
                    return r["id"], True
    return None


async def run(args: argparse.Namespace) -> None:
    workdir, url = args.workdir, args.url
    counts: collections.Counter[str] = collections.Counter()
    steps: collections.Counter[str] = collections.Counter()
    current: dict[str, Any] = {"step": "setup", "buyer": 0}
    misses: collections.Counter[str] = collections.Counter()
    async with FakeGraphAPI.running(token=TOKEN) as fake:
        settings = Settings(
            database_url=url,
            data_dir=workdir,
            media_dir=workdir / "media",
            wa_access_token=TOKEN,
            wa_phone_id="1234567890",
            wa_app_secret=SECRET,
            wa_verify_token="v",
            wa_api_base=fake.base_url,
            pii_key=secrets.token_bytes(32),
        )
        app = create_app(settings, run_background=False)
        async with TestClient(TestServer(app)) as client:
            db = app[DB]
            async with db.transaction() as session:
                await seed_demo(session, app[CIPHER])

            def count(*_a: object) -> None:
                counts[current["step"]] += 1

            event.listen(db.engine.sync_engine, "before_cursor_execute", count)

            def compiled(
                _conn: object, _cur: object, stmt: str, _p: object, ctx: Any, _m: bool
            ) -> None:
                # after the first buyer every statement should come from the compiled cache;
                # one compiled again each time costs SQLAlchemy's whole compiler per message
                if current["buyer"] and ctx.cache_hit in (
                    ctx.cache_hit.CACHE_MISS,
                    ctx.cache_hit.NO_CACHE_KEY,
                    ctx.cache_hit.CACHING_DISABLED,
                ):
                    misses[" ".join(stmt.split())[:160]] += 1

            event.listen(db.engine.sync_engine, "after_cursor_execute", compiled)

            async def post(body: dict, step: str) -> list[dict]:
                to = body["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"]
                before = len(fake.sent_to(to))
                current["step"] = step
                raw = simulate.encode(body)
                sig = simulate.sign(raw, SECRET)
                resp = await client.post(
                    "/api/webhooks/whatsapp",
                    data=raw,
                    headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
                )
                assert resp.status == 200
                await app[PROCESSOR].drain()
                current["step"] = step + " (outbox)"
                await app[OUTBOX].flush()
                steps[step] += 1
                return fake.sent_to(to)[before:]

            async def tap(phone: str, last: list[dict], title: str, step: str) -> list[dict]:
                for message in reversed(last):
                    found = _choice(message, title)
                    if found:
                        body = simulate.tap(phone, found[0], title, as_list=found[1])
                        return await post(body, step)
                raise RuntimeError(f"{step}: no {title!r} in {last}")

            profiler = cProfile.Profile() if args.cprofile else None
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            for n in range(args.buyers):
                current["buyer"] = n
                phone = f"62812{n:07d}"
                last = await post(simulate.text(phone, "JOIN DEMO", name=f"Buyer {n}"), "join")
                last = await tap(phone, last, "Pakai", "name")
                last = await tap(phone, last, "Ya, kabari", "consent")
                last = await tap(phone, last, "Katalog", "catalogue")
                last = await tap(phone, last, "Daiso", "product")  # stock 50
                last = await tap(phone, last, "Pesan", "order")
                last = await tap(phone, last, "1", "quantity")
                last = await tap(phone, last, "Lewati", "note")
                last = await tap(phone, last, "Checkout", "checkout")
                for i, field in enumerate(ADDRESS):
                    last = await post(simulate.text(phone, field), f"address {i + 1}")
                last = await tap(phone, last, "Benar", "address ok")
                last = await tap(phone, last, "Konfirmasi", "confirm")
            elapsed = time.perf_counter() - start
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.cprofile)
    messages = sum(steps.values())
    print(f"database: {'postgres' if args.postgres else 'sqlite'}, buyers: {args.buyers}")
    print(f"{messages} messages in {elapsed:.2f} s, one at a time: {messages / elapsed:.1f}/s")
    total = 0
    print(f"{'step':<22}{'statements/message':>20}{'outbox statements':>20}")
    for step in steps:
        per = counts[step] / steps[step]
        out = counts[step + " (outbox)"] / steps[step]
        total += counts[step] + counts[step + " (outbox)"]
        print(f"{step:<22}{per:>20.1f}{out:>20.1f}")
    print(f"mean statements per message (processing + sending): {total / messages:.1f}")
    print(f"statements compiled again after the first buyer: {sum(misses.values())}")
    for stmt, times in misses.most_common(15):
        print(f"{times:>6}  {stmt}")
    if args.cprofile:
        stats = pstats.Stats(args.cprofile)
        stats.sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=20)
    parser.add_argument("--postgres", help="a Postgres URL (a scratch database you own)")
    parser.add_argument("--cprofile", help="write a cProfile of the run to this file")
    args = parser.parse_args()
    args.workdir = Path(tempfile.mkdtemp(prefix="jastipin-profile-"))
    args.url = args.postgres or f"sqlite+aiosqlite:///{args.workdir}/profile.db"
    upgrade(args.url)  # alembic runs its own event loop: before ours
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

"""Test harness: the real app, on SQLite and on the machine's Postgres, with a fake Graph
API behind ``WA_API_BASE`` (the real ``pywa_async`` client talks to it over HTTP)."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import shutil
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from moto.server import ThreadedMotoServer

from bot import simulate
from bot.app import create_app
from bot.keys import CIPHER, DB, OUTBOX, PROCESSOR
from bot.router import FLOWS
from bot.settings import Settings
from storage.crypto import PiiCipher
from storage.db import Database
from storage.demo import seed_demo
from storage.migrate import upgrade
from storage.models import Base
from storage.sealed import activate
from tests.fakes.graph_api import FakeGraphAPI

# the helper modules' asserts say what they compared, as a test module's do
pytest.register_assert_rewrite(
    "tests.journeys",
    "tests.admin_pages",
    "tests.jastiper_pages",
    "tests.samples",
    "tests.backups",
    "tests.ops_texts",
    "tests.stack",
    "tests.images",
    "tests.compose_stack",
    "tests.browser",
    "tests.reliability.privacy",
    "tests.reliability.sentry",
)

PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
# Meta posts an update again after a 5xx; the tests do so up to this many times
META_RETRIES = 8
META_RETRY_PAUSE = 0.5
ACCESS_TOKEN = "test-access-token"
PHONE_ID = "1122334455667"
REQUIRE_SERVICES = os.environ.get("JASTIPIN_REQUIRE_SERVICES") == "1" or (
    os.environ.get("CI") == "true"
)


@pytest.hookimpl(wrapper=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Iterator[Any]:
    """When pytest-timeout's SIGALRM ends an async test, first print where every asyncio
    task was waiting (the main thread's own stack is only the event loop's ``select``),
    and make sure the test itself stops: an exception raised by a signal handler lands in
    whatever coroutine runs at that instant (say a request handler of the fake Graph API,
    which answers 500 and goes on), so when another task is running, the test's task is
    cancelled instead, with a second alarm as a backstop."""
    result = yield
    fail = signal.getsignal(signal.SIGALRM)
    if settings.method != "signal" or not callable(fail):
        return result
    fired: list[bool] = []

    def dump_tasks_then_fail(signum: int, frame: Any) -> None:
        loop = asyncio._get_running_loop()
        if loop is None or fired:
            fail(signum, frame)
            return
        fired.append(True)
        terminal = item.config.get_terminal_writer()
        terminal.sep("+", title=f"Timeout: asyncio tasks of {item.nodeid}")
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            out = io.StringIO()
            task.print_stack(file=out)
            terminal.write(out.getvalue() + "\n")
        name = getattr(item, "originalname", item.name)
        test = next((t for t in tasks if getattr(t.get_coro(), "__name__", "") == name), None)
        running = asyncio.current_task(loop)
        if test is None or running is None or running is test:
            fail(signum, frame)  # raised in the loop's select or in the test itself
            return
        test.cancel(f"Timeout ({settings.timeout}s) from pytest-timeout")
        signal.setitimer(signal.ITIMER_REAL, 15)

    signal.signal(signal.SIGALRM, dump_tasks_then_fail)
    return result


@pytest.fixture(autouse=True)
def _pii_cipher() -> PiiCipher:
    """Sealed columns need an active cipher; a test building an app activates its own."""
    return activate(PiiCipher(secrets.token_bytes(32)))


def _pg_missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"PostgreSQL is required here (CI): {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


async def _pg_exec(sql: str) -> None:
    import asyncpg

    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh Postgres database for this test session, migrated once."""
    name = f"jastipin_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # connection refused, auth, …
        _pg_missing(str(exc))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs on both databases."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_truncate(url))
    return url


async def _truncate(url: str) -> None:
    db = Database(url)
    try:
        names = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
        async with db.transaction() as session:
            from sqlalchemy import text

            await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await db.dispose()


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": tmp_path,
        "media_dir": tmp_path / "media",
        "wa_access_token": ACCESS_TOKEN,
        "wa_phone_id": PHONE_ID,
        "wa_app_secret": APP_SECRET,
        "wa_verify_token": VERIFY_TOKEN,
        "wa_api_base": "http://127.0.0.1:9",
        "pii_key": secrets.token_bytes(32),
        "outbox_poll_seconds": 0.05,
        # a pass of the outbox sends a tenth of a second's worth of a broadcast: enough
        # for a test's whole audience at once (the pace itself is tested on its own)
        "broadcast_rate_limit": 1000.0,
        # an upgraded number's tier: the cap is counted in one process too (InProcessPace)
        # and tested at the default tier in tests/test_broadcasts.py
        "broadcast_number_cap": 1000,
        # a test drives a user far faster than anyone types (dozens of steps a second):
        # the per-user limit is high here and tested at its default in
        # tests/reliability/test_limits.py
        "user_rate_limit": 1000,
    }
    values.update(overrides)
    return Settings(**values)


class Harness:
    """The running app plus the fake Graph API, with conversation helpers."""

    def __init__(self, client: TestClient, fake: FakeGraphAPI, settings: Settings) -> None:
        self.client = client
        self.fake = fake
        self.settings = settings
        self.app: web.Application = client.app  # type: ignore[assignment]
        self.names: dict[str, str] = {}  # the WhatsApp profile name each phone sends
        self.retried_503 = 0  # posts answered 503 and posted again, as Meta would
        self._settling = 0  # sends and settles of this test under way (gather runs several)

    @property
    def db(self) -> Database:
        return self.app[DB]

    @property
    def cipher(self) -> PiiCipher:
        return self.app[CIPHER]

    async def post(
        self, body: dict[str, Any] | bytes, *, signed: bool = True, request_id: str | None = None
    ) -> Any:
        raw = body if isinstance(body, bytes) else simulate.encode(body)
        headers = {"Content-Type": "application/json"}
        if request_id is not None:  # as a proxy in front of the app would set it
            headers["X-Request-Id"] = request_id
        if signed:
            headers["X-Hub-Signature-256"] = simulate.sign(raw, APP_SECRET)
        return await self.client.post("/api/webhooks/whatsapp", data=raw, headers=headers)

    async def settle(self) -> None:
        """Let every stored unit be processed and every due reply be sent; then (unless
        another ``send`` of this test is still under way) no flow machine holds a model."""
        self._settling += 1
        try:
            await self.app[PROCESSOR].drain()
            await self.app[OUTBOX].flush()
        finally:
            self._settling -= 1
        if not self._settling:
            assert_no_flow_models()

    async def send(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Post a user's update and return what the bot sent to that user because of it."""
        to = body["entry"][0]["changes"][0]["value"]["contacts"][0].get("wa_id")
        before = len(self.fake.sent_to(to))
        self._settling += 1  # from the post on: its update may be in a flow
        try:
            resp = await self.post(body)
            # as Meta does: a 503 (the store's lock wait ran out on a busy machine) is
            # posted again; its unit, if committed late after all, is then a duplicate
            for _ in range(META_RETRIES):
                if resp.status != 503:
                    break
                self.retried_503 += 1
                await asyncio.sleep(META_RETRY_PAUSE)
                resp = await self.post(body)
            assert resp.status == 200, await resp.text()
            await self.settle()
        finally:
            self._settling -= 1
        if not self._settling:
            assert_no_flow_models()
        return self.fake.sent_to(to)[before:]

    def _name(self, phone: str, kw: dict[str, Any]) -> None:
        if "name" in kw:
            self.names[phone] = kw["name"]
        elif phone in self.names:
            kw["name"] = self.names[phone]

    async def say(self, phone: str, text: str, **kw: Any) -> list[str]:
        self._name(phone, kw)
        sent = await self.send(simulate.text(phone, text, **kw))
        return [_text_of(m) for m in sent]

    async def tap(self, phone: str, payload_id: str, title: str = "tap", **kw: Any) -> list[str]:
        self._name(phone, kw)
        sent = await self.send(simulate.tap(phone, payload_id, title, **kw))
        return [_text_of(m) for m in sent]

    def last_choices(self, phone: str) -> list[tuple[str, str]]:
        """(title, id) of the buttons / rows in the last message sent to ``phone``."""
        message = self.fake.sent_to(phone)[-1]
        inter = message.get("interactive") or {}
        action = inter.get("action") or {}
        if inter.get("type") == "button":
            return [(b["reply"]["title"], b["reply"]["id"]) for b in action["buttons"]]
        if inter.get("type") == "list":
            return [(r["title"], r["id"]) for s in action["sections"] for r in s["rows"]]
        return []

    async def tap_title(self, phone: str, title: str) -> list[str]:
        """Tap the button or row titled ``title`` in the last message."""
        for t, payload_id in self.last_choices(phone):
            if t == title:
                message = self.fake.sent_to(phone)[-1]
                as_list = message.get("interactive", {}).get("type") == "list"
                return await self.tap(phone, payload_id, t, as_list=as_list)
        raise AssertionError(f"no choice {title!r} in {self.last_choices(phone)}")

    async def seed_demo(self) -> None:
        async with self.db.transaction() as session:
            await seed_demo(session, self.cipher)


def assert_no_flow_models() -> None:
    """A conversation is attached to its flow's machine for one update only: once no
    update is being handled, every machine is empty (a model left behind is a leak that
    grows with every update, and makes each later one slower)."""
    left = {name: len(flow.machine.models) for name, (flow, _h) in FLOWS.items()}
    assert not any(left.values()), f"flow machines still hold models after the update: {left}"


def _text_of(message: dict[str, Any]) -> str:
    kind = message.get("type")
    if kind == "text":
        return str(message["text"]["body"])
    if kind == "interactive":
        return str(message["interactive"]["body"]["text"])
    if kind in ("image", "document"):
        return str(message[kind].get("caption", ""))
    return ""


@pytest.fixture
async def fake_graph() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI.running(token=ACCESS_TOKEN) as fake:
        yield fake


@pytest.fixture
async def harness(
    database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> AsyncIterator[Harness]:
    settings = make_settings(database_url, tmp_path, wa_api_base=fake_graph.base_url)
    app = create_app(settings, run_background=False)
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, fake_graph, settings)
    assert_no_flow_models()  # also after updates posted without a settle


def phone() -> str:
    """A fresh Indonesian number for one test's buyer."""
    return "628" + str(uuid.uuid4().int)[:10]


# Dummy credentials for the local moto server only; passed explicitly, never via env.
ACCESS_KEY = "moto-test-access-key"
SECRET_KEY = "moto-test-secret-key"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on a free local port, for the whole session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    """A fresh, empty bucket for one test."""
    name = f"jastipin-test-{secrets.token_hex(4)}"
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )
    client.create_bucket(Bucket=name)
    return name


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_client() -> AsyncIterator[Any]:
    """An asyncio Redis client on the machine's Redis: a failure under CI, a skip
    elsewhere when there is none."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # no Redis here
        await client.aclose()
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip("no Redis on 127.0.0.1:6379")
    try:
        yield client
    finally:
        await client.aclose()


async def user_named(session: Any, name: str) -> int:
    """The id of the user whose display name is ``name`` (names are sealed: no SQL
    filter can match them, so this reads and compares in Python)."""
    from sqlalchemy import select

    from storage.models import User

    rows = (await session.execute(select(User.id, User.display_name))).all()
    (found,) = [uid for uid, display in rows if display == name]
    return int(found)

"""The image and the processes compose runs, started for real by the test suite (not only
read): the product image is built on a Debian bookworm base made here with debootstrap
(no image registry is reachable on these machines; the Dockerfile takes its base as the
build argument ``PYTHON_IMAGE``), then run as compose runs it — ``db upgrade``, the API
with ``OUTBOX_INLINE=0`` and a worker that sends — against this machine's Postgres and
Redis and the fake Graph API: a signed webhook is answered through the worker,
``jastipin check smoke`` passes inside the container, and both containers stop on SIGTERM
with exit code 0.

Needs Debian's ``docker.io`` (dockerd running) and ``debootstrap``; ``.ci/run`` installs
and starts them. Where no engine can run, the test says so in one line and skips: the
rest of the suite does not depend on it. The compose file itself, with Postgres, Redis
and the monitoring profile from local images, is started by tests/test_compose_stack.py."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from bot import simulate
from tests.conftest import (
    ACCESS_TOKEN,
    APP_SECRET,
    PG_ADMIN_URL,
    PHONE_ID,
    VERIFY_TOKEN,
    _pg_exec,
    phone,
)
from tests.fakes.graph_api import FakeGraphAPI
from tests.images import docker as _docker
from tests.images import product_image

# Building the base (debootstrap) and the image (pip from the lock) the first time on a
# machine takes minutes; both are cached by the engine afterwards.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def image() -> str:
    """The product image built on a local Debian base (each built once per machine)."""
    return product_image()


@pytest.fixture
def pg_database() -> Iterator[str]:
    name = f"jastipin_img_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+asyncpg://", "postgresql://")
    yield f"{base}/{name}"
    asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Containers:
    """Containers on the host's network (they reach Postgres, Redis and the fake Graph
    API on 127.0.0.1 as compose's services reach each other by name)."""

    def __init__(self, image: str, env: dict[str, str]) -> None:
        self.image = image
        self.env = env
        self.names: list[str] = []

    def _env_args(self, extra: dict[str, str]) -> list[str]:
        args: list[str] = []
        for key, value in {**self.env, **extra}.items():
            args += ["-e", f"{key}={value}"]
        return args

    async def run(self, *argv: str) -> None:
        await asyncio.to_thread(
            _docker, "run", "--rm", "--network", "host", *self._env_args({}), self.image, *argv
        )

    async def start(self, name: str, *argv: str, **extra: str) -> None:
        full = f"{name}-{secrets.token_hex(3)}"
        await asyncio.to_thread(
            _docker,
            "run",
            "-d",
            "--name",
            full,
            "--network",
            "host",
            *self._env_args(extra),
            self.image,
            *argv,
        )
        self.names.append(full)

    def name(self, prefix: str) -> str:
        return next(n for n in self.names if n.startswith(f"{prefix}-"))

    async def logs(self, prefix: str) -> str:
        return await asyncio.to_thread(_docker, "logs", self.name(prefix), check=False)

    def remove(self) -> None:
        for name in self.names:
            _docker("rm", "-f", name, check=False, timeout=60)


@pytest.fixture
async def containers(image: str, pg_database: str) -> AsyncIterator[Containers]:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": f"redis://127.0.0.1:6379/{secrets.randbelow(8) + 8}",
        "QUEUE_PREFIX": f"img{secrets.token_hex(3)}",
        "PII_ENCRYPTION_KEY": key,
        "WA_ACCESS_TOKEN": ACCESS_TOKEN,
        "WA_APP_SECRET": APP_SECRET,
        "WA_VERIFY_TOKEN": VERIFY_TOKEN,
        "WA_PHONE_ID": PHONE_ID,
        "HOST": "127.0.0.1",
        "JASTIPIN_DATA_DIR": "/data",
        "APP_ENV": "development",
    }
    stack = Containers(image, env)
    try:
        yield stack
    finally:
        await asyncio.to_thread(stack.remove)


async def test_the_image_runs_as_compose_runs_it_and_answers_through_its_worker(
    containers: Containers, fake_graph: FakeGraphAPI
) -> None:
    port, metrics_port = _free_port(), _free_port()
    containers.env["WA_API_BASE"] = fake_graph.base_url
    containers.env["PORT"] = str(port)

    # migrate (compose's `migrate` service), then the demo trip to join
    await containers.run("jastipin", "db", "upgrade")
    await containers.run("jastipin", "demo")
    # the api converses and stores, the worker is the only sender (compose's layout)
    await containers.start("api", "jastipin", "serve", OUTBOX_INLINE="0")
    await containers.start("worker", "jastipin", "worker", METRICS_PORT=str(metrics_port))

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        for _ in range(300):
            try:
                if (await http.get("/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the api never became healthy:\n" + await containers.logs("api"))

        # a signed webhook, answered through the worker
        buyer = phone()
        raw = simulate.encode(simulate.text(buyer, "JOIN DEMO", name="Sari"))
        sig = simulate.sign(raw, APP_SECRET)
        resp = await http.post(
            "/api/webhooks/whatsapp",
            content=raw,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
        )
        assert resp.status_code == 200
        for _ in range(300):
            if fake_graph.sent_to(buyer):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(
                "no reply reached the Graph API:\n" + await containers.logs("worker")
            )
        assert "Jastip Tokyo Demo" in str(fake_graph.sent_to(buyer)[0])

    # the operator's smoke check, inside the api container
    smoke = await asyncio.to_thread(
        _docker,
        "exec",
        containers.name("api"),
        "jastipin",
        "check",
        "smoke",
        "--phone",
        phone(),
        "--url",
        f"http://127.0.0.1:{port}",
        check=False,
    )
    assert "FAIL" not in smoke and "ok    /health answers ok" in smoke, smoke

    # SIGTERM (compose's stop): both finish what they hold and exit 0
    for prefix in ("api", "worker"):
        await asyncio.to_thread(_docker, "stop", "--time", "40", containers.name(prefix))
        code = await asyncio.to_thread(
            _docker, "inspect", "-f", "{{.State.ExitCode}}", containers.name(prefix)
        )
        assert code.strip() == "0", f"{prefix} exited {code}:\n" + await containers.logs(prefix)

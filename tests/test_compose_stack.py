"""docker-compose.yml started by the test suite, not only read: its services and their
``monitoring`` profile, as ``docker compose --profile monitoring up -d`` starts them with a
``.env`` like the runbook's (tests/compose_stack.py reads the file; no compose that reads
it runs on these machines). The product is the image built from the Dockerfile, and
compose's own services are local images built the same way where Debian packages them
(tests/images.py): PostgreSQL, Redis, Prometheus and Alertmanager.
Not started here: Grafana and MinIO (not in Debian: media stay on the containers' disk),
and cAdvisor (privileged, it reads the host's engine).

A signed webhook is answered through the worker, Prometheus scrapes every process with
the token from compose's secret, ``Watchdog`` reaches Alertmanager, and stopping the
worker (exit 0 on SIGTERM) makes ``JastipinWorkerDown`` fire in Alertmanager, routed to
the pager. Prometheus runs the shipped configuration with one change, in time only (as in
tests/test_paging_e2e.py): scrapes and evaluations every 2 s and every rule's ``for:`` 3
s. Alertmanager runs the shipped file as it is (its receivers' secrets are dummies: that
the alert is active for the ``pager`` receiver is what is checked).

Then every command the runbook gives as it is run on the compose host (``docker compose
exec …`` / ``docker compose run --rm …``, and its ``curl`` checks of the published port)
runs against the stack, and every SQL block goes through its SQL shell; the ones that
cannot run here are listed with the reason.
Where no container engine answers, the test says so in one line and skips."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot import simulate
from tests.compose_stack import COMPOSE_FILE, ROOT, ComposeStack
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_ID, VERIFY_TOKEN, phone
from tests.fakes.graph_api import FakeGraphAPI
from tests.images import engine_or_skip, product_image, stand_in
from tests.ops_texts import compose_commands, dotenv_template, host_commands, runbook_blocks
from tests.stack import free_port

# The first run on a machine builds the base, the product and four stand-ins (minutes);
# afterwards each build is a cache hit and the run takes about three minutes.
pytestmark = pytest.mark.timeout(1800)

NOT_STARTED = {
    "minio": "MinIO is not in Debian",
    "minio-init": "MinIO's client is not in Debian",
    "grafana": "Grafana is not in Debian",
    "cadvisor": "privileged, reads the host's engine",
}
STAND_INS = ("postgres", "redis", "prometheus", "alertmanager")
APP_SERVICES = ("migrate", "api", "worker", "scheduler")
# what an override file would say while MinIO is not started: media on the disk
WITHOUT_MINIO = {"S3_ENDPOINT_URL": "", "S3_BUCKET": "", "S3_BACKUP_BUCKET": ""}

# runbook commands not run here, by what they contain, and why
NOT_RUN_HERE = {
    "--profile ops": "the backup profile copies to S3 (MinIO is not in Debian); "
    "tests/test_backup_restore.py runs backup, restore and the drill",
    "check predeploy": "the production gate fails here by design: no off-host backups",
    "keys rotate": "rotates the live key; tests/reliability/test_key_rotation.py",
    "ALTER DATABASE jastipin RENAME": "a restore step: renames the live database",
    "createdb -U jastipin jastipin": "a restore step: after the live database was renamed",
}
# lifecycle commands: what the test's driver does itself (up, stop), or reads (logs)
LIFECYCLE = {"up", "stop", "build", "ps", "logs", "pull", "down", "restart"}


def _placeholders(argv: list[str]) -> list[str]:
    out = [
        word.replace("62…", "6281200000077").replace("<TRIPCODE>", "DEMO").replace("<id>", "all")
        for word in argv
    ]
    left = [w for w in out if "…" in w or re.search(r"<[A-Za-z_ ]+>", w) or "$" in w]
    assert not left, f"a placeholder the test has no value for: {left} in {argv}"
    return out


def _monitoring_copy(tmp_path: Path) -> Path:
    """ops/prometheus as shipped but for time (scrapes and evaluations every 2 s, every
    ``for:`` 3 s)."""
    target = tmp_path / "prometheus"
    shutil.copytree(ROOT / "ops" / "prometheus", target)
    config = target / "prometheus.yml"
    config.write_text(
        re.sub(
            r"^(\s+)(scrape|evaluation)_interval: \S+",
            r"\1\2_interval: 2s",
            config.read_text(),
            flags=re.M,
        )
    )
    rules = target / "alerts.yml"
    rules.write_text(re.sub(r"^(\s+)for: \S+$", r"\1for: 3s", rules.read_text(), flags=re.M))
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    target.chmod(0o755)
    return target


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """compose's image names → the local images standing in for them."""
    engine_or_skip()
    product = product_image()
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return {
        "jastipin:test": product,
        **{str(services[name]["image"]): stand_in(name) for name in STAND_INS},
    }


@pytest.fixture
def stack(images: dict[str, str], tmp_path: Path) -> Iterator[ComposeStack]:
    ports = {name: free_port() for name in ("API", "PROMETHEUS", "ALERTMANAGER", "GRAFANA")}
    # the runbook's template, filled in as its comments ask
    dotenv = dotenv_template()
    filled = {
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "MINIO_ROOT_PASSWORD": secrets.token_hex(16),
        "S3_APP_SECRET_KEY": secrets.token_hex(16),
        "PII_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "WA_ACCESS_TOKEN": ACCESS_TOKEN,
        "WA_PHONE_ID": PHONE_ID,
        "WA_VERIFY_TOKEN": VERIFY_TOKEN,
        "WA_APP_SECRET": APP_SECRET,
        "METRICS_TOKEN": secrets.token_hex(16),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(8),
        "PAGERDUTY_ROUTING_KEY": "dummy-routing-key",
        "CHAT_WEBHOOK_URL": "http://127.0.0.1:9/chat",
        "HEARTBEAT_KEY": "dummy-heartbeat-key",
    }
    assert set(filled) <= set(dotenv), set(filled) - set(dotenv)
    dotenv.update(filled)
    # this machine's: free ports, and the image this test built (as deploy.sh names CI's)
    dotenv.update({f"{name}_PORT": str(port) for name, port in ports.items()})
    dotenv["JASTIPIN_IMAGE"] = "jastipin:test"
    s = ComposeStack(
        workdir=tmp_path,
        dotenv=dotenv,
        images=images,
        not_started=NOT_STARTED,
        extra_env=dict.fromkeys(APP_SERVICES, WITHOUT_MINIO),
        binds={"./ops/prometheus": _monitoring_copy(tmp_path)},
        profiles=("monitoring",),
    )
    try:
        yield s
    finally:
        s.down()


async def _until(check: Any, within: float, what: Any) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(await what())
        await asyncio.sleep(1)


@pytest.fixture
async def reachable_fake(stack: ComposeStack) -> AsyncIterator[FakeGraphAPI]:
    """The fake Graph API on the host's address on the project's network."""
    gateway = await asyncio.to_thread(stack.make_network)
    async with FakeGraphAPI.running(gateway, token=ACCESS_TOKEN) as fake:
        stack.dotenv["WA_API_BASE"] = fake.base_url
        yield fake


async def test_the_compose_stack_answers_is_scraped_and_pages_when_the_worker_stops(
    stack: ComposeStack, reachable_fake: FakeGraphAPI
) -> None:
    fake = reachable_fake
    await asyncio.to_thread(stack.up)
    assert set(stack.containers) == {*APP_SERVICES, *STAND_INS}, stack.containers
    api = f"http://127.0.0.1:{stack.dotenv['API_PORT']}"
    prom = f"http://127.0.0.1:{stack.dotenv['PROMETHEUS_PORT']}"
    alerts = f"http://127.0.0.1:{stack.dotenv['ALERTMANAGER_PORT']}"
    async with httpx.AsyncClient(timeout=10) as http:

        async def healthy() -> bool:
            try:
                return (await http.get(f"{api}/health")).status_code == 200
            except httpx.TransportError:
                return False

        async def api_log() -> str:
            return "the api never became healthy:\n" + stack.logs("api")

        await _until(healthy, 120, api_log)
        demo = await asyncio.to_thread(stack.run, "api", "jastipin", "demo")
        assert demo.returncode == 0, demo.stderr

        # a signed webhook through the published port, answered by the worker
        buyer = phone()
        raw = simulate.encode(simulate.text(buyer, "JOIN DEMO", name="Sari"))
        resp = await http.post(
            f"{api}/api/webhooks/whatsapp",
            content=raw,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": simulate.sign(raw, APP_SECRET),
            },
        )
        assert resp.status_code == 200

        async def replied() -> bool:
            return bool(fake.sent_to(buyer))

        async def worker_log() -> str:
            return "no reply reached the Graph API:\n" + stack.logs("worker")

        await _until(replied, 60, worker_log)
        assert "Jastip Tokyo Demo" in str(fake.sent_to(buyer)[0])

        # Prometheus scrapes every process through compose's names and secret
        async def ups() -> dict[str, str]:
            try:
                result = (await http.get(f"{prom}/api/v1/query", params={"query": "up"})).json()
            except (httpx.TransportError, ValueError):
                return {}
            return {r["metric"]["job"]: r["value"][1] for r in result["data"]["result"]}

        jobs = ("jastipin-api", "jastipin-worker", "jastipin-scheduler")

        async def all_up() -> bool:
            now = await ups()
            return all(now.get(job) == "1" for job in jobs)

        async def targets() -> str:
            return f"targets: {await ups()}\n{stack.logs('prometheus')}"

        await _until(all_up, 120, targets)

        async def firing() -> dict[str, list[str]]:
            """Active alerts in Alertmanager → the receivers they are routed to."""
            try:
                body = (await http.get(f"{alerts}/api/v2/alerts")).json()
            except (httpx.TransportError, ValueError):
                return {}
            return {
                a["labels"]["alertname"]: sorted(r["name"] for r in a["receivers"])
                for a in body
                if a["status"]["state"] == "active"
            }

        async def watchdog() -> bool:
            return "Watchdog" in await firing()

        async def said() -> str:
            return f"active: {await firing()}\n{stack.logs('alertmanager')}"

        await _until(watchdog, 90, said)
        assert (await firing())["Watchdog"] == ["deadmansswitch"]
        assert "JastipinWorkerDown" not in await firing()

        # the runbook's commands, while everything runs
        failures = await asyncio.to_thread(_run_the_runbook, stack)

        # the worker stops (compose's stop: SIGTERM), and the pager's alert fires
        assert await asyncio.to_thread(stack.stop, "worker") == 0, stack.logs("worker")

        async def paged() -> bool:
            return "pager" in (await firing()).get("JastipinWorkerDown", [])

        await _until(paged, 120, said)
        assert "JastipinApiDown" not in await firing()
    assert not failures, "runbook commands that failed:\n" + "\n\n".join(failures)


def _run_the_runbook(stack: ComposeStack) -> list[str]:
    """Every ``docker compose exec|run`` command of the runbook that can run here, and
    every SQL block through the SQL shell; returns what failed."""
    failures: list[str] = []
    ran: list[str] = []
    for argv in compose_commands():
        line = " ".join(argv)
        words = argv[2:]
        while words and words[0].startswith("-"):  # `--profile ops` and the like
            words = words[2:] if words[0] in ("--profile", "-f", "-p") else words[1:]
        verb = words[0] if words else ""
        if verb in LIFECYCLE or any(part in line for part in NOT_RUN_HERE):
            continue
        assert verb in ("exec", "run"), f"a compose command the test cannot place: {line}"
        words = _placeholders(words[1:])
        env: dict[str, str] = {}
        entrypoint: str | None = None
        while words[0].startswith("-"):
            flag = words.pop(0)
            if flag == "-e":
                key, _, value = words.pop(0).partition("=")
                env[key] = value
            elif flag == "--entrypoint":
                entrypoint = words.pop(0)
            else:
                assert flag in ("--rm", "--no-deps", "-T"), f"{flag} in {line}"
        service, *command = words
        if verb == "exec":
            done = stack.exec(service, *command, env=env)
        else:
            done = stack.run(service, *command, env=env, entrypoint=entrypoint, shipped=True)
        ran.append(line)
        if done.returncode != 0:
            failures.append(
                f"{line}\n  exit {done.returncode}: {(done.stderr or done.stdout)[-800:]}"
            )
    # the host's own checks of the published port, with .env loaded as the runbook does
    for line in host_commands("curl"):
        port = stack.dotenv["API_PORT"]
        done = subprocess.run(
            ["bash", "-c", f"set -a; . ./.env; set +a; {line.replace(':8000/', f':{port}/')}"],
            cwd=stack.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        ran.append(line)
        if done.returncode != 0:
            failures.append(f"{line}\n  exit {done.returncode}: {done.stderr[-800:]}")
    for block in runbook_blocks("sql"):
        done = stack.exec(
            "postgres",
            "psql",
            "-U",
            "jastipin",
            "-d",
            "jastipin",
            "-v",
            "ON_ERROR_STOP=1",
            stdin=block,
        )
        ran.append(block.splitlines()[0])
        if done.returncode != 0:
            failures.append(f"SQL {block[:200]}\n  {done.stderr[-800:]}")
    assert len(ran) >= 20, ran  # the runbook's commands were found at all
    lines = [" ".join(argv) for argv in compose_commands()]
    stale = [part for part in NOT_RUN_HERE if not any(part in line for line in lines)]
    assert not stale, f"NOT_RUN_HERE names commands the runbook no longer gives: {stale}"
    return failures

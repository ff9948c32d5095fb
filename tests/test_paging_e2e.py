"""A stopped worker pages someone, for real: ``jastipin serve``, ``worker`` and
``scheduler`` run on Postgres and Redis; Debian's Prometheus scrapes the three with the
bearer token and evaluates the shipped ``ops/prometheus/alerts.yml``; Debian's
Alertmanager routes with the shipped route tree. The worker is stopped, and the pager
receives ``JastipinWorkerDown`` while the heartbeat receiver keeps hearing ``Watchdog``.

Two things differ from production, both only in time: the rules' ``for:`` durations are
cut to seconds and scrapes happen every second (the expressions, labels and routes are
the shipped ones), and the receivers are webhooks of this test instead of PagerDuty, the
chat and the heartbeat service (their keys are secrets that do not exist here)."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from tests.conftest import REQUIRE_SERVICES, _truncate
from tests.fakes.graph_api import FakeGraphAPI
from tests.stack import Stack, free_port

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
ALERTMANAGER = ROOT / "ops" / "alertmanager" / "alertmanager.yml"

# three real processes start (a few seconds of imports each), then Prometheus needs a
# few evaluations and Alertmanager its group wait: well over the suite's 120 s default
pytestmark = pytest.mark.timeout(400)


def _binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        if REQUIRE_SERVICES:
            pytest.fail(f"{name} is required under CI: apt-get install {package}")
        pytest.skip(f"{name} not installed (apt-get install {package})")
    return found


class Receivers:
    """The webhooks Alertmanager sends to: what each receiver got, by alert name."""

    def __init__(self) -> None:
        self.got: dict[str, list[str]] = {"pager": [], "chat": [], "heartbeat": []}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        names = [a["labels"]["alertname"] for a in body["alerts"] if a["status"] == "firing"]
        self.got[request.match_info["receiver"]].extend(names)
        return web.Response(text="ok")


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receivers, int]]:
    rec = Receivers()
    app = web.Application()
    app.router.add_post("/{receiver}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield rec, port
    finally:
        await runner.cleanup()


def _fast_rules(target: Path) -> None:
    """The shipped rules with every ``for:`` cut to 3 s (nothing else changed)."""
    text = re.sub(r"^(\s+)for: \S+$", r"\1for: 3s", ALERTS.read_text(), flags=re.M)
    target.write_text(text)


def _alertmanager_config(target: Path, port: int) -> None:
    """The shipped route tree and inhibitions; receivers are this test's webhooks."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER.read_text())

    def webhook(name: str) -> dict[str, Any]:
        return {"url": f"http://127.0.0.1:{port}/{name}", "send_resolved": False}

    config["receivers"] = [
        {"name": "pager", "webhook_configs": [webhook("pager")]},
        {"name": "chat", "webhook_configs": [webhook("chat")]},
        {"name": "deadmansswitch", "webhook_configs": [webhook("heartbeat")]},
    ]
    config["route"]["group_wait"] = "1s"
    config["route"]["group_interval"] = "2s"
    for route in config["route"]["routes"]:
        route["group_wait"] = "1s"
        route["group_interval"] = "2s"
    target.write_text(yaml.safe_dump(config))


async def _until(check: Any, within: float, what: Any) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(await what())
        await asyncio.sleep(0.5)


async def test_a_stopped_worker_pages_through_prometheus_and_alertmanager(
    tmp_path: Path,
    pg_url: str,
    fake_graph: FakeGraphAPI,
    receivers: tuple[Receivers, int],
) -> None:
    prometheus_bin = _binary("prometheus", "prometheus")
    alertmanager_bin = _binary("prometheus-alertmanager", "prometheus-alertmanager")
    rec, rec_port = receivers
    await _truncate(pg_url)

    # the product, as compose runs it: api (not sending), a worker, the scheduler
    s = Stack(tmp_path, fake_graph, pg_url, f"jp-page-{secrets.token_hex(4)}")
    token = secrets.token_hex(16)
    worker_port, scheduler_port = free_port(), free_port()
    s.env.update(METRICS_TOKEN=token, OUTBOX_INLINE="0")
    processes: list[asyncio.subprocess.Process] = []
    try:
        await s.run("db", "upgrade")
        await s.serve()
        s.env["METRICS_PORT"] = str(worker_port)
        await s.start("worker", "worker")
        s.env["METRICS_PORT"] = str(scheduler_port)
        await s.start("scheduler", "scheduler")

        # Prometheus and Alertmanager with the shipped configuration (times cut)
        am_port, prom_port = free_port(), free_port()
        _fast_rules(tmp_path / "alerts.yml")
        _alertmanager_config(tmp_path / "alertmanager.yml", rec_port)
        (tmp_path / "token").write_text(token)
        shipped = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
        targets = {
            "jastipin-api": s.port,
            "jastipin-worker": worker_port,
            "jastipin-scheduler": scheduler_port,
        }
        scrape = []
        for job in shipped["scrape_configs"]:
            if job["job_name"] not in targets:
                continue  # cAdvisor is not started here
            scrape.append(
                {
                    "job_name": job["job_name"],
                    "metrics_path": job["metrics_path"],
                    "authorization": {
                        "type": "Bearer",
                        "credentials_file": str(tmp_path / "token"),
                    },
                    "static_configs": [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}],
                }
            )
        prom_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "alerts.yml")],
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
            },
            "scrape_configs": scrape,
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
        logs = (tmp_path / "monitoring.log").open("wb")
        processes.append(
            await asyncio.create_subprocess_exec(
                alertmanager_bin,
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
                stdout=logs,
                stderr=logs,
            )
        )
        processes.append(
            await asyncio.create_subprocess_exec(
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                stdout=logs,
                stderr=logs,
            )
        )

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{prom_port}") as prom:

            async def ups() -> dict[str, str]:
                try:
                    resp = await prom.get("/api/v1/query", params={"query": "up"})
                    result = resp.json()["data"]["result"]
                except (httpx.TransportError, ValueError, KeyError):
                    return {}  # still starting
                return {r["metric"]["job"]: r["value"][1] for r in result}

            async def all_up() -> bool:
                return await ups() == {job: "1" for job in targets}

            async def say_ups() -> str:
                return (
                    f"targets: {await ups()}\n{(tmp_path / 'monitoring.log').read_text()[-3000:]}"
                )

            # every process is scraped with the token: all three up
            await _until(all_up, 90, say_ups)

            async def heartbeat() -> bool:
                return "Watchdog" in rec.got["heartbeat"]

            async def said() -> str:
                return f"received: {rec.got}\n{(tmp_path / 'monitoring.log').read_text()[-3000:]}"

            await _until(heartbeat, 60, said)
            assert "JastipinWorkerDown" not in rec.got["pager"]

            # the worker stops: its target answers no more, and the pager hears it
            proc = s.procs.pop("worker")
            proc.terminate()
            await asyncio.wait_for(proc.wait(), timeout=60)

            async def paged() -> bool:
                return "JastipinWorkerDown" in rec.got["pager"]

            await _until(paged, 90, said)
            assert "Watchdog" not in rec.got["pager"], "the heartbeat must not page"
            assert "JastipinApiDown" not in rec.got["pager"]
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=20)
                except TimeoutError:
                    process.kill()
        await s.close()

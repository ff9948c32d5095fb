"""What the API exposes: unsigned (dev-mode) webhooks only on loopback, /metrics only to
the holder of ``METRICS_TOKEN`` or, without one, to this machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from bot.app import create_app, metrics_view
from bot.settings import LOOPBACK, Settings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
JASTIPIN = str(Path(sys.executable).parent / "jastipin")
TOKEN = "metrics-test-token-0f3a"


# --- where `jastipin serve` listens ----------------------------------------------------------


@pytest.mark.parametrize("asked", ["0.0.0.0", "::", "192.0.2.10", "example.internal"])
def test_without_an_app_secret_serve_listens_on_loopback_whatever_was_asked(
    asked: str, tmp_path: Path
) -> None:
    settings = Settings.from_env({"HOST": asked, "JASTIPIN_DATA_DIR": str(tmp_path)})
    assert settings.wa_app_secret is None
    assert settings.listen_host() == LOOPBACK
    assert settings.listen_host(asked) == LOOPBACK


@pytest.mark.parametrize(
    "asked", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "::ffff:127.0.0.1"]
)
def test_a_loopback_host_is_kept_in_dev_mode(asked: str) -> None:
    assert Settings(host=asked).listen_host() == asked


def test_with_an_app_secret_serve_listens_where_it_was_asked() -> None:
    settings = Settings(host="0.0.0.0", wa_app_secret="app-secret")
    assert settings.listen_host() == "0.0.0.0"
    assert settings.listen_host("192.0.2.10") == "192.0.2.10"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one (no packet is sent:
    a UDP socket's connect only picks the route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _listeners(port: int) -> set[str] | None:
    """Local addresses listening on ``port``, from the kernel's socket tables (Linux), or
    None where there are none to read. An IPv6 listener shows as its raw hex."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        return None
    found = set()
    six = Path("/proc/net/tcp6")
    for line in six.read_text().splitlines()[1:] if six.exists() else []:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(address)
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


async def test_dev_mode_serve_asked_for_every_interface_listens_on_loopback_and_says_so(
    tmp_path: Path,
) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WA_", "PII_", "METRICS_"))},
        "JASTIPIN_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/jastipin.db",
        "HOST": "0.0.0.0",
    }
    env.pop("REDIS_URL", None)
    done = await asyncio.to_thread(
        subprocess.run,
        [JASTIPIN, "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = await asyncio.create_subprocess_exec(
            JASTIPIN, "serve", "--host", "0.0.0.0", "--port", str(port), env=env, stderr=log
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://{LOOPBACK}:{port}") as client:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health")).status_code == 200:
                        break
                assert proc.returncode is None, log_path.read_text()
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(log_path.read_text())
            # the local operator still reads the metrics without a token
            assert (await client.get("/metrics")).status_code == 200
        listening = _listeners(port)
        if listening is not None:  # Linux: the kernel says where it listens
            assert listening == {LOOPBACK}
        outside = _outside_address()
        if outside is not None:
            with pytest.raises(OSError), socket.create_connection((outside, port), timeout=5):
                pass
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)
    said = log_path.read_text()
    assert "webhook signatures are not checked (no WA_APP_SECRET)" in said
    assert "listening on loopback only (127.0.0.1), not on 0.0.0.0 as asked" in said


# --- /metrics ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _client(settings: Settings, host: str = LOOPBACK) -> AsyncIterator[TestClient]:
    app = create_app(settings, run_background=False)
    async with TestClient(TestServer(app, host=host)) as client:
        yield client


async def test_metrics_with_a_token_need_the_bearer_token(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, metrics_token=TOKEN)
    async with _client(settings) as client:
        bare = await client.get("/metrics")
        assert bare.status == 401
        assert bare.headers["WWW-Authenticate"].startswith("Bearer")
        assert "jastipin_" not in await bare.text()
        for wrong in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer "):
            resp = await client.get("/metrics", headers={"Authorization": wrong})
            assert resp.status == 401, wrong
        good = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status == 200
        assert "jastipin_outbox_pending" in await good.text()
        # the rest of the app is not behind the token
        assert (await client.get("/health")).status == 200


async def test_metrics_without_a_token_are_for_this_machine_only(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path)
    async with _client(settings) as client:
        assert (await client.get("/metrics")).status == 200
        # through a reverse proxy on the same host the peer is loopback, the caller is not
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            resp = await client.get("/metrics", headers={header: "198.51.100.4"})
            assert resp.status == 403, header
            assert "METRICS_TOKEN" in await resp.text()


async def test_metrics_without_a_token_refuse_a_peer_on_another_interface(
    database_url: str, tmp_path: Path
) -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback address (the handler test still runs)")
    settings = make_settings(database_url, tmp_path)
    async with _client(settings, host=outside) as client:
        assert (await client.get("/metrics")).status == 403
        assert (await client.get("/health")).status == 200
    async with _client(make_settings(database_url, tmp_path, metrics_token=TOKEN), outside) as c:
        resp = await c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 200


async def test_the_metrics_handler_refuses_a_remote_peer() -> None:
    app = create_app(Settings(), run_background=False)
    request = make_mocked_request("GET", "/metrics", app=app).clone(remote="203.0.113.9")
    resp = await metrics_view(request)
    assert isinstance(resp, web.Response) and resp.status == 403


# --- the deployment files agree ------------------------------------------------------------


def test_prometheus_scrapes_the_api_with_the_token_from_a_file() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "jastipin-api"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    # the token itself never sits in the config: only the file it is read from
    assert set(job["authorization"]) == {"type", "credentials_file"}
    assert job["static_configs"][0]["targets"] == ["api:8000"]


def test_compose_gives_the_public_api_an_app_secret() -> None:
    """The api listens on 0.0.0.0 in its container: without WA_APP_SECRET it would fall
    back to loopback and be unreachable, so compose refuses to start without one."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"]["api"]["environment"]
    assert env["HOST"] == "0.0.0.0"
    assert env["WA_APP_SECRET"].startswith("${WA_APP_SECRET:?")

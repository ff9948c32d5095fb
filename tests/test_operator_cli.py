"""What an operator runs for broadcasts: templates, rates, costs and dead jobs."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import dramatiq
import pytest

from tests.conftest import REQUIRE_SERVICES


def jastipin(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WA_", "REDIS_"))}
    base.update({"JASTIPIN_DATA_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_templates_rates_and_costs_are_data_an_operator_changes(tmp_path: Path) -> None:
    assert jastipin(tmp_path, "db", "upgrade").returncode == 0
    out = jastipin(
        tmp_path,
        "template",
        "set",
        "broadcast",
        "jastipin_broadcast",
        "--language",
        "id",
        "--category",
        "marketing",
    )
    assert out.returncode == 0, out.stderr
    assert "broadcast  id  jastipin_broadcast (id, marketing)" in out.stdout
    bad = jastipin(
        tmp_path,
        "template",
        "set",
        "broadcast",
        "x",
        "--language",
        "klingon",
        "--category",
        "utility",
    )
    assert bad.returncode == 2 and "unknown template language" in bad.stderr
    rates = jastipin(tmp_path, "rates", "list", COST_ESTIMATOR_RATE="500")
    assert "marketing       Rp 500" in rates.stdout and "service         Rp 0" in rates.stdout
    # Meta's price change is a row, effective from now; the default stays for the rest
    rates = jastipin(tmp_path, "rates", "set", "marketing", "586")
    assert "marketing       Rp 586" in rates.stdout and "utility         Rp 500" in rates.stdout
    assert jastipin(tmp_path, "rates", "set", "marketing", "-1").returncode == 2
    costs = jastipin(tmp_path, "costs", "--days", "3")
    assert costs.returncode == 0 and "total Rp 0 over 3 day(s)" in costs.stdout


def test_a_dead_job_is_listed_and_retried_on_redis(tmp_path: Path) -> None:
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except Exception as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip("no Redis on 127.0.0.1:6379")
    from dramatiq.brokers.redis import RedisBroker

    prefix = f"jp-dead-{secrets.token_hex(4)}"
    namespace = f"{prefix}-dramatiq"
    broker = RedisBroker(url="redis://127.0.0.1:6379/0", namespace=namespace)

    @dramatiq.actor(
        broker=broker, actor_name="send_broadcast", queue_name="broadcasts", max_retries=0
    )
    def failing(broadcast_id: int) -> None:
        raise RuntimeError("database unreachable")

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        failing.send(41)
        deadline = time.monotonic() + 20
        while not client.zcard(f"{namespace}:broadcasts.XQ") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()
    env = {"REDIS_URL": "redis://127.0.0.1:6379/0", "QUEUE_PREFIX": prefix}
    try:
        listed = jastipin(tmp_path, "queue", "dead", **env)
        assert listed.returncode == 0, listed.stderr
        assert "send_broadcast(41,)" in listed.stdout
        assert "1 dead job(s)" in listed.stdout
        retried = jastipin(tmp_path, "queue", "dead", "--retry", "all", **env)
        assert "requeued 1 dead job(s)" in retried.stdout
        assert client.zcard(f"{namespace}:broadcasts.XQ") == 0
        assert client.llen(f"{namespace}:broadcasts") == 1  # waiting for a worker again
        assert "0 dead job(s)" in jastipin(tmp_path, "queue", "dead", **env).stdout
    finally:
        for key in client.scan_iter(f"{namespace}:*"):
            client.delete(key)
        client.close()

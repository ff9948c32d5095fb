"""``jastipin check predeploy|smoke|postdeploy``: the deployment checklists as commands
that exit non-zero, with a sentence per problem, when something is not right. Smoke runs
against a real ``jastipin serve`` whose replies go to the fake Graph API."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.checks import postdeploy
from storage.db import Database
from storage.migrate import head_revision, pending_revisions
from storage.models import OutboxMessage, User, utcnow
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_ID, VERIFY_TOKEN, make_settings, phone
from tests.fakes.graph_api import FakeGraphAPI
from tests.stack import free_port as _free_port

JASTIPIN = str(Path(sys.executable).parent / "jastipin")


def _env(tmp_path: Path, database_url: str, fake: FakeGraphAPI, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WA_", "PII_", "DATABASE_", "S3_", "CF_R2_", "METRICS_"))
        and k not in ("REDIS_URL", "SENTRY_DSN")
    }
    env.update(
        DATABASE_URL=database_url,
        JASTIPIN_DATA_DIR=str(tmp_path),
        WA_ACCESS_TOKEN=ACCESS_TOKEN,
        WA_APP_SECRET=APP_SECRET,
        WA_VERIFY_TOKEN=VERIFY_TOKEN,
        WA_PHONE_ID=PHONE_ID,
        WA_API_BASE=fake.base_url,
        PII_ENCRYPTION_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    )
    env.update(extra)
    return env


async def _jastipin(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [JASTIPIN, *argv], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
async def served(
    database_url: str, tmp_path: Path, fake_graph: FakeGraphAPI
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A migrated, seeded ``jastipin serve``: its URL and environment."""
    port = _free_port()
    env = _env(tmp_path, database_url, fake_graph, PORT=str(port))
    for argv in (["db", "upgrade"], ["demo"]):
        done = await _jastipin(argv, env)
        assert done.returncode == 0, done.stderr
    log = (tmp_path / "serve.log").open("w")
    proc = await asyncio.create_subprocess_exec(JASTIPIN, "serve", env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(200):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError((tmp_path / "serve.log").read_text())
        yield url, env
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)
        log.close()


async def test_smoke_passes_on_a_healthy_server_and_the_join_is_really_answered(
    served: tuple[str, dict[str, str]], fake_graph: FakeGraphAPI
) -> None:
    url, env = served
    buyer = phone()
    done = await _jastipin(
        ["check", "smoke", "--url", url, "--phone", buyer, "--code", "DEMO"], env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "ok    /health answers ok" in out
    assert "ok    the webhook answers Meta's subscription challenge" in out
    assert "ok    a signed 'JOIN DEMO' from the test number was answered" in out
    assert "check smoke: all good" in out
    # the answer really left through the Graph API, to the test number
    assert "Jastip Tokyo Demo" in fake_graph.texts_to(buyer)[0]
    assert buyer not in out + done.stderr, "the test number is not echoed"


async def test_smoke_fails_with_sentences_when_the_server_disagrees(
    served: tuple[str, dict[str, str]],
) -> None:
    url, env = served
    wrong = {**env, "WA_VERIFY_TOKEN": "not-the-servers", "WA_APP_SECRET": "not-the-servers"}
    done = await _jastipin(["check", "smoke", "--url", url, "--phone", phone()], wrong)
    assert done.returncode == 1
    assert "FAIL  the webhook does not answer the challenge (HTTP 403)" in done.stdout
    assert "FAIL  the signed test message was refused: HTTP 403" in done.stdout
    assert "2 problem(s)" in done.stderr

    nobody = await _jastipin(["check", "smoke", "--url", "http://127.0.0.1:9"], env)
    assert nobody.returncode == 2 and "give --phone" in nobody.stderr
    down = await _jastipin(["check", "smoke", "--url", "http://127.0.0.1:9", "--phone", "1"], env)
    assert down.returncode == 1 and "is `jastipin serve` running?" in down.stdout


async def test_predeploy_reports_missing_config_a_refused_token_and_pending_migrations(
    tmp_path: Path, fake_graph: FakeGraphAPI
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/jastipin.db"
    full = _env(
        tmp_path,
        url,
        fake_graph,
        REDIS_URL="redis://127.0.0.1:6379/0",
        S3_BACKUP_BUCKET="backups",
        METRICS_TOKEN="t",
        APP_ENV="development",  # the production-only gates have their own test below
    )
    head = head_revision()
    before_head = pending_revisions(None)[-2]  # type: ignore[index]  # the one before head
    assert (await _jastipin(["db", "upgrade", before_head], full)).returncode == 0
    done = await _jastipin(["check", "predeploy"], full)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"note  1 migration(s) pending ({head})" in done.stdout
    assert f"ok    the Graph API accepts the token for phone id {PHONE_ID}" in done.stdout

    assert (await _jastipin(["db", "upgrade"], full)).returncode == 0
    bad_token = await _jastipin(["check", "predeploy"], {**full, "WA_ACCESS_TOKEN": "expired"})
    assert bad_token.returncode == 1
    assert "no migration pending" in bad_token.stdout
    assert "FAIL  the Graph API refuses the token (HTTP 401, code 190" in bad_token.stdout

    missing = {k: v for k, v in full.items() if k not in ("WA_APP_SECRET", "REDIS_URL")}
    done = await _jastipin(["check", "predeploy"], missing)
    assert done.returncode == 1
    assert "FAIL  WA_APP_SECRET is not set: without it webhook signatures" in done.stdout
    assert "FAIL  REDIS_URL is not set" in done.stdout
    assert "FAIL  the configuration is refused:" in done.stdout  # the app would not start
    assert ACCESS_TOKEN not in done.stdout + done.stderr, "a secret was printed"


def _fails(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("FAIL")]


async def test_predeploy_in_production_gates_on_redis_s3_sentry_and_off_host_backups(
    tmp_path: Path, fake_graph: FakeGraphAPI, moto_endpoint: str, bucket: str
) -> None:
    """In production every dependency must answer and backups must leave the host: each
    problem is one FAIL sentence and the exit is non-zero. (On this machine every store
    is local, so the off-host rule is shown failing; the other gates pass or fail on
    their own.)"""
    from tests.conftest import ACCESS_KEY, SECRET_KEY

    url = f"sqlite+aiosqlite:///{tmp_path}/jastipin.db"
    sentry = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    sentry_port = sentry.sockets[0].getsockname()[1]
    good = _env(
        tmp_path,
        url,
        fake_graph,
        APP_ENV="production",
        REDIS_URL="redis://127.0.0.1:6379/0",
        S3_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        S3_BUCKET=bucket,
        S3_BACKUP_BUCKET=bucket,
        METRICS_TOKEN="t",
        SENTRY_DSN=f"http://public@127.0.0.1:{sentry_port}/1",
    )
    try:
        assert (await _jastipin(["db", "upgrade"], good)).returncode == 0
        done = await _jastipin(["check", "predeploy"], good)
        assert "ok    Redis answers" in done.stdout
        assert f"ok    the media bucket {bucket} answers" in done.stdout
        assert f"ok    the backup bucket {bucket} answers" in done.stdout
        assert f"ok    Sentry answers at 127.0.0.1:{sentry_port}" in done.stdout
        # the backups are on this machine's store: refused, the only failure
        assert done.returncode == 1
        (fail,) = _fails(done.stdout)
        assert fail.startswith("FAIL  backups do not leave the host: S3_BACKUP_BUCKET is on")

        closed = _free_port()
        broken = {
            **good,
            "REDIS_URL": f"redis://127.0.0.1:{closed}/0",
            "S3_BACKUP_BUCKET": "no-such-bucket",
            "SENTRY_DSN": f"http://public@127.0.0.1:{closed}/1",
        }
        done = await _jastipin(["check", "predeploy"], broken)
        assert done.returncode == 1
        fails = "\n".join(_fails(done.stdout))
        assert "FAIL  Redis does not answer at 127.0.0.1" in fails
        assert "FAIL  the backup bucket no-such-bucket cannot be reached" in fails
        assert f"FAIL  Sentry does not answer at 127.0.0.1:{closed}" in fails
        assert "Traceback" not in done.stdout + done.stderr

        no_sentry = {k: v for k, v in good.items() if k != "SENTRY_DSN"}
        done = await _jastipin(["check", "predeploy"], no_sentry)
        assert "FAIL  SENTRY_DSN is not set: in production errors must reach the tracker" in (
            done.stdout
        )
    finally:
        sentry.close()
        await sentry.wait_closed()


async def _outbox(url: str, rows: list[tuple[str, dt.timedelta]]) -> None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            user = User(locale="id")
            session.add(user)
            await session.flush()
            for status, age in rows:
                session.add(
                    OutboxMessage(
                        user_id=user.id,
                        payload={"type": "text", "text": {"body": "hai"}},
                        status=status,
                        created_at=utcnow() - age,
                    )
                )
    finally:
        await db.dispose()


async def test_postdeploy_judges_failures_and_waits_from_the_database(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path)
    minute = dt.timedelta(minutes=1)
    await _outbox(database_url, [("sent", minute)] * 5)
    report = await postdeploy(settings)
    assert report.failed == 0, report.lines
    assert "0 of 5 replies sent in the last 72 h failed" in report.lines[0]

    await _outbox(database_url, [("failed", minute), ("pending", 30 * minute)])
    report = await postdeploy(settings)
    assert report.failed == 2, report.lines
    text: Any = "\n".join(report.lines)
    assert "FAIL  1 of 6 replies sent in the last 72 h failed (16.67%, bound 1.00%)" in text
    assert "FAIL  the oldest reply waiting to be sent has waited 30" in text
    # an old failure outside the window no longer counts
    report = await postdeploy(settings, hours=0.01, max_lag_minutes=60)
    assert report.failed == 0, report.lines

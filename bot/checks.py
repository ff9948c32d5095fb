"""``jastipin check predeploy|smoke|postdeploy`` and the restore drill (RUNBOOK A and F).

Each check prints one sentence per item, ``ok`` or ``FAIL``, and the command exits 1
when anything failed, so a deploy script can stop on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.settings import Settings


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failed: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"ok    {text}")
        print(self.lines[-1], flush=True)

    def fail(self, text: str) -> None:
        self.failed += 1
        self.lines.append(f"FAIL  {text}")
        print(self.lines[-1], flush=True)

    def note(self, text: str) -> None:
        self.lines.append(f"note  {text}")
        print(self.lines[-1], flush=True)


# --- predeploy -------------------------------------------------------------------------

_REQUIRED = (
    (
        "PII_ENCRYPTION_KEY",
        "without it each process makes its own key and cannot read "
        "the phone numbers another one stored",
    ),
    ("WA_ACCESS_TOKEN", "without it nothing reaches WhatsApp (dev mode)"),
    ("WA_PHONE_ID", "the sending number's id"),
    ("WA_VERIFY_TOKEN", "Meta's webhook subscription needs it"),
    ("WA_APP_SECRET", "without it webhook signatures are not checked"),
    ("DATABASE_URL", "without it the app uses a SQLite file inside the container"),
    ("REDIS_URL", "without it queued jobs live in one process only"),
    ("S3_BACKUP_BUCKET", "without it proofs and backups never leave the host"),
    ("METRICS_TOKEN", "without it Prometheus outside the container cannot scrape"),
)


def presence(env: Mapping[str, str]) -> Report:
    """Which of the production settings and secrets are set (values never printed)."""
    report = Report()
    for name, why in _REQUIRED:
        if env.get(name) or env.get(f"{name}_FILE"):  # PII_ENCRYPTION_KEY_FILE
            report.ok(f"{name} is set")
        else:
            report.fail(f"{name} is not set: {why}")
    if not (env.get("S3_BUCKET") or env.get("CF_R2_BUCKET")):
        report.note("S3_BUCKET is not set: media stay on this host's disk")
    return report


async def predeploy(settings: Settings, env: Mapping[str, str]) -> Report:
    """Before a deploy: settings and secrets present, the database reachable and its
    pending migrations, the Graph API token accepted at ``WA_API_BASE``; in production
    also Redis, the S3 stores and Sentry answering, and backups that leave the host."""
    report = presence(env)
    await _migrations(settings, report)
    await _pii_key(settings, settings.database_url, report)
    await _graph_token(settings, report)
    if settings.app_env == "production":
        await _redis(settings, report)
        await _s3_stores(settings, report)
        _backups_off_host(settings, report)
        await _sentry(settings, report)
    return report


_LOCAL_STORES = ("minio", "localhost")  # the compose file's bundled MinIO, this host


def _host_of(url: str | None) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "") if url else ""


def _is_this_host(host: str) -> bool:
    """``host`` is the bundled store or resolves to this machine."""
    import ipaddress

    if host in _LOCAL_STORES:
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    local = {socket.gethostname(), socket.getfqdn()}
    if host in local:
        return True
    return any(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


async def _redis(settings: Settings, report: Report) -> None:
    if not settings.redis_url:
        return  # presence() said so
    import redis.asyncio as aioredis

    client = aioredis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        report.fail(f"Redis does not answer at {_host_of(settings.redis_url)}: {exc}")
    else:
        report.ok("Redis answers")
    finally:
        await client.aclose()


async def _s3_stores(settings: Settings, report: Report) -> None:
    """Each configured bucket exists and the credentials reach it (HEAD on the bucket)."""
    import boto3
    from botocore.config import Config

    endpoint, access_key, secret_key = settings.backup_store()
    stores = [
        (
            "media",
            settings.s3_bucket,
            settings.s3_endpoint_url,
            settings.s3_access_key,
            settings.s3_secret_key,
        ),
        ("backup", settings.s3_backup_bucket, endpoint, access_key, secret_key),
    ]
    for what, bucket, url, key, secret in stores:
        if not bucket:
            continue
        client = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            region_name="auto" if url else "us-east-1",
            config=Config(
                signature_version="s3v4",
                connect_timeout=3,
                read_timeout=5,
                retries={"max_attempts": 1},
            ),
        )
        try:
            await asyncio.to_thread(client.head_bucket, Bucket=bucket)
        except Exception as exc:
            # write-only backup credentials may not HEAD: a 403 there is the intended policy
            status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            if what == "backup" and status == 403:
                report.ok(f"the backup bucket {bucket} answers (write-only credentials)")
                continue
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            report.fail(f"the {what} bucket {bucket} cannot be reached: {first}")
        else:
            report.ok(f"the {what} bucket {bucket} answers")


def _backups_off_host(settings: Settings, report: Report) -> None:
    if not settings.s3_backup_bucket:
        return  # presence() said so
    endpoint, _, _ = settings.backup_store()
    host = _host_of(endpoint)
    if host and _is_this_host(host):
        report.fail(
            f"backups do not leave the host: S3_BACKUP_BUCKET is on {host}, the bundled "
            "store or this machine; set S3_BACKUP_ENDPOINT_URL (and its write-only "
            "S3_BACKUP_ACCESS_KEY_ID/S3_BACKUP_SECRET_ACCESS_KEY) to another provider "
            "(RUNBOOK F)"
        )
    elif (
        host
        and host == _host_of(settings.s3_endpoint_url)
        and (settings.s3_backup_access_key is None)
    ):
        report.fail(
            "backups share the media store's credentials, which can delete them: give "
            "S3_BACKUP_ACCESS_KEY_ID/S3_BACKUP_SECRET_ACCESS_KEY write-only rights (RUNBOOK F)"
        )
    else:
        report.ok(f"backups leave the host ({host or 'AWS S3'})")


async def _sentry(settings: Settings, report: Report) -> None:
    if not settings.sentry_dsn:
        report.fail("SENTRY_DSN is not set: in production errors must reach the tracker")
        return
    from urllib.parse import urlsplit

    parts = urlsplit(settings.sentry_dsn)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=3)
    except (OSError, TimeoutError) as exc:
        report.fail(f"Sentry does not answer at {host}:{port}: {exc or 'timed out'}")
        return
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    report.ok(f"Sentry answers at {host}:{port}")


async def _pii_key(settings: Settings, database_url: str, report: Report) -> bool:
    """The PII key opens the canary and sealed rows of ``database_url`` (no claim)."""
    from storage.crypto import PiiCipher
    from storage.db import Database
    from storage.keycheck import KeyMismatch, verify

    db = Database(database_url)
    cipher = PiiCipher(settings.pii_key)
    try:
        found = await verify(db, cipher, claim=False, samples_too=True)
    except KeyMismatch as exc:
        report.fail(str(exc))
        return False
    except Exception as exc:
        report.fail(f"the PII key could not be checked: {str(exc).splitlines()[0]}")
        return False
    finally:
        await db.dispose()
    report.ok(f"the PII key ({cipher.key_id}) opens the sealed data ({found})")
    return True


async def _migrations(settings: Settings, report: Report) -> None:
    from storage.migrate import current_revision, head_revision, pending_revisions

    try:
        current = await current_revision(settings.database_url)
    except Exception as exc:
        report.fail(f"the database cannot be reached: {str(exc).splitlines()[0]}")
        return
    head = head_revision()
    if current == head:
        report.ok(f"the database is at this release's head ({head}): no migration pending")
        return
    pending = pending_revisions(current)
    if pending is None:
        report.fail(
            f"the database is at revision {current}, which this release does not know: "
            "it was migrated by a newer release (roll forward, not back)"
        )
    else:
        report.note(
            f"{len(pending)} migration(s) pending ({', '.join(pending)}): the deploy's "
            "`jastipin db upgrade` applies them"
        )


async def _graph_token(settings: Settings, report: Report) -> None:
    from pywa.utils import Version

    if not settings.wa_access_token or not settings.wa_phone_id:
        report.fail("the Graph API token cannot be checked: WA_ACCESS_TOKEN/WA_PHONE_ID unset")
        return
    url = f"{settings.wa_api_base}/v{Version.GRAPH_API.value}/{settings.wa_phone_id}"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.get(
                url,
                params={"fields": "display_phone_number,verified_name"},
                headers={"Authorization": f"Bearer {settings.wa_access_token}"},
            )
    except httpx.HTTPError as exc:
        report.fail(f"the Graph API at {settings.wa_api_base} does not answer: {exc!r}")
        return
    if resp.status_code == 200:
        number = resp.json().get("display_phone_number", "?")
        report.ok(
            f"the Graph API accepts the token for phone id {settings.wa_phone_id} ({number})"
        )
        return
    error = {}
    with contextlib.suppress(ValueError):
        error = resp.json().get("error", {})
    report.fail(
        f"the Graph API refuses the token (HTTP {resp.status_code}, code "
        f"{error.get('code', '?')}: {error.get('message', resp.text[:200])}): "
        "replace WA_ACCESS_TOKEN (RUNBOOK D)"
    )


# --- smoke -----------------------------------------------------------------------------


async def smoke(
    settings: Settings, *, url: str, phone: str, text: str = "JOIN", wait_seconds: float = 30
) -> Report:
    """Against a running ``jastipin serve``: health, the webhook challenge, and a signed
    message from ``phone`` answered end to end (its reply accepted by the Graph API)."""
    report = Report()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        try:
            health = await client.get("/health")
        except httpx.HTTPError as exc:
            report.fail(f"{url} does not answer: {exc!r} (is `jastipin serve` running?)")
            return report
        body = _json(health)
        if health.status_code == 200 and body.get("status") == "ok":
            report.ok(f"/health answers ok ({body.get('checks')}, mode {body.get('mode')})")
        else:
            report.fail(f"/health answers {health.status_code}: {health.text[:300]}")
        challenge = secrets.token_hex(8)
        verify = await client.get(
            "/api/webhooks/whatsapp",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": settings.wa_verify_token or "",
                "hub.challenge": challenge,
            },
        )
        if verify.status_code == 200 and verify.text == challenge:
            report.ok("the webhook answers Meta's subscription challenge")
        else:
            report.fail(
                f"the webhook does not answer the challenge (HTTP {verify.status_code}): "
                "WA_VERIFY_TOKEN differs from the server's"
            )
        await _signed_join(
            settings, client, report, phone=phone, text=text, wait_seconds=wait_seconds
        )
    return report


async def _signed_join(
    settings: Settings,
    client: httpx.AsyncClient,
    report: Report,
    *,
    phone: str,
    text: str,
    wait_seconds: float,
) -> None:
    from bot import simulate
    from storage.db import Database
    from storage.repo import outbox, users
    from storage.sealed import open_cipher

    if not settings.wa_app_secret:
        report.fail("no signed test message can be sent: WA_APP_SECRET is not set")
        return
    cipher = open_cipher(settings.pii_key)
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            user = await users.find_user(session, cipher, bsuid=None, wa_id=phone)
            before = (
                max((m.id for m in await outbox.for_user(session, user.id)), default=0)
                if user
                else 0
            )
        raw = simulate.encode(simulate.text(phone, text, name="Smoke check"))
        started = time.monotonic()
        resp = await client.post(
            "/api/webhooks/whatsapp",
            content=raw,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": simulate.sign(raw, settings.wa_app_secret),
            },
        )
        if resp.status_code != 200:
            report.fail(
                f"the signed test message was refused: HTTP {resp.status_code} "
                f"{resp.text[:200]} (WA_APP_SECRET differs from the server's?)"
            )
            return
        while time.monotonic() - started < wait_seconds:
            async with db.read() as session:
                user = await users.find_user(session, cipher, bsuid=None, wa_id=phone)
                rows = await outbox.for_user(session, user.id, after_id=before) if user else []
            if any(r.status == "sent" for r in rows):
                report.ok(
                    f"a signed {text!r} from the test number was answered and the reply "
                    f"accepted by the Graph API in {time.monotonic() - started:.1f} s"
                )
                return
            if rows and all(r.status == "failed" for r in rows):
                report.fail(f"the reply to {text!r} failed to send: {rows[-1].error_title}")
                return
            await asyncio.sleep(0.2)
        report.fail(
            f"no reply to the signed {text!r} was sent within {wait_seconds:.0f} s: is a "
            "worker running, is the outbox moving (`jastipin queue status`)?"
        )
    finally:
        await db.dispose()


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# --- postdeploy ------------------------------------------------------------------------


async def postdeploy(
    settings: Settings,
    *,
    hours: float = 72,
    max_lag_minutes: float = 10,
    max_failure_rate: float = 0.01,
) -> Report:
    """The 72-hour watch, from the database: send failures, parked inbound units and
    how long the queues wait, against the alerts' bounds."""
    from storage.db import Database
    from storage.models import utcnow
    from storage.repo.queues import health_since

    report = Report()
    now = utcnow()
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            h = await health_since(session, now - dt.timedelta(hours=hours))
    finally:
        await db.dispose()
    out, inb = h["outbound"], h["inbound"]
    done = out.get("sent", 0) + out.get("failed", 0)
    rate = out.get("failed", 0) / done if done else 0.0
    line = (
        f"{out.get('failed', 0)} of {done} replies sent in the last {hours:g} h failed "
        f"({rate:.2%}, bound {max_failure_rate:.2%})"
    )
    report.ok(line) if rate <= max_failure_rate else report.fail(line + ": RUNBOOK C")
    failed_units = inb.get("failed", 0)
    line = f"{failed_units} inbound unit(s) of the last {hours:g} h parked as failed"
    report.ok(line) if not failed_units else report.fail(
        line + ": read their last_error, fix, `jastipin queue retry` (RUNBOOK B)"
    )
    for what, oldest, where in (
        ("reply waiting to be sent", h["oldest_waiting_send"], "C"),
        ("inbound unit waiting to be handled", h["oldest_pending_unit"], "B"),
    ):
        lag = (now - oldest).total_seconds() / 60 if oldest else 0.0
        line = f"the oldest {what} has waited {lag:.1f} min (bound {max_lag_minutes:g} min)"
        report.ok(line) if lag <= max_lag_minutes else report.fail(line + f": RUNBOOK {where}")
    return report


# --- restore drill ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def drill(
    settings: Settings,
    backup: Path,
    *,
    rto_minutes: float,
    rpo_hours: float,
    keep: bool = False,
) -> Report:
    """Restore ``backup`` into a fresh database, migrate it, serve it on a loopback port
    in dev mode (replies go to the local sandbox, jobs stay in the process: nothing
    reaches WhatsApp or the production queues) and run the smoke check against it."""
    from storage import dbbackup

    report = Report()
    started = time.monotonic()
    taken = dbbackup.stamp_of(backup.name)
    age_h = (dt.datetime.now(dt.UTC) - taken).total_seconds() / 3600 if taken else 0.0
    line = f"the backup {backup.name} is {age_h:.1f} h old (RPO {rpo_hours:g} h)"
    report.ok(line) if age_h <= rpo_hours else report.fail(
        line + ": backups are not running often enough"
    )
    name = f"jastipin_drill_{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}_{secrets.token_hex(2)}"
    if not dbbackup.Target(settings.database_url).postgres:
        name += ".db"
    scratch = dbbackup.create_scratch(settings.database_url, name)
    workdir = Path(tempfile.mkdtemp(prefix="jastipin-drill-"))
    try:
        t = time.monotonic()
        await asyncio.to_thread(dbbackup.restore, backup, scratch)
        restore_s = time.monotonic() - t
        t = time.monotonic()
        migrated = await asyncio.to_thread(_jastipin, ["db", "upgrade"], _drill_env(scratch, 0))
        migrate_s = time.monotonic() - t
        if migrated.returncode != 0:
            report.fail(
                f"`jastipin db upgrade` failed on the restored copy: "
                f"{migrated.stderr.strip()[-500:]}"
            )
            return report
        report.ok(
            f"restored in {restore_s:.1f} s and migrated in {migrate_s:.1f} s "
            f"into a fresh database ({name})"
        )
        if not await _pii_key(settings, scratch, report):
            return report
        t = time.monotonic()
        port = _free_port()
        env = _drill_env(scratch, port)
        log = (workdir / "serve.log").open("w")
        proc = await asyncio.create_subprocess_exec(
            _jastipin_exe(), "serve", env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            if not await _wait_healthy(url, proc):
                report.fail(
                    "the restored copy did not start serving: "
                    + (workdir / "serve.log").read_text()[-500:]
                )
                return report
            drill_settings = Settings.from_env(env)
            phone = "62899" + "".join(secrets.choice("0123456789") for _ in range(8))
            checked = await smoke(drill_settings, url=url, phone=phone)
            report.lines += checked.lines
            report.failed += checked.failed
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            log.close()
        total = time.monotonic() - started
        line = (
            f"restore drill took {total:.1f} s from backup to a smoke-checked copy "
            f"(smoke {time.monotonic() - t:.1f} s; RTO {rto_minutes:g} min)"
        )
        report.ok(line) if total <= rto_minutes * 60 else report.fail(line)
    finally:
        if keep:
            report.note(f"kept the restored copy: {scratch}")
        else:
            dbbackup.drop_scratch(settings.database_url, scratch)
    return report


def _drill_env(database_url: str, port: int) -> dict[str, str]:
    """The restored copy's environment: this one, minus everything that reaches out."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WA_ACCESS_TOKEN", "WA_API_BASE", "REDIS_URL", "SENTRY_DSN", "HOST")
        and not k.startswith("METRICS_")
    }
    env.update(
        DATABASE_URL=database_url,
        PORT=str(port),
        OUTBOX_INLINE="1",
        WA_VERIFY_TOKEN=env.get("WA_VERIFY_TOKEN") or secrets.token_hex(8),
        WA_APP_SECRET=env.get("WA_APP_SECRET") or secrets.token_hex(16),
    )
    return env


def _jastipin_exe() -> str:
    beside = Path(sys.executable).parent / "jastipin"
    return str(beside) if beside.exists() else "jastipin"


def _jastipin(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_jastipin_exe(), *argv], env=env, capture_output=True, text=True, timeout=900
    )


async def _wait_healthy(url: str, proc: asyncio.subprocess.Process) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        for _ in range(300):
            if proc.returncode is not None:
                return False
            try:
                if (await client.get("/health")).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    return False

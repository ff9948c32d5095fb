"""The ``jastipin`` command line: serve, worker, scheduler, db, backup, restore, check, demo,
chat, admin, jastiper."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.settings import LOOPBACK, ConfigError, Settings, is_loopback

log = logging.getLogger("jastipin.cli")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"jastipin: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _init(service: str) -> Settings:
    from bot.logs import setup_logging
    from bot.reports import init_sentry

    settings = _settings()
    setup_logging(service, settings.log_level)
    if settings.sentry_dsn:
        init_sentry(settings.sentry_dsn, environment=settings.app_env)
    _key_checked(settings)
    return settings


def _key_checked(settings: Settings, *, claim: bool = True) -> None:
    """Refuse to go on with a PII key that does not open this database's sealed data
    (or while a key rotation is unfinished): one sentence, exit 3 (storage/keycheck.py)."""
    from sqlalchemy.exc import SQLAlchemyError

    from storage.crypto import PiiCipher
    from storage.db import Database, private_sqlite_file
    from storage.keycheck import KeyMismatch, verify

    if settings.is_sqlite and not Path(settings.database_url.split("///", 1)[-1]).exists():
        return  # a first start: no database yet, nothing sealed (it is made with our key)

    async def run() -> None:
        private_sqlite_file(settings.database_url, create_dir=False)
        db = Database(settings.database_url)
        try:
            await verify(db, PiiCipher(settings.pii_key), claim=claim)
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
    except KeyMismatch as exc:
        print(f"jastipin: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    except (SQLAlchemyError, OSError) as exc:
        print(
            "jastipin: refusing to start: the PII key cannot be checked, the database "
            f"does not answer ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
            file=sys.stderr,
        )
        raise SystemExit(3) from None


def _fast_event_loop() -> None:
    """uvloop for the busy processes when it is installed (``JASTIPIN_UVLOOP=0``: the
    standard loop): the event loop and the thread hand-offs of aiosqlite are a sixth of
    the API's CPU under load (docs/BENCHMARKS.md)."""
    import os

    if os.environ.get("JASTIPIN_UVLOOP", "1") == "0":
        return
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def cmd_serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from bot.app import create_app
    from bot.devchat.graph import with_local_graph
    from bot.runtime import WEBHOOK_DRAIN_SECONDS

    settings = _init("api")
    _fast_event_loop()
    requested = args.host or settings.host
    host = settings.listen_host(requested)
    port = args.port or settings.port
    if settings.dev_mode:
        local = host if is_loopback(host) else LOOPBACK
        origin = f"http://{f'[{local}]' if ':' in local else local}:{port}"
        settings = with_local_graph(settings, origin)
        log.warning(
            "dev mode: no WA_ACCESS_TOKEN, replies go to the local sandbox "
            "(open %s/dev/chat or run `jastipin chat`)",
            origin,
        )
        print(f"Dev mode: open {origin}/dev/chat to chat with the bot", flush=True)
    if not settings.signatures_checked:
        log.warning(
            "webhook signatures are not checked (no WA_APP_SECRET), so only this machine "
            "may call: listening on loopback only (%s)%s",
            host,
            f", not on {requested} as asked; set WA_APP_SECRET to listen there"
            if host != requested
            else "",
        )
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        # SIGTERM: stop listening, give the requests in flight this long, then shut down
        # the rest in order (bot/app.py)
        shutdown_timeout=WEBHOOK_DRAIN_SECONDS,
        access_log=None,
        print=lambda msg: log.info(msg),
    )


def cmd_worker(args: argparse.Namespace) -> None:
    from bot.worker import run_worker

    settings = _init("worker")
    _fast_event_loop()
    asyncio.run(run_worker(settings))


def cmd_scheduler(args: argparse.Namespace) -> None:
    from bot.worker import run_scheduler

    settings = _init("scheduler")
    failed = asyncio.run(run_scheduler(settings, once=args.once))
    if args.once and failed:
        print(
            f"jastipin: {failed} scheduler job(s) failed on this pass (the log says which)",
            file=sys.stderr,
        )
        raise SystemExit(1)


def cmd_db_upgrade(args: argparse.Namespace) -> None:
    from storage.keycheck import KeyMismatch
    from storage.migrate import upgrade

    settings = _settings()
    _key_checked(settings, claim=False)  # a wrong key changes nothing, not even the schema
    try:
        upgrade(settings.database_url, args.revision, pii_key=settings.pii_key)
    except KeyMismatch as exc:
        print(f"jastipin: refusing to upgrade: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    _key_checked(settings)  # seals the canary if an upgrade without a key left none
    resealed = asyncio.run(_reseal(settings)) if args.revision == "head" else 0
    if resealed:
        print(f"{resealed} values stored before sealing are now encrypted")
    print(f"database at revision {args.revision}")


def cmd_db_revision(args: argparse.Namespace) -> None:
    from alembic.util import CommandError

    from storage.migrate import revision

    settings = _settings()
    try:
        path = revision(settings.database_url, args.message, empty=args.empty)
    except CommandError as exc:
        print(
            f"jastipin: {exc} (run `jastipin db upgrade` first: a migration is generated "
            "from the difference between the models and a database at head)",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    print(f"created {path}: read it, make it non-destructive (docs/RUNBOOK.md, A)")


async def _reseal(settings: Settings) -> int:
    """Encrypt what an older release stored in plain text (migration 0006)."""
    from storage.db import Database
    from storage.repo.privacy import reseal
    from storage.sealed import open_cipher

    open_cipher(settings.pii_key)
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            return await reseal(session)
    finally:
        await db.dispose()


def cmd_demo(args: argparse.Namespace) -> None:
    from storage.db import Database
    from storage.demo import seed_demo
    from storage.media import build_media_store
    from storage.sealed import open_cipher

    settings = _settings()
    _key_checked(settings)

    async def run() -> bool:
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                return await seed_demo(
                    session, open_cipher(settings.pii_key), build_media_store(settings)
                )
        finally:
            await db.dispose()

    created = asyncio.run(run())
    print("demo data created" if created else "demo data already present")


def cmd_chat(args: argparse.Namespace) -> None:
    from bot.chat import run_chat

    settings = _settings()
    _key_checked(settings)
    asyncio.run(run_chat(settings, phone=args.phone, name=args.name))


def cmd_admin_create_user(args: argparse.Namespace) -> None:
    from bot.accounts import create_admin

    settings = _settings()
    password = sys.stdin.readline().strip() if args.password_stdin else getpass.getpass()
    if len(password) < 10:
        print("jastipin: the password needs at least 10 characters", file=sys.stderr)
        raise SystemExit(2)
    asyncio.run(create_admin(settings, args.email, password))
    print(f"admin user {args.email} ready")


def cmd_admin_disable_user(args: argparse.Namespace) -> None:
    from bot.accounts import disable_admin

    settings = _settings()
    if not asyncio.run(disable_admin(settings, args.email)):
        print(f"jastipin: no admin user {args.email}", file=sys.stderr)
        raise SystemExit(1)
    print(f"admin user {args.email} disabled; their sessions are ended")


def cmd_jastiper_add(args: argparse.Namespace) -> None:
    from bot.accounts import add_jastiper

    settings = _settings()
    _key_checked(settings)
    created = asyncio.run(
        add_jastiper(
            settings,
            phone=args.phone,
            name=args.name,
            bank_name=args.bank,
            account_number=args.account,
            account_name=args.account_name,
        )
    )
    print(f"jastiper {args.name} {'added' if created else 'updated and approved'}")


def cmd_queue(args: argparse.Namespace) -> None:
    from storage.db import Database
    from storage.repo import inbox, outbox

    settings = _settings()

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            if args.queue == "retry":
                async with db.transaction() as session:
                    units = await inbox.reset_failed(session)
                    rows = await outbox.requeue_failed(session)
                print(f"requeued {units} inbound update(s) and {rows} outbox message(s)")
            async with db.read() as session:
                print("inbox ", await inbox.count_by_status(session))
                print("outbox", await outbox.count_by_status(session))
        finally:
            await db.dispose()

    asyncio.run(run())


def _parked_units() -> None:
    """Inbound units parked as failed (a poison unit, a unit failing past its attempts):
    id, kind, attempts, error, never the body."""
    from storage.db import Database
    from storage.repo import queues

    settings = _settings()

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            async with db.read() as session:
                units = await queues.failed_units(session)
        except Exception as exc:  # the dead letters above are still worth having
            print(f"parked inbound units: the database could not be read ({type(exc).__name__})")
            return
        finally:
            await db.dispose()
        for u in units:
            error = (u.last_error or "").strip().splitlines()[-1:] or [""]
            print(f"inbox:{u.id}  {u.kind}  attempts={u.attempts}  {error[0][:200]}")
        print(f"{len(units)} parked inbound unit(s) (jastipin queue retry sends them again)")

    asyncio.run(run())


def cmd_dead(args: argparse.Namespace) -> None:
    """Dramatiq's dead letters (jobs that failed past their retries) and inbound units
    parked as failed."""
    from bot.broker import build_broker, dead_letters, retry_dead_letter
    from bot.tasks import build_actors

    settings = _settings()
    broker = build_broker(settings)
    build_actors(broker, settings)  # declares the queues
    if not settings.redis_url:
        print("no REDIS_URL: the embedded broker keeps no dead letters between runs")
    if args.retry:
        ids = [m.message_id for m in dead_letters(broker)] if args.retry == "all" else [args.retry]
        done = sum(retry_dead_letter(broker, message_id) for message_id in ids)
        print(f"requeued {done} dead job(s)")
        return
    letters = dead_letters(broker)
    for m in letters:
        error = str(m.options.get("traceback", "")).strip().splitlines()[-1:] or [""]
        print(f"{m.message_id}  {m.queue_name}  {m.actor_name}{tuple(m.args)}  {error[0]}")
    print(f"{len(letters)} dead job(s)")
    _parked_units()


def cmd_template(args: argparse.Namespace) -> None:
    """Approved WhatsApp templates by purpose and locale (data, not code)."""
    from bot.transport import template_language
    from storage.repo import messaging

    if args.template == "set" and template_language(args.language) is None:
        print(f"jastipin: unknown template language {args.language!r}", file=sys.stderr)
        raise SystemExit(2)

    async def change(session) -> None:  # type: ignore[no-untyped-def]
        if args.template == "set":
            await messaging.set_template(
                session,
                args.purpose,
                locale=args.locale,
                name=args.name,
                language=args.language,
                category=args.category,
            )
        for t in await messaging.all_templates(session):
            print(f"{t.purpose:10} {t.locale:3} {t.name} ({t.language}, {t.category})")

    _in_transaction(change)


def cmd_rates(args: argparse.Namespace) -> None:
    """The rate table: Rupiah per message by category, newest valid row wins."""
    from storage.repo import messaging

    async def change(session) -> None:  # type: ignore[no-untyped-def]
        if args.rates == "set":
            await messaging.set_rate(session, args.category, args.rupiah)
            await session.flush()
        default = _settings().cost_estimator_rate
        for category, rupiah in (await messaging.rates(session, default=default)).items():
            print(f"{category:15} Rp {rupiah}")

    _in_transaction(change)


def cmd_costs(args: argparse.Namespace) -> None:
    """Billable messages and their cost per day and category."""
    from storage.repo import messaging

    async def show(session) -> None:  # type: ignore[no-untyped-def]
        rows = await messaging.cost_by_day(session, days=args.days)
        for day, category, n, rupiah in rows:
            print(f"{day}  {category:12} {n:6} msg  Rp {rupiah}")
        print(f"total Rp {sum(r[3] for r in rows)} over {args.days} day(s)")

    _in_transaction(show)


def _in_transaction(body) -> None:  # type: ignore[no-untyped-def]
    from storage.db import Database

    settings = _settings()

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                await body(session)
        except ValueError as exc:
            print(f"jastipin: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        finally:
            await db.dispose()

    asyncio.run(run())


def cmd_backup(args: argparse.Namespace) -> None:
    """A backup now, its off-host copy, and pruning (RUNBOOK F)."""
    from storage import dbbackup

    settings = _settings()
    directory = Path(args.dir) if args.dir else settings.backup_dir
    keep = settings.backup_keep_days
    try:
        path = dbbackup.take(settings.database_url, directory)
        print(f"backup written: {path} ({path.stat().st_size} bytes)")
        for name in dbbackup.prune_local(directory, keep):
            print(f"pruned {name} (older than {keep} days)")
        off_host = False
        if settings.s3_backup_bucket:
            bucket = dbbackup.Bucket(settings)
            key = bucket.upload(path)
            off_host = True
            print(f"copied off the host: s3://{bucket.name}/{key}")
            try:
                for name in bucket.prune(keep):
                    print(
                        f"pruned s3://{bucket.name}/{dbbackup.PREFIX}{name}"
                        f" (older than {keep} days)"
                    )
            except dbbackup.BackupPermissionError:
                # write-only backup credentials, as RUNBOOK F sets them: the bucket's
                # lifecycle rule prunes, this process cannot delete a backup
                print("off-host copies are pruned by the bucket's lifecycle rule")
        else:
            print(
                "jastipin: S3_BACKUP_BUCKET is not set: this backup stays on this host",
                file=sys.stderr,
            )
        _record_backup(settings, path, off_host=off_host)
        if args.drill:
            _drill(settings, path, args)
    except dbbackup.BackupError as exc:
        print(f"jastipin: backup failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _record_backup(settings: Settings, path: Path, *, off_host: bool) -> None:
    """Write the success in the audit log, which every process's metrics read
    (``jastipin_backup_last_success_timestamp_seconds``, alert JastipinBackupStale)."""
    from storage.db import Database
    from storage.repo import audit
    from storage.repo.queues import BACKUP_DONE

    size = path.stat().st_size

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                audit.record(session, BACKUP_DONE, file=path.name, bytes=size, off_host=off_host)
        finally:
            await db.dispose()

    asyncio.run(run())


def _drill(settings: Settings, backup: Path, args: argparse.Namespace) -> None:
    """The restore drill on ``backup``; exit 1 when a check failed."""
    from bot.checks import drill

    report = asyncio.run(
        drill(
            settings,
            backup,
            rto_minutes=args.rto_minutes,
            rpo_hours=args.rpo_hours,
            keep=args.keep,
        )
    )
    if report.failed:
        print(f"jastipin: the restore drill failed ({report.failed} check(s))", file=sys.stderr)
        raise SystemExit(1)
    print("restore drill passed")


def _backup_file(settings: Settings, args: argparse.Namespace) -> Path:
    """The backup ``restore`` works on: a file, or the newest here or in the bucket."""
    from storage import dbbackup

    directory = settings.backup_dir
    if args.from_bucket:
        bucket = dbbackup.Bucket(settings)
        names = bucket.names()
        name = args.backup or (names[-1] if names else None)
        if name is None or name not in names:
            where = f"s3://{bucket.name}/{dbbackup.PREFIX}"
            raise dbbackup.BackupError(
                f"no backup {name} in {where}" if name else f"no backup in {where}"
            )
        return bucket.download(name, directory / "downloaded")
    if args.backup:
        return Path(args.backup)
    newest = dbbackup.newest_local(directory)
    if newest is None:
        raise dbbackup.BackupError(f"no backup in {directory}: run `jastipin backup` first")
    return newest


def cmd_restore(args: argparse.Namespace) -> None:
    """Restore into an empty database, or rehearse it (``--drill``)."""
    from storage import dbbackup

    settings = _settings()
    try:
        backup = _backup_file(settings, args)
        if args.drill:
            _drill(settings, backup, args)
            return
        target = args.into or settings.database_url
        dbbackup.restore(backup, target)
    except dbbackup.BackupError as exc:
        print(f"jastipin: restore failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"restored {backup.name}; now run `jastipin db upgrade`, then start the processes")


def cmd_check(args: argparse.Namespace) -> None:
    import os

    from bot import checks

    if args.check == "predeploy":
        try:
            settings = Settings.from_env()
        except ConfigError as exc:
            report = checks.presence(os.environ)
            report.fail(f"the configuration is refused: {exc}")
        else:
            report = asyncio.run(checks.predeploy(settings, os.environ))
    elif args.check == "smoke":
        settings = _settings()
        _key_checked(settings, claim=False)
        if not args.phone:
            print(
                "jastipin: give --phone: your own test WhatsApp number (E.164), the one "
                "the test JOIN comes from and the reply goes to",
                file=sys.stderr,
            )
            raise SystemExit(2)
        url = args.url or f"http://127.0.0.1:{settings.port}"
        text = f"JOIN {args.code}" if args.code else "JOIN"
        report = asyncio.run(
            checks.smoke(settings, url=url, phone=args.phone, text=text, wait_seconds=args.timeout)
        )
    else:
        settings = _settings()
        report = asyncio.run(
            checks.postdeploy(
                settings,
                hours=args.hours,
                max_lag_minutes=args.max_lag_minutes,
                max_failure_rate=args.max_failure_rate,
            )
        )
    if report.failed:
        print(
            f"jastipin: check {args.check}: {report.failed} problem(s), see FAIL above",
            file=sys.stderr,
        )
        raise SystemExit(1)
    print(f"check {args.check}: all good")


def _old_key() -> bytes:
    """The key being rotated away from: PII_ENCRYPTION_KEY_OLD or _OLD_FILE."""
    import os

    from bot.settings import _decode_key, _read_key_file

    raw, path = (
        os.environ.get("PII_ENCRYPTION_KEY_OLD"),
        os.environ.get("PII_ENCRYPTION_KEY_OLD_FILE"),
    )
    try:
        if raw:
            return _decode_key(raw)
        if path:
            return _read_key_file(Path(path))
    except ConfigError as exc:
        print(f"jastipin: PII_ENCRYPTION_KEY_OLD: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(
        "jastipin: set PII_ENCRYPTION_KEY_OLD (or PII_ENCRYPTION_KEY_OLD_FILE) to the key the "
        "data is sealed with now, and PII_ENCRYPTION_KEY to the new one",
        file=sys.stderr,
    )
    raise SystemExit(2)


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    """Reseal every sealed column and file with PII_ENCRYPTION_KEY (docs/RUNBOOK.md)."""
    from storage import rotation
    from storage.crypto import PiiCipher
    from storage.db import Database
    from storage.keycheck import KeyMismatch
    from storage.media import build_media_store, build_s3_store

    settings = _settings()
    old_key = _old_key()
    if old_key == settings.pii_key:
        print("jastipin: the old and the new PII key are the same", file=sys.stderr)
        raise SystemExit(2)
    old, new = PiiCipher(old_key), PiiCipher(settings.pii_key)
    keyring = PiiCipher(settings.pii_key, previous=old_key)

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            state = await rotation.begin(db, old, new)
            if state == "done":
                print(f"the database is already sealed with key {new.key_id}: nothing to do")
                return
            print(f"rotation {state}: key {old.key_id} -> {new.key_id}", flush=True)

            async def tick(p: rotation.Progress) -> None:
                if p.batches % 50 == 0:
                    print(f"  {p.values} values, {p.digests} digests resealed", flush=True)

            done = await rotation.reseal_rows(db, keyring, batch=args.batch, on_batch=tick)
            stores = [build_media_store(settings, sealed=False)]
            if settings.s3_backup_bucket:
                stores.append(build_s3_store(settings, settings.s3_backup_bucket))
            for store in stores:
                await rotation.reseal_files(store, keyring, progress=done)
            await rotation.finish(db, new)
            print(
                f"rotated to key {new.key_id}: {done.values} values, {done.digests} digests "
                f"and {done.files} files resealed; remove PII_ENCRYPTION_KEY_OLD and start "
                "the processes with the new key"
            )
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
    except KeyMismatch as exc:
        print(f"jastipin: keys rotate: {exc}", file=sys.stderr)
        raise SystemExit(3) from None


def cmd_keys_seal_files(args: argparse.Namespace) -> None:
    """Seal the media files an older release stored in plain text."""
    from storage import rotation
    from storage.crypto import PiiCipher, WrongKey
    from storage.media import build_media_store

    settings = _settings()
    _key_checked(settings, claim=False)
    store = build_media_store(settings, sealed=False)
    try:
        done = asyncio.run(rotation.reseal_files(store, PiiCipher(settings.pii_key)))
    except WrongKey as exc:
        print(
            f"jastipin: keys seal-files: {exc}: finish the rotation with `jastipin keys "
            "rotate` (PII_ENCRYPTION_KEY_OLD = the key it was sealed with)",
            file=sys.stderr,
        )
        raise SystemExit(3) from None
    print(f"{done.files} files sealed")


def _drill_options(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--drill", action="store_true", help=text)
    p.add_argument("--rto-minutes", type=float, default=30, help="the drill's time budget")
    p.add_argument("--rpo-hours", type=float, default=24, help="the oldest backup acceptable")
    p.add_argument("--keep", action="store_true", help="keep the drill's scratch database")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jastipin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the web app (webhook, health, public pages)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="send the outbox and run queued jobs")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("scheduler", help="run periodic jobs (safe to run twice)")
    p.add_argument("--once", action="store_true", help="run every job once and exit")
    p.set_defaults(func=cmd_scheduler)

    db = sub.add_parser("db", help="database commands").add_subparsers(dest="db", required=True)
    p = db.add_parser("upgrade", help="apply Alembic migrations")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=cmd_db_upgrade)
    p = db.add_parser("revision", help="write a new migration from the models (developers)")
    p.add_argument("-m", "--message", required=True, help="what it changes, a few words")
    p.add_argument("--empty", action="store_true", help="a blank migration to fill in")
    p.set_defaults(func=cmd_db_revision)

    p = sub.add_parser("backup", help="back up the database, copy it off the host, prune")
    p.add_argument("--dir", help="where to write it (default BACKUP_DIR)")
    _drill_options(p, "then rehearse restoring it (the restore drill, with this PII key)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup into an empty database, or drill")
    p.add_argument("backup", nargs="?", help="a backup file (default: the newest)")
    p.add_argument("--from-bucket", action="store_true", help="take it from S3_BACKUP_BUCKET")
    p.add_argument("--into", metavar="DATABASE_URL", help="the empty target (default: ours)")
    _drill_options(
        p,
        "restore into a fresh scratch database, migrate, open its sealed data, serve and "
        "smoke-check it",
    )
    p.set_defaults(func=cmd_restore)

    check = sub.add_parser("check", help="deploy checklists").add_subparsers(
        dest="check", required=True
    )
    check.add_parser(
        "predeploy", help="configuration, secrets, pending migrations, Graph API token"
    ).set_defaults(func=cmd_check)
    p = check.add_parser("smoke", help="a running server: health, challenge, a signed JOIN")
    p.add_argument("--url", help="the server (default http://127.0.0.1:$PORT)")
    p.add_argument("--phone", help="your test WhatsApp number, E.164")
    p.add_argument("--code", help="a trip code to JOIN (default: a bare JOIN)")
    p.add_argument("--timeout", type=float, default=30, help="seconds to wait for the reply")
    p.set_defaults(func=cmd_check)
    p = check.add_parser("postdeploy", help="failures and queue waits since the deploy")
    p.add_argument("--hours", type=float, default=72, help="how far back to look")
    p.add_argument("--max-lag-minutes", type=float, default=10)
    p.add_argument("--max-failure-rate", type=float, default=0.01)
    p.set_defaults(func=cmd_check)

    keys = sub.add_parser("keys", help="the PII encryption key").add_subparsers(
        dest="keys", required=True
    )
    p = keys.add_parser(
        "rotate",
        help="reseal everything with PII_ENCRYPTION_KEY (old key: PII_ENCRYPTION_KEY_OLD); "
        "run again to resume",
    )
    p.add_argument("--batch", type=int, default=200, help="rows per committed batch")
    p.set_defaults(func=cmd_keys_rotate)
    p = keys.add_parser("seal-files", help="seal media files stored before sealing")
    p.set_defaults(func=cmd_keys_seal_files)

    p = sub.add_parser("demo", help="seed the demo jastiper, trip and catalogue")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("chat", help="chat with the local bot in this terminal")
    p.add_argument("--phone", required=True, help="your WhatsApp number, E.164")
    p.add_argument("--name", default="Buyer", help="the WhatsApp profile name to send")
    p.set_defaults(func=cmd_chat)

    queue = sub.add_parser("queue", help="inspect and retry the inbox and outbox")
    queue_sub = queue.add_subparsers(dest="queue", required=True)
    for name, text in (
        ("status", "count inbound updates and outbox messages by status"),
        ("retry", "requeue failed inbound updates and failed outbox messages"),
    ):
        queue_sub.add_parser(name, help=text).set_defaults(func=cmd_queue)
    p = queue_sub.add_parser("dead", help="list Dramatiq's dead-lettered jobs, or retry them")
    p.add_argument("--retry", metavar="ID|all", help="requeue one dead job, or all")
    p.set_defaults(func=cmd_dead)

    template = sub.add_parser("template", help="approved WhatsApp templates").add_subparsers(
        dest="template", required=True
    )
    template.add_parser("list", help="list the configured templates").set_defaults(
        func=cmd_template
    )
    p = template.add_parser("set", help="configure the template for a purpose and locale")
    p.add_argument("purpose", choices=("broadcast", "products", "summary", "reminder"))
    p.add_argument("name", help="the template's name at Meta")
    p.add_argument("--language", required=True, help="Meta's language code: id, en_US, ...")
    p.add_argument("--category", required=True, choices=("marketing", "utility"))
    p.add_argument("--locale", default="id", choices=("id", "en"), help="the buyers' locale")
    p.set_defaults(func=cmd_template)

    rates = sub.add_parser("rates", help="the message rate table").add_subparsers(
        dest="rates", required=True
    )
    rates.add_parser("list", help="the rates in force now").set_defaults(func=cmd_rates)
    p = rates.add_parser("set", help="a new rate for a category, from now on")
    p.add_argument("category", choices=("marketing", "utility", "authentication", "service"))
    p.add_argument("rupiah", type=int)
    p.set_defaults(func=cmd_rates)

    p = sub.add_parser("costs", help="billable messages and cost per day")
    p.add_argument("--days", type=int, default=7)
    p.set_defaults(func=cmd_costs)

    admin = sub.add_parser("admin", help="admin panel users").add_subparsers(
        dest="admin", required=True
    )
    p = admin.add_parser("create-user", help="create or reset an admin login")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_admin_create_user)
    p = admin.add_parser("disable-user", help="disable an admin login and end its sessions")
    p.add_argument("--email", required=True)
    p.set_defaults(func=cmd_admin_disable_user)

    jastiper = sub.add_parser("jastiper", help="jastiper accounts").add_subparsers(
        dest="jastiper", required=True
    )
    p = jastiper.add_parser("add", help="add (or approve) a jastiper by phone")
    p.add_argument("--phone", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--bank")
    p.add_argument("--account")
    p.add_argument("--account-name")
    p.set_defaults(func=cmd_jastiper_add)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        args.func(args)


if __name__ == "__main__":
    main()

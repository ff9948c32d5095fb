"""The ``jastipin`` command line: serve, worker, scheduler, db, demo, chat, admin, jastiper."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import sys
from collections.abc import Sequence

from bot.settings import ConfigError, Settings

log = logging.getLogger("jastipin.cli")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"jastipin: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _init(service: str) -> Settings:
    from bot.logs import setup_logging

    settings = _settings()
    setup_logging(service, settings.log_level)
    if settings.sentry_dsn:
        import sentry_sdk

        sentry_sdk.init(dsn=settings.sentry_dsn, send_default_pii=False)
    return settings


def cmd_serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from bot.app import create_app

    settings = _init("api")
    if settings.dev_mode:
        log.warning(
            "dev mode: no WA_ACCESS_TOKEN, replies go to the local sandbox "
            "(open /dev/simulator or run `jastipin chat`)"
        )
    web.run_app(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        access_log=None,
        print=lambda msg: log.info(msg),
    )


def cmd_worker(args: argparse.Namespace) -> None:
    from bot.worker import run_worker

    settings = _init("worker")
    asyncio.run(run_worker(settings))


def cmd_scheduler(args: argparse.Namespace) -> None:
    from bot.worker import run_scheduler

    settings = _init("scheduler")
    asyncio.run(run_scheduler(settings, once=args.once))


def cmd_db_upgrade(args: argparse.Namespace) -> None:
    from storage.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url, args.revision)
    print(f"database at revision {args.revision}")


def cmd_demo(args: argparse.Namespace) -> None:
    from storage.crypto import PiiCipher
    from storage.db import Database
    from storage.demo import seed_demo

    settings = _settings()

    async def run() -> bool:
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                return await seed_demo(session, PiiCipher(settings.pii_key))
        finally:
            await db.dispose()

    created = asyncio.run(run())
    print("demo data created" if created else "demo data already present")


def cmd_chat(args: argparse.Namespace) -> None:
    from bot.chat import run_chat

    settings = _settings()
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


def cmd_jastiper_add(args: argparse.Namespace) -> None:
    from bot.accounts import add_jastiper

    settings = _settings()
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

    admin = sub.add_parser("admin", help="admin panel users").add_subparsers(
        dest="admin", required=True
    )
    p = admin.add_parser("create-user", help="create or reset an admin login")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_admin_create_user)

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

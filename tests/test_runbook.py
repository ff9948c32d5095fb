"""The runbook cannot drift from the code: every ``jastipin …`` command it gives is one
the CLI accepts and every CLI command is in it; every command is written as it is run on
the compose host (``docker compose exec|run …``; tests/test_compose_stack.py runs them);
every variable it names is read by the app (bot/settings.py), compose or the ops files,
and every variable the app reads is in it; what it says about the scheduler's interval
and Sentry is what the code does; and ``jastipin db revision -m …`` really writes a
migration."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from bot.worker import SCHEDULER_INTERVAL_SECONDS
from tests.ops_texts import argv_in_text, cli_error, runbook_code, shell_lines, simple_commands

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = (ROOT / "docs" / "RUNBOOK.md").read_text()
SETTINGS = (ROOT / "bot" / "settings.py").read_text()
CLI = (ROOT / "bot" / "cli.py").read_text()
COMPOSE = (ROOT / "docker-compose.yml").read_text()
OPS = {p: p.read_text() for p in (ROOT / "ops").rglob("*") if p.is_file()}

# An environment variable's name as the runbook writes it: FOO_BAR (one underscore at
# least, so that SQL keywords and acronyms are not taken for one).
_ENV_NAME = re.compile(r"(?<![\w-])([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])(?![\w-])")


def _read_by_app(name: str) -> bool:
    return f'"{name}"' in SETTINGS or f'"{name}"' in CLI


def _read_by_deployment(name: str) -> bool:
    """Interpolated by compose, or read by a script or config under ops/."""
    if re.search(rf"\$\{{{name}\b", COMPOSE):
        return True
    use = re.compile(rf"\$\{{?{name}\b|environment: {name}\b")
    return any(use.search(text) for text in OPS.values())


def test_every_variable_the_runbook_names_is_read_by_something() -> None:
    names = set(_ENV_NAME.findall(RUNBOOK))
    assert {"DATABASE_URL", "WA_ACCESS_TOKEN", "METRICS_TOKEN", "APP_ENV"} <= names
    unknown = sorted(n for n in names if not (_read_by_app(n) or _read_by_deployment(n)))
    assert not unknown, f"the runbook names variables nothing reads: {unknown}"


def test_every_variable_the_app_reads_is_in_the_runbook() -> None:
    read = set(re.findall(r'_first\(env, ((?:"[A-Z0-9_]+",? ?)+)\)', SETTINGS))
    names = {n for group in read for n in re.findall(r'"([A-Z0-9_]+)"', group)}
    names |= set(re.findall(r'(?:_int|_float|_positive)\(env, "([A-Z0-9_]+)"', SETTINGS))
    names |= set(re.findall(r'env\.get\("([A-Z0-9_]+)"', SETTINGS))
    assert {"DATABASE_URL", "METRICS_PORT", "NODE_ENV", "BULLMQ_PREFIX"} <= names
    missing = sorted(n for n in names if not re.search(rf"\b{n}\b", RUNBOOK))
    assert not missing, f"read by bot/settings.py but not in docs/RUNBOOK.md: {missing}"


def _cli_commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
                yield from _cli_commands(sub, (*prefix, name)) if nested else [(*prefix, name)]


def test_every_command_the_runbook_gives_is_accepted_and_every_command_is_in_it() -> None:
    given = list(argv_in_text(runbook_code()))
    rejected = {" ".join(argv): e for argv in given if (e := cli_error(argv)) is not None}
    assert not rejected, f"the runbook gives commands the CLI rejects: {rejected}"
    commands = set(_cli_commands(build_parser()))
    assert ("db", "revision") in commands and ("queue", "dead") in commands
    mentioned = {tuple(argv[: len(c)]) for argv in given for c in commands}
    missing = sorted(" ".join(c) for c in commands - mentioned)
    assert not missing, f"CLI commands the runbook never shows: {missing}"


# programs that are in the containers, not on the compose host
IN_CONTAINERS = {"jastipin", "redis-cli", "psql", "createdb", "pg_dump", "pg_restore"}
IN_CONTAINERS |= {"promtool", "amtool"}


def test_the_runbook_writes_commands_as_they_are_run_on_the_compose_host() -> None:
    """A command of a program that lives in a container is given through ``docker
    compose exec`` or ``run`` (the block for hosts without Docker excepted), so that what
    the on-call person pastes runs, and tests/test_compose_stack.py can run it."""
    bare: list[str] = []
    for block in re.finditer(r"```sh\n(.*?)```", RUNBOOK, re.S):
        if "Without Docker" in RUNBOOK[max(0, block.start() - 300) : block.start()]:
            continue
        for line in shell_lines(block.group(1)):
            for argv in simple_commands(line):
                if Path(argv[0]).name in IN_CONTAINERS:
                    bare.append(line)
    assert not bare, f"commands written for a host that does not have the program: {bare}"


def test_what_the_runbook_says_about_the_scheduler_is_what_it_does() -> None:
    said = re.findall(r"every (\d+) s\b", RUNBOOK)
    assert said, "the runbook never says how often anything runs"
    about_scheduler = [
        int(n)
        for n in re.findall(
            r"(?:`jastipin scheduler`|scheduler`?|next pass)[^.|]{0,40}?every (\d+) s", RUNBOOK
        )
    ]
    assert about_scheduler, "the runbook never says how often the scheduler runs"
    assert set(about_scheduler) == {SCHEDULER_INTERVAL_SECONDS}, about_scheduler
    not_built = re.search(r"Not built yet, and referred to below:([^\n]*\n){1,3}", RUNBOOK)
    # nothing the runbook names is unbuilt any more; if a list comes back, broadcasts
    # (built) must not be on it
    assert not not_built or "broadcasts" not in not_built.group(0).split(".")[0].lower()


def test_app_env_is_the_sentry_environment_and_the_release_is_the_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sentry_sdk = pytest.importorskip("sentry_sdk")
    from importlib.metadata import version

    from bot.cli import _init

    monkeypatch.setenv("JASTIPIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SENTRY_DSN", "http://public@127.0.0.1:9/1")
    for env, expected in (
        ((("APP_ENV", "staging"),), "staging"),
        (
            (("NODE_ENV", "production"),),
            "production",
        ),
    ):
        monkeypatch.delenv("APP_ENV", raising=False)
        monkeypatch.delenv("NODE_ENV", raising=False)
        for key, value in env:
            monkeypatch.setenv(key, value)
        try:
            _init("worker")
            options = sentry_sdk.get_client().options
            assert options["environment"] == expected
            # the version, and the commit where one is known (the image's, or git's)
            assert options["release"].split("+")[0] == f"jastipin@{version('jastipin')}"
        finally:
            sentry_sdk.get_client().close()
            sentry_sdk.get_global_scope().set_client(None)


def test_db_revision_writes_the_next_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.migrate import MIGRATIONS, next_revision_id, revision, upgrade

    url = f"sqlite+aiosqlite:///{tmp_path}/jastipin.db"
    monkeypatch.setenv("JASTIPIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", url)

    # on a database behind head: a clear refusal, and nothing written
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exit_:
        main(["db", "revision", "-m", "add a column"])
    assert exit_.value.code == 2 and "jastipin db upgrade" in stderr.getvalue()
    head = next_revision_id()
    assert not list((MIGRATIONS / "versions").glob(f"{head}_*.py"))

    upgrade(url)
    written = revision(url, "add a column", version_path=tmp_path)
    assert written == tmp_path / f"{head}_add_a_column.py"
    text = written.read_text()
    previous = f"{int(head) - 1:04d}"
    assert re.search(rf"^revision = ['\"]{head}['\"]$", text, re.M)
    assert re.search(rf"^down_revision = ['\"]{previous}['\"]$", text, re.M)
    # the models and the migrations agree: nothing to generate on a database at head
    assert re.search(r"def upgrade\(\) -> None:\n(\s+#[^\n]*\n)*\s+pass\n", text), text

"""The deployment files say what the code does: Dockerfile, compose, runbook, alert rules,
and backup scripts that really dump and restore the machine's PostgreSQL."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops_texts import (
    ROOT,
    RUNBOOK,
    argv_in_text,
    cli_error,
    metric_labels,
    runbook_code,
)

try:
    import yaml
except ImportError:  # PyYAML arrives with the dev extras (moto[server]); not a dependency
    yaml = None

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
PG_BACKUP = ROOT / "ops" / "backup" / "pg_backup.sh"
RESTORE_TEST = ROOT / "ops" / "backup" / "restore_test.sh"
SETTINGS_SOURCE = (ROOT / "bot" / "settings.py").read_text()

APP_SERVICES = ("migrate", "api", "worker", "scheduler")
REQUIRED_SERVICES = (*APP_SERVICES, "postgres", "redis", "minio", "minio-init")
REQUIRED_ALERTS = (
    "JastipinOutboxBacklog",
    "JastipinWorkerFailureRate",
    "JastipinWhatsApp5xx",
    "JastipinDatabaseErrors",
    "JastipinApiLatencyP95",
)
PG_SERVER = os.environ.get("JASTIPIN_OPS_PG", "postgresql://postgres@127.0.0.1:5432")
REQUIRE_SERVICES = (
    os.environ.get("JASTIPIN_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"
)


def _load_yaml(path: Path) -> Any:
    if yaml is None:
        pytest.skip("PyYAML is not installed; the structural string checks still ran")
    return yaml.safe_load(path.read_text())


# --- Dockerfile ---------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _env_assignments(args: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(args) if "=" in part)


def test_dockerfile_builds_a_non_root_image_that_serves_on_all_interfaces() -> None:
    instructions = _dockerfile_instructions()
    froms = [args for word, args in instructions if word == "FROM"]
    assert froms, "no FROM"
    build_args = dict(re.findall(r"^ARG (\w+)=(\S+)", (ROOT / "Dockerfile").read_text(), re.M))
    froms = [re.sub(r"\$\{(\w+)\}", lambda m: build_args[m[1]], f) for f in froms]
    assert all(re.match(r"python:3\.11\.\d+-slim", f) for f in froms), froms
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert re.search(r"pip install (--no-deps )?\.(\s|$)", runs), "the package is not installed"

    env: dict[str, str] = {}
    for word, args in instructions:
        if word == "ENV":
            env.update(_env_assignments(args))
    assert env.get("HOST") == "0.0.0.0", "HOST must be 0.0.0.0 (the app defaults to 127.0.0.1)"
    assert env.get("PORT") == "8000"
    for name in env:
        if name == "PATH" or name.startswith(("PYTHON", "PIP_")):
            continue
        reader = SETTINGS_SOURCE + (ROOT / "bot" / "reports.py").read_text()  # the release
        assert f'"{name}"' in reader, f"ENV {name} is read neither by settings nor reports"

    assert ("EXPOSE", "8000") in instructions
    users = [args for word, args in instructions if word == "USER"]
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")

    healthchecks = [args for word, args in instructions if word == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/health" in healthchecks[0] and "urllib" in healthchecks[0]
    assert not re.search(r"\b(curl|wget)\b", healthchecks[0]), "no curl/wget in the slim image"

    cmds = [args for word, args in instructions if word == "CMD"]
    assert cmds and json.loads(cmds[-1]) == ["jastipin", "serve"]


def test_dockerignore_keeps_local_state_and_secrets_out_but_not_the_package() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (".venv", "var", ".git", "tests", ".env"):
        assert needed in patterns, f".dockerignore does not exclude {needed}"
    assert {"**/__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"} <= set(patterns)
    for kept in ("pyproject.toml", "bot", "flows", "storage", "locales", "admin_web"):
        hits = [p for p in patterns if not p.startswith("!") and fnmatch.fnmatch(kept, p)]
        assert not hits, f"{kept} is needed by `pip install .` but excluded by {hits}"


# --- docker-compose.yml ---------------------------------------------------------------------


def test_compose_names_every_service_and_reads_env_file() -> None:
    text = COMPOSE.read_text()
    for name in REQUIRED_SERVICES:
        assert re.search(rf"^  {re.escape(name)}:\s*$", text, re.M), f"service {name} missing"
    assert re.search(r"^\s+env_file: \.env\s*$", text, re.M)
    assert "service_completed_successfully" in text
    # no literal password in a URL: user:secret@ must be an interpolation
    for match in re.finditer(r"://[^/\s:@]+:([^@\s]+)@", text):
        assert match.group(1).startswith("${"), f"literal credential in {match.group(0)}"


def _services() -> dict[str, dict[str, Any]]:
    data = _load_yaml(COMPOSE)
    services: dict[str, dict[str, Any]] = data["services"]
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_compose_wires_the_processes_and_the_stores() -> None:
    services = _services()
    assert set(REQUIRED_SERVICES) <= set(services)
    commands = {name: services[name].get("command") for name in APP_SERVICES}
    assert commands == {
        "migrate": ["jastipin", "db", "upgrade"],
        "api": ["jastipin", "serve"],
        "worker": ["jastipin", "worker"],
        "scheduler": ["jastipin", "scheduler"],
    }
    for name in ("api", "worker", "scheduler"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["minio-init"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert services[name]["env_file"] == ".env"
        env = _environment(services[name])
        assert env["HOST"] == "0.0.0.0"
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert "minio:9000" in env["S3_ENDPOINT_URL"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"].get("restart") == "no"

    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in json.dumps(postgres["healthcheck"]["test"])
    assert postgres.get("volumes")
    assert services["redis"]["image"].startswith("redis:7")
    assert "ping" in json.dumps(services["redis"]["healthcheck"]["test"])
    assert "healthcheck" in services["minio"]
    init = services["minio-init"]
    assert "minio/mc" in init["image"]
    script = json.dumps(init.get("command")) + json.dumps(init.get("entrypoint"))
    assert script.count("mc mb") >= 2, "minio-init must create the media and backup buckets"
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"


def test_compose_env_names_are_read_by_the_app_and_secrets_are_required() -> None:
    services = _services()
    for name in APP_SERVICES:
        for var in _environment(services[name]):
            assert f'"{var}"' in SETTINGS_SOURCE, f"{name}: {var} is not read by bot/settings.py"
    secretish = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$|KEY_ID$|DSN")
    for name, service in services.items():
        for var, value in _environment(service).items():
            if secretish.search(var):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), (
                    f"{name}: {var} must be a required reference like ${{VAR:?set it in .env}}"
                )


def _dotenv_template_names() -> set[str]:
    blocks = re.findall(r"```dotenv\n(.*?)```", RUNBOOK.read_text(), re.S)
    assert len(blocks) == 1, "the runbook needs exactly one ```dotenv template"
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", blocks[0], re.M))


def test_runbook_env_template_covers_compose_and_names_only_real_variables() -> None:
    compose_text = COMPOSE.read_text()
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose_text))
    # compose secrets read from the environment (the monitoring profile's keys)
    interpolated |= {s["environment"] for s in _load_yaml(COMPOSE).get("secrets", {}).values()}
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", compose_text))
    template = _dotenv_template_names()
    assert required, "compose requires no secret at all?"
    assert required <= template, f"missing from the .env template: {required - template}"
    scripts = "\n".join(p.read_text() for p in (ROOT / "ops").rglob("*.sh"))
    for var in template:
        by_script = f"${{{var}" in scripts
        assert var in interpolated or f'"{var}"' in SETTINGS_SOURCE or by_script, (
            f"{var} in the .env template is read by neither compose, bot/settings.py "
            "nor a script in ops/"
        )


# --- `jastipin <command>` everywhere --------------------------------------------------------


def test_the_command_check_rejects_what_the_cli_rejects() -> None:
    assert cli_error(["db", "upgrade"]) is None
    assert cli_error(["migrate"]) is not None
    assert cli_error(["scheduler", "--every", "5"]) is not None
    text = 'x `jastipin db upgrade` y ["jastipin", "worker"] createdb -U jastipin jastipin'
    assert list(argv_in_text(text)) == [["db", "upgrade"], ["worker"]]


@pytest.mark.parametrize(
    ("path", "must_mention"),
    [
        (DOCKERFILE, {"serve"}),
        (COMPOSE, {"serve", "worker", "scheduler", "db"}),
        (RUNBOOK, {"serve", "worker", "scheduler", "db", "demo"}),
    ],
    ids=["Dockerfile", "docker-compose.yml", "RUNBOOK.md"],
)
def test_every_jastipin_command_mentioned_is_a_real_cli_command(
    path: Path, must_mention: set[str]
) -> None:
    text = runbook_code() if path == RUNBOOK else path.read_text()
    found = list(argv_in_text(text))
    errors = {shlex.join(argv): err for argv in found if (err := cli_error(argv)) is not None}
    assert not errors, f"{path.name} mentions commands the CLI rejects: {errors}"
    mentioned = {argv[0] for argv in found if argv}
    assert must_mention <= mentioned, f"{path.name} never mentions {must_mention - mentioned}"


# --- alert rules ------------------------------------------------------------------------------


def _heading_anchors(markdown: str) -> set[str]:
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_alert_rules_name_every_trigger_of_the_deployment_document() -> None:
    text = ALERTS.read_text()
    for name in REQUIRED_ALERTS:
        assert re.search(rf"^\s+- alert: {name}\s*$", text, re.M), f"alert {name} missing"


def test_alert_rules_use_real_metrics_labels_and_runbook_sections() -> None:
    data = _load_yaml(ALERTS)
    rules = {r["alert"]: r for group in data["groups"] for r in group["rules"] if "alert" in r}
    assert set(REQUIRED_ALERTS) <= set(rules)
    metrics = metric_labels()
    anchors = _heading_anchors(RUNBOOK.read_text())
    for name, rule in rules.items():
        expr = rule["expr"]
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), name
        assert rule["annotations"]["summary"], name
        runbook = rule["annotations"]["runbook"]
        assert runbook.startswith("docs/RUNBOOK.md#"), name
        assert runbook.split("#", 1)[1] in anchors, f"{name}: no runbook section {runbook}"
        used = re.findall(r"\b(jastipin_[a-z0-9_]+)(\{[^}]*\})?", expr)
        # other exporters' metrics say which exporter; `up` is about our own targets
        ours_up = re.search(r'\bup\{job=~?"jastipin-', expr)
        assert used or ours_up or rule["annotations"].get("exporter"), (
            f"{name} uses no jastipin metric and names no exporter"
        )
        for metric, selector in used:
            assert metric in metrics, f"{name}: {metric} is not exported by bot/metrics.py"
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector):
                assert label in metrics[metric], f"{name}: {metric} has no label {label}"
        for label in re.findall(r"by \(([^)]*)\)", expr):
            for each in (x.strip() for x in label.split(",")):
                # a metric's own `job` label is stored as `exported_job` beside the target's
                own = "job" if each == "exported_job" else each
                assert each in ("job", "instance", "le") or any(
                    own in metrics[m] for m, _ in used
                ), f"{name}: no metric it uses has the label {each}"
    assert re.search(
        r"jastipin_outbox_pending\)?\s*>\s*500\b", rules["JastipinOutboxBacklog"]["expr"]
    )
    failure = rules["JastipinWorkerFailureRate"]["expr"]
    assert "jastipin_wa_send_errors_total" in failure
    assert "jastipin_wa_messages_sent_total" in failure
    assert "[10m]" in failure and "0.05" in failure
    assert "code=~" in rules["JastipinWhatsApp5xx"]["expr"]
    assert "0.01" in rules["JastipinWhatsApp5xx"]["expr"]
    assert "jastipin_db_errors_total" in rules["JastipinDatabaseErrors"]["expr"]
    p95 = " ".join(rules["JastipinApiLatencyP95"]["expr"].split())
    assert p95.startswith(
        "histogram_quantile(0.95, sum by (le) (rate(jastipin_http_request_seconds_bucket[5m])))"
    )
    assert p95.endswith("> 0.5")


# --- backup scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", [PG_BACKUP, RESTORE_TEST], ids=lambda p: p.name)
def test_backup_scripts_are_strict_executable_bash(script: Path) -> None:
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert script.stat().st_mode & stat.S_IXUSR, f"{script.name} is not executable"
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def _run(cmd: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, **kwargs)


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WA_", "PII_", "DATABASE_", "BACKUP_", "RESTORE_", "S3_", "CF_R2_"))
    }
    env["JASTIPIN_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


def test_backup_scripts_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    env = _clean_env(tmp_path, DATABASE_URL="sqlite+aiosqlite:///var/jastipin.db")
    result = _run([str(PG_BACKUP), str(tmp_path)], env)
    assert result.returncode != 0 and "not a PostgreSQL URL" in result.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    env = _clean_env(tmp_path, DATABASE_URL="postgresql://postgres@127.0.0.1:1/none")
    result = _run([str(RESTORE_TEST), str(empty)], env)
    assert result.returncode != 0 and "no jastipin-*.dump" in result.stderr

    del env["DATABASE_URL"]
    result = _run([str(PG_BACKUP), str(tmp_path)], env)
    assert result.returncode != 0 and "DATABASE_URL is not set" in result.stderr


def _pg_missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"PostgreSQL is required here (CI): {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


def _psql(url: str, sql: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return _run(
        [
            *("psql", url, "--no-psqlrc", "--quiet", "--tuples-only", "--no-align"),
            *("--set", "ON_ERROR_STOP=1", "--file", "-"),
        ],
        env,
        input=sql,
    )


@pytest.fixture
def scratch_db(tmp_path: Path) -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped afterwards."""
    for tool in ("psql", "pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            _pg_missing(f"{tool} is not on PATH (install postgresql-client)")
    env = _clean_env(tmp_path)
    admin = f"{PG_SERVER}/test"
    name = f"jastipin_ops_{os.getpid()}_{secrets.token_hex(3)}"
    created = _psql(admin, f'CREATE DATABASE "{name}";', env)
    if created.returncode != 0:
        _pg_missing(created.stderr.strip())
    try:
        yield name
    finally:
        _psql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);', env)


def _jastipin_script() -> str:
    candidate = Path(sys.executable).parent / "jastipin"
    found = str(candidate) if candidate.exists() else shutil.which("jastipin")
    assert found, "the jastipin console script is not installed beside this Python"
    return found


def _database_exists(name: str, env: dict[str, str]) -> bool:
    result = _psql(
        f"{PG_SERVER}/test", f"SELECT count(*) FROM pg_database WHERE datname = '{name}';", env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip() == "1"


def test_backup_then_restore_test_against_postgres(tmp_path: Path, scratch_db: str) -> None:
    app_url = f"{PG_SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{scratch_db}"
    env = _clean_env(tmp_path, DATABASE_URL=app_url)
    jastipin = _jastipin_script()
    for argv in (["db", "upgrade"], ["demo"]):
        result = _run([jastipin, *argv], env)
        assert result.returncode == 0, f"jastipin {shlex.join(argv)}: {result.stderr}"

    backups = tmp_path / "backups"
    backups.mkdir()
    expired = backups / "jastipin-20000101T000000Z.dump"
    expired.write_bytes(b"an expired dump")
    month_ago = time.time() - 30 * 86400
    os.utime(expired, (month_ago, month_ago))
    decoy = backups / "jastipin-20000102T000000Z.dump"  # recent, but older by name
    decoy.write_bytes(b"not a dump: restoring this one would fail")
    unrelated = backups / "notes.txt"
    unrelated.write_text("kept")
    os.utime(unrelated, (month_ago, month_ago))

    env_backup = {**env, "BACKUP_KEEP_DAYS": "14"}
    result = _run([str(PG_BACKUP), str(backups)], env_backup)
    assert result.returncode == 0, result.stderr
    dump = Path(result.stdout.strip().splitlines()[-1])
    assert dump.parent == backups and re.fullmatch(r"jastipin-\d{8}T\d{6}Z\.dump", dump.name)
    assert dump.stat().st_size > 0 and stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert not expired.exists(), "a dump older than BACKUP_KEEP_DAYS was kept"
    assert decoy.exists() and unrelated.exists(), "pruning removed what it should keep"
    assert not list(backups.glob(".*partial"))

    result = _run([str(RESTORE_TEST), str(backups)], {**env, "RESTORE_MIN_TRIPS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert dump.name in result.stdout, "the newest dump was not the one restored"
    assert re.search(r"trips=1 alembic_version=1 revision=\w+", result.stdout), result.stdout
    scratch = re.search(r"database=(\S+)", result.stdout)
    assert scratch and not _database_exists(scratch.group(1), env), "scratch DB left behind"

    # A failing sanity check fails the script, and the scratch database still goes away.
    result = _run([str(RESTORE_TEST), str(dump)], {**env, "RESTORE_MIN_TRIPS": "2"})
    assert result.returncode != 0 and "expected at least 2 trips" in result.stderr
    scratch = re.search(r"database=(\S+)", result.stdout)
    assert scratch and not _database_exists(scratch.group(1), env)

    result = _run([str(RESTORE_TEST), str(decoy)], env)
    assert result.returncode != 0, "restoring garbage must fail the restore test"


def test_runbook_sql_runs_on_the_migrated_schema(tmp_path: Path, scratch_db: str) -> None:
    app_url = f"{PG_SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{scratch_db}"
    env = _clean_env(tmp_path, DATABASE_URL=app_url)
    result = _run([_jastipin_script(), "db", "upgrade"], env)
    assert result.returncode == 0, result.stderr
    blocks = re.findall(r"```sql\n(.*?)```", RUNBOOK.read_text(), re.S)
    assert len(blocks) >= 4, "the runbook's inbox, outbox and cost queries are missing"
    for block in blocks:
        result = _psql(f"{PG_SERVER}/{scratch_db}", f"BEGIN;\n{block}\nROLLBACK;\n", env)
        assert result.returncode == 0, f"{block}\n{result.stderr}"

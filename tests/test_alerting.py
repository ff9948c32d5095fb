"""Alerts that reach someone: the rules pass ``promtool check rules`` and their unit tests
(``promtool test rules``: every alert fires on its trigger and stays quiet beside it),
the document's P1s page, Alertmanager routes P1 to the pager and the rest to the chat,
and the Grafana dashboard asks only for metrics that exist, in valid PromQL.

promtool and amtool come with Debian's ``prometheus`` and ``prometheus-alertmanager``
packages (.ci/run installs them): under CI a missing tool fails, elsewhere it skips."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
RULE_TESTS = sorted((ROOT / "ops" / "prometheus" / "tests").glob("*.yml"))
ALERTMANAGER = ROOT / "ops" / "alertmanager" / "alertmanager.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "jastipin.json"
CI = os.environ.get("CI") == "true"

# The deployment document's P1 triggers: they page.
P1 = (
    "JastipinOutboxBacklog",
    "JastipinWorkerFailureRate",
    "JastipinWhatsApp5xx",
    "JastipinDatabaseErrors",
    "JastipinDatabaseCpuHigh",
)

yaml = pytest.importorskip("yaml") if not CI else __import__("yaml")


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (apt-get install -y {package})"
    if CI:
        pytest.fail(message)
    pytest.skip(message)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)


def _rules() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    return {r["alert"]: r for group in data["groups"] for r in group["rules"] if "alert" in r}


def test_promtool_checks_the_rules() -> None:
    result = _run([_tool("promtool", "prometheus"), "check", "rules", str(ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool rule tests in ops/prometheus/tests/"
    promtool = _tool("promtool", "prometheus")
    result = _run([promtool, "test", "rules", *map(str, RULE_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_expectation_fails_the_rule_tests(tmp_path: Path) -> None:
    """The unit tests can fail: the backlog case with the P1 label taken away."""
    promtool = _tool("promtool", "prometheus")
    source = RULE_TESTS[0].read_text()
    assert "{severity: critical, priority: P1}" in source
    broken = tmp_path / RULE_TESTS[0].name
    broken.write_text(
        source.replace("{severity: critical, priority: P1}", "{severity: warning}", 1).replace(
            "../alerts.yml", str(ALERTS)
        )
    )
    result = _run([promtool, "test", "rules", str(broken)])
    assert result.returncode != 0 and "JastipinOutboxBacklog" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    rules = set(_rules())
    assert rules - firing == set(), f"alerts never shown firing: {rules - firing}"
    # the dead man's switch fires always, by design: it has no quiet case
    assert rules - quiet == {"Watchdog"}, f"alerts never shown quiet: {rules - quiet}"
    unknown = (firing | quiet) - rules
    assert not unknown, f"tests for alerts that do not exist: {unknown}"


def test_p1_alerts_page_and_the_rest_do_not() -> None:
    rules = _rules()
    for name, rule in rules.items():
        labels = rule["labels"]
        expected = ("critical", "P1") if name in P1 else (labels["severity"], labels["priority"])
        assert (labels["severity"], labels["priority"]) == expected, name
        assert (labels["severity"] == "critical") == (labels["priority"] == "P1"), name


def test_the_token_alert_says_what_the_code_does() -> None:
    """Code 190 is waited out (bot/outbox.py): rows stay pending, nothing to requeue."""
    description = _rules()["JastipinWhatsAppTokenInvalid"]["annotations"]["description"]
    assert "waited out" in description and "pending" in description
    assert "marked failed" not in description and "requeue them" not in description


def test_the_database_alert_sees_every_process() -> None:
    expr = " ".join(_rules()["JastipinDatabaseErrors"]["expr"].split())
    assert re.fullmatch(r"sum by \(job\) \(increase\(jastipin_db_errors_total\[5m\]\)\) > 0", expr)
    assert "job=" not in expr and "handler" not in expr


def _routes_to(alertmanager: str, labels: list[str]) -> str:
    result = _run(
        [alertmanager, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_alertmanager_pages_p1_and_chats_the_rest() -> None:
    amtool = _tool("amtool", "prometheus-alertmanager")
    result = _run([amtool, "check-config", str(ALERTMANAGER)])
    assert result.returncode == 0, result.stdout + result.stderr
    for name, rule in _rules().items():
        labels = [f"alertname={name}", *(f"{k}={v}" for k, v in rule["labels"].items())]
        expected = "pager,chat" if rule["labels"]["severity"] == "critical" else "chat"
        if name == "Watchdog":  # only to the outside heartbeat service, every minute
            expected = "deadmansswitch"
        assert _routes_to(amtool, labels) == expected, name


def test_alertmanager_secrets_come_from_files_not_the_config() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    for receiver in config["receivers"]:
        for kind, entries in receiver.items():
            if kind == "name":
                continue
            for entry in entries:
                auth = entry.get("http_config", {}).get("authorization", {})
                if "credentials_file" in auth:  # the URL holds no secret, the key a file
                    assert auth["credentials_file"].startswith("/run/secrets/")
                    continue
                secret = {k for k in entry if re.search(r"key|url|token|password", k)}
                assert secret, f"{receiver['name']}: no key or URL at all"
                assert all(k.endswith("_file") for k in secret), (receiver["name"], secret)
                for k in secret:
                    assert entry[k].startswith("/run/secrets/"), (receiver["name"], k)


def _dashboard_exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in data["panels"] for t in p.get("targets", [])]


def test_the_dashboard_shows_the_documents_metrics_in_valid_promql(tmp_path: Path) -> None:
    from tests.ops_texts import metric_labels

    exprs = _dashboard_exprs()
    exported = set(metric_labels())
    used = {m for e in exprs for m in re.findall(r"\b((?:jastipin|dramatiq)_[a-z0-9_]+)", e)}
    assert used - exported == set(), f"not exported by bot/metrics.py: {used - exported}"
    shown = {re.sub(r"_(bucket|total|count|sum)$", "", m) for m in used}
    for required in (
        "jastipin_http_request_seconds",  # API latency p50/p95/p99
        "jastipin_http_responses",  # 4xx/5xx
        "jastipin_queue_messages",  # queue depth
        "jastipin_outbox_pending",
        "jastipin_outbox_oldest_pending_age_seconds",
        "jastipin_wa_messages_sent",  # worker success, paid messages per day
        "jastipin_wa_send_errors",  # worker failure, WhatsApp error codes, rate limits
        "jastipin_scheduler_job_runs",
        "jastipin_db_errors",
        "dramatiq_messages",
    ):
        assert required in shown, f"the dashboard has no panel for {required}"
    assert any('billable="true"' in e and "[1d]" in e for e in exprs), "paid messages per day"

    # every query parses: promtool checks them as recording rules
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = _run([_tool("promtool", "prometheus"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


# --- the monitoring stack is part of the deployment -----------------------------------------

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "ops" / "prometheus" / "prometheus.yml"
PROVISIONING = ROOT / "ops" / "grafana" / "provisioning"


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        out[container] = host
    return out


def test_the_monitoring_profile_starts_prometheus_alertmanager_and_grafana_as_shipped() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    for name in ("prometheus", "alertmanager", "grafana", "cadvisor"):
        assert services[name].get("profiles") == ["monitoring"], name

    # Prometheus runs this folder's config, whose rule files and token path it mounts
    prometheus = services["prometheus"]
    assert _mounts(prometheus)["/etc/prometheus"] == "./ops/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load(PROMETHEUS.read_text())
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS.parent / rule_file).is_file(), rule_file
    token_paths = {
        job["authorization"]["credentials_file"]
        for job in config["scrape_configs"]
        if "authorization" in job
    }
    # compose mounts a secret at /run/secrets/<name> unless it names a target (never under
    # /etc/prometheus: the read-only mount of ops/prometheus cannot take it, the
    # container would not start; tests/test_compose_stack.py starts it)
    mounted = {
        s if isinstance(s, str) else s.get("target", s["source"]) for s in prometheus["secrets"]
    }
    mounted = {t if t.startswith("/") else f"/run/secrets/{t}" for t in mounted}
    assert not any(t.startswith("/etc/prometheus/") for t in mounted), mounted
    assert token_paths <= mounted, f"token file not mounted: {token_paths - mounted}"
    # every scrape target and the Alertmanager it sends to are services of this file
    hosts = {
        target.split(":")[0]
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    hosts |= {
        n
        for job in config["scrape_configs"]
        for d in job.get("dns_sd_configs", [])
        for n in d["names"]
    }
    hosts |= {
        t.split(":")[0]
        for am in config["alerting"]["alertmanagers"]
        for s in am["static_configs"]
        for t in s["targets"]
    }
    assert hosts <= set(services), f"scraped but not started: {hosts - set(services)}"

    # Alertmanager: its config, and every secret file the config reads
    alertmanager = services["alertmanager"]
    assert _mounts(alertmanager)["/etc/alertmanager"] == "./ops/alertmanager"
    wanted = set(re.findall(r"/run/secrets/(\w+)", ALERTMANAGER.read_text()))
    assert wanted and wanted <= set(alertmanager["secrets"]), wanted
    assert wanted <= set(compose["secrets"])

    # Grafana: the data source and the dashboard provisioned, the dashboard's uid matches
    grafana = services["grafana"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == "./ops/grafana/provisioning"
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "jastipin.yml").read_text())
    assert mounts[provider["providers"][0]["options"]["path"]] == "./ops/grafana"
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    dashboard = DASHBOARD.read_text()
    assert "${DS_" not in dashboard, "a provisioned dashboard gets no import-time inputs"
    uids = set(re.findall(r'"uid": "([^"]+)"', dashboard)) - {json.loads(dashboard)["uid"]}
    assert uids == {uid}

    # an alert that reads another exporter's metrics names a service that is started
    for name, rule in _rules().items():
        exporter = rule["annotations"].get("exporter", "")
        if "cAdvisor" in exporter:
            assert "cadvisor" in services, name

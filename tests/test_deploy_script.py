"""``ops/deploy/deploy.sh``, the deploy CI runs on the compose host: the runbook's order
(backup, predeploy, migrate, deploy the digest, smoke, postdeploy), and a failed smoke
puts the previous digest back and exits 1. ``docker`` is a stand-in on PATH that records
each call (the script's logic is what is tested; the image itself is started by
tests/test_image.py where an engine runs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "ops" / "deploy" / "deploy.sh"
NEW = "ghcr.io/acme/jastipin@sha256:" + "b" * 64
OLD = "ghcr.io/acme/jastipin@sha256:" + "a" * 64

FAKE_DOCKER = """#!/usr/bin/env bash
echo "$JASTIPIN_IMAGE :: $*" >> "$DOCKER_LOG"
case "$*" in
  *"check smoke"*) [[ -z "${FAIL_SMOKE:-}" ]] ;;
  *) exit 0 ;;
esac
"""


def _deploy(
    tmp_path: Path, image: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / ".env").write_text("SMOKE_PHONE=6281200000000\n")
    log = tmp_path / "docker.log"
    log.unlink(missing_ok=True)
    run_env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DOCKER_LOG": str(log),
        "JASTIPIN_DIR": str(site),
        "HEALTH_DEADLINE_SECONDS": "5",
        **env,
    }
    done = subprocess.run(
        ["bash", str(SCRIPT), image], env=run_env, capture_output=True, text=True, timeout=60
    )
    return done, log.read_text().splitlines() if log.exists() else []


def _steps(calls: list[str]) -> list[str]:
    """The compose steps in order, as ``<image> :: <what>``."""
    out = []
    for call in calls:
        image, _, argv = call.partition(" :: ")
        for what in (
            "run --rm backup",
            "check predeploy",
            "run --rm migrate",
            "up -d",
            "check smoke",
            "check postdeploy",
        ):
            if what in argv:
                out.append(f"{image} :: {what}")
    return out


def test_a_deploy_runs_the_runbook_order_and_remembers_the_digest(tmp_path: Path) -> None:
    done, calls = _deploy(tmp_path, NEW)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _steps(calls) == [
        f"{NEW} :: run --rm backup",
        f"{NEW} :: check predeploy",
        f"{NEW} :: run --rm migrate",
        f"{NEW} :: up -d",
        f"{NEW} :: check smoke",
        f"{NEW} :: check postdeploy",
    ]
    assert (tmp_path / "site" / ".deployed-image").read_text().strip() == NEW
    assert any("--phone 6281200000000" in c for c in calls)


def test_a_failed_smoke_rolls_back_to_the_previous_digest(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / ".deployed-image").write_text(OLD + "\n")
    done, calls = _deploy(tmp_path, NEW, FAIL_SMOKE="1")
    assert done.returncode == 1
    assert "smoke failed" in done.stderr and f"rolling back to {OLD}" in done.stderr
    steps = _steps(calls)
    assert steps[-2:] == [f"{NEW} :: check smoke", f"{OLD} :: up -d"]
    assert f"{NEW} :: check postdeploy" not in steps
    assert (tmp_path / "site" / ".deployed-image").read_text().strip() == OLD


@pytest.mark.parametrize("image", ["jastipin:latest", "ghcr.io/acme/jastipin:abc123"])
def test_only_a_digest_is_deployed(tmp_path: Path, image: str) -> None:
    done, calls = _deploy(tmp_path, image)
    assert done.returncode == 1 and "by digest" in done.stderr
    assert calls == []

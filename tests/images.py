"""Images the tests start, built on this machine (no image registry is reachable here):
a Debian bookworm base made with ``debootstrap`` and ``docker import``, the product image
on it (the Dockerfile's ``PYTHON_IMAGE`` build argument), and stand-ins for compose's own
services where Debian packages them (PostgreSQL, Redis, Prometheus, Alertmanager:
``tests/fixtures/images/<name>/``), each taking what compose gives the registry image
(its environment, command and healthcheck).

Each is built once per machine: the engine keeps them, and a rebuild is a cache hit.
Needs Debian's ``docker.io`` (dockerd running) and ``debootstrap``; ``.ci/run`` installs
and starts them. Where no engine answers, a test using these says so in one line and
skips; the rest of the suite does not depend on them."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = "jastipin-test-base:bookworm"
IMAGE = "jastipin:test"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
STAND_INS = ROOT / "tests" / "fixtures" / "images"


def docker(*argv: str, timeout: float = 600, check: bool = True) -> str:
    """``docker …``'s output; an AssertionError with its error output when it fails."""
    done = subprocess.run(
        ["docker", *argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(argv[:3])} … failed:\n{done.stderr[-3000:]}")
    return done.stdout


def engine_or_skip() -> None:
    if not shutil.which("docker"):
        pytest.skip("no docker client: install Debian's docker.io (.ci/run does)")
    done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.skip("no container engine answers (start dockerd as root; .ci/run does)")


def base_image(mirror: str = MIRROR) -> str:
    """Debian bookworm (minbase) from Debian's packages, imported once per machine."""
    engine_or_skip()
    if docker("images", "-q", BASE).strip():
        return BASE
    if not shutil.which("debootstrap"):
        pytest.skip("no debootstrap: install Debian's debootstrap (.ci/run does)")
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
            check=True,
            capture_output=True,
            timeout=1200,
        )
        # the certificate authorities this machine trusts (its egress may present its
        # own): the image's ca-certificates picks them up when it installs
        extra = Path("/usr/local/share/ca-certificates")
        if extra.is_dir():
            target = rootfs / "usr/local/share/ca-certificates"
            target.mkdir(parents=True, exist_ok=True)
            for cert in extra.glob("*.crt"):
                shutil.copy(cert, target / cert.name)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "-", BASE],
            stdin=tar.stdout,
            check=True,
            capture_output=True,
            timeout=600,
        )
        tar.wait(timeout=60)
    return BASE


def product_image() -> str:
    """The product image (the repository's Dockerfile) on the local base."""
    base = base_image()
    docker("build", "--build-arg", f"PYTHON_IMAGE={base}", "-t", IMAGE, str(ROOT), timeout=1500)
    return IMAGE


def stand_in(name: str) -> str:
    """The local image standing in for compose's ``name`` service (Debian's package on
    the local base), built from ``tests/fixtures/images/<name>/``."""
    base = base_image()
    tag = f"jastipin-test-{name}:bookworm"
    docker("build", "--build-arg", f"BASE={base}", "-t", tag, str(STAND_INS / name), timeout=1200)
    return tag

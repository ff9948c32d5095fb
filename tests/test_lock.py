"""The lock files pin every dependency the project declares, with hashes, and the image
and `make install` install from them (issue #15: reproducible images)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pinned(lock: Path) -> dict[str, str]:
    text = lock.read_text()
    pins = dict(
        (name.lower().replace("_", "-"), version)
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)(?: ;[^\n]*)? \\$", text, re.M)
    )
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text)
    for block in blocks[1:]:
        assert "--hash=sha256:" in block, f"no hash for {block.split()[0]} in {lock.name}"
    return pins


def test_every_declared_dependency_is_pinned_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    dev = {_name(r) for r in project["optional-dependencies"]["dev"]}
    locked = _pinned(ROOT / "requirements.lock")
    locked_dev = _pinned(ROOT / "requirements-dev.lock")
    assert runtime <= set(locked), f"run `make lock`: {sorted(runtime - set(locked))}"
    assert runtime | dev <= set(locked_dev), (
        f"run `make lock`: {sorted((runtime | dev) - set(locked_dev))}"
    )
    # the same version of a runtime dependency in both files
    differ = {n: (v, locked_dev[n]) for n, v in locked.items() if locked_dev.get(n) != v}
    assert not differ, f"run `make lock`: {differ}"


def test_the_lock_files_name_no_machine_specific_index() -> None:
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        assert "--index-url" not in text and "--find-links" not in text, lock


def test_the_image_and_make_install_from_the_locks() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    # dependencies before the code, so a code change keeps the dependency layer
    assert dockerfile.index("requirements.lock") < dockerfile.index("COPY bot")
    assert "COPY . ." not in dockerfile
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", dockerfile)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base[1])
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile

"""Reading the operations files (runbook, alert rules) shared by their tests."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from bot.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
_JASTIPIN_AT = re.compile(r"(?:^|(?<=[\s\"'(`]))(?:[\w./-]*/)?jastipin(?=\s+[a-z])")
_STOP = re.compile(r"\s+(?:\|\|?|&&|;|>|2>|#)|[`)]")
_NOT_A_PROGRAM_AFTER = ("createdb", "dropdb", "psql", "pg_dump", "pg_restore")


def argv_in_text(text: str) -> Iterator[list[str]]:
    """``jastipin …`` in shell form (up to a shell operator) and in JSON exec form."""
    for line in text.splitlines():
        for match in _JASTIPIN_AT.finditer(line):
            before = line[: match.start()].split()
            if before and (before[-1].startswith("-") or before[-1] in _NOT_A_PROGRAM_AFTER):
                continue  # a user or database name (`createdb -U jastipin jastipin`)
            rest = _STOP.split(line[match.end() :], maxsplit=1)[0]
            yield shlex.split(rest, comments=True)
        for array in re.findall(r"\[[^\[\]]*\]", line):
            try:
                items = json.loads(array)
            except ValueError:
                continue
            strings = items and all(isinstance(i, str) for i in items)
            if strings and Path(items[0]).name == "jastipin":
                yield items[1:]


def runbook_code() -> str:
    text = RUNBOOK.read_text()
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    prose = re.sub(r"```[^\n]*\n.*?```", "", text, flags=re.S)
    return "\n".join(blocks + re.findall(r"`([^`\n]+)`", prose))


def cli_error(argv: list[str]) -> str | None:
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        return stderr.getvalue().strip() or f"exit {exc.code}"
    return None


def metric_labels() -> dict[str, set[str]]:
    """Every sample name the app exports, with its label names."""
    from prometheus_client.metrics import MetricWrapperBase

    import bot.metrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    out: dict[str, set[str]] = {}
    for obj in vars(bot.metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        labels = set(obj._labelnames)
        for family in obj.describe():
            for suffix in suffixes.get(family.type, ("",)):
                out[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out

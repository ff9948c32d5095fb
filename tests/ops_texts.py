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


def runbook_blocks(language: str) -> list[str]:
    """The runbook's fenced code blocks of one language (``sh``, ``sql``)."""
    text = RUNBOOK.read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def shell_lines(block: str) -> Iterator[str]:
    """A shell block's commands: continuation lines joined, comments and blanks dropped."""
    pending = ""
    for raw in block.splitlines():
        line = raw.strip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        try:
            shlex.split(line, comments=True)
        except ValueError:  # a quote open across lines
            pending = line + " "
            continue
        pending = ""
        if line and not line.startswith("#"):
            yield line


_OPERATORS = {"&&", "||", ";", "|", ">", ">>", "&", "<", "(", ")"}


def shell_words(line: str) -> list[str]:
    """A line split as the shell splits it, operators apart; placeholders (``<id>``),
    which the shell would take for redirections, kept as written."""
    held: list[str] = []

    def hold(match: re.Match[str]) -> str:
        held.append(match.group(0))
        return f"@@{len(held) - 1}@@"

    guarded = re.sub(r"<[A-Za-z_][A-Za-z_ ]*>", hold, line)
    lexer = shlex.shlex(guarded, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return [re.sub(r"@@(\d+)@@", lambda m: held[int(m.group(1))], word) for word in lexer]


def compose_commands() -> list[list[str]]:
    """Every ``docker compose …`` command the runbook's shell blocks give (one after an
    assignment, ``&&`` or ``;`` too), as the shell would split it: up to the next shell
    operator, quotes removed, ``$VAR`` and placeholders (``<TRIPCODE>``, ``62…``) as
    written."""
    out: list[list[str]] = []
    for block in runbook_blocks("sh"):
        for line in shell_lines(block):
            if "docker compose" not in line:
                continue
            tokens = shell_words(line)
            for i, token in enumerate(tokens[:-1]):
                if token == "docker" and tokens[i + 1] == "compose":
                    argv: list[str] = []
                    for word in tokens[i:]:
                        if word in _OPERATORS:
                            break
                        argv.append(word)
                    out.append(argv)
    return out


def simple_commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at operators), their leading
    ``VAR=value`` assignments dropped."""
    out: list[list[str]] = [[]]
    for word in shell_words(line):
        if word in _OPERATORS:
            out.append([])
        elif out[-1] or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word):
            out[-1].append(word)
    return [argv for argv in out if argv]


def dotenv_template() -> dict[str, str]:
    """The runbook's ``.env`` template: each variable with the value it is given there
    (empty where the operator must fill it in)."""
    (block,) = runbook_blocks("dotenv")
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", block, re.M))


def host_commands(program: str) -> list[str]:
    """The runbook's shell lines that run ``program`` on the host itself (``curl``)."""
    return [
        line
        for block in runbook_blocks("sh")
        for line in shell_lines(block)
        if any(argv[0] == program for argv in simple_commands(line))
    ]

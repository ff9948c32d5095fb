"""Structured JSON logs: ``ts, level, service, logger, msg``, the ``requestId`` and the
ids (``tripId``, ``participantId``, ``userId``, ``unit``, …) of the work being done
(``storage/trace.py``), and the log call's extras.

Phone numbers never reach the logs: the formatter masks any long digit run and any
number written the Indonesian ways (``+62 812-1903-9736``, ``0812 1903 9736``), whatever
a library decided to log. A failure that repeats (a database outage) is written once per
:data:`REPEAT_SECONDS` with how many times it happened since, not once per attempt.

Error reports (Sentry) are built in ``bot/reports.py`` from an allow-list.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from storage import trace

_DIGITS = re.compile(r"\+?\d{9,15}")
# a number written with spaces, dashes, dots or brackets: +62 812-1903-9736, 0812 1903
# 9736, (0812) 19039736, 62.812.1903.9736 (a date, 2026-12-07, starts with neither)
_SPACED = re.compile(r"(?<![\w+])\(?(?:\+\s?|0|62)\d*(?:[ .()-]{1,2}\d+)+")
# the signature of a signed link (an admin's proof image): whoever reads a log line must
# not be able to open the link, even before it expires
_SIGNATURE = re.compile(r"([?&]sig=)[^&\s\"']+")
# a jastiper's one-time web link (/web): the token in its path opens their panel
_WEB_LINK = re.compile(r"(/j-web/)[A-Za-z0-9_-]{20,}")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


# Meta's message ids carry the number in base64 (``wamid.HBgN…``)
_WAMID = re.compile(r"wamid\.[A-Za-z0-9+/=_-]+")


def _mask_spaced(match: re.Match[str]) -> str:
    found = match.group(0)
    digits = sum(c.isdigit() for c in found)
    return found[:4] + "…" if digits >= 9 else found


def redact(text: str) -> str:
    text = _WAMID.sub("wamid.…", text)
    text = _SIGNATURE.sub(r"\1…", text)
    text = _WEB_LINK.sub(r"\1…", text)
    text = _SPACED.sub(_mask_spaced, text)
    return _DIGITS.sub(lambda m: m.group(0)[:4] + "…", text)


REPEAT_SECONDS = 30.0


class RepeatFilter(logging.Filter):
    """Lets the first warning or error of a kind (logger, message template, level) through,
    then at most one per ``every`` seconds, carrying ``repeated``: how many of its kind
    were held back since the last one written. Infos and debugs always pass."""

    def __init__(
        self, every: float = REPEAT_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self._last: dict[tuple[str, str, int], float] = {}
        self._held: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg), record.levelno)
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            if len(self._last) > 1000:
                self._last = {k: t for k, t in self._last.items() if now - t < self.every}
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            record.repeated = held
        return True


# The id of the HTTP request being answered (``X-Request-Id``, bot/app.py), or of the one
# whose work is being done (a unit, a send, a job), on every line written meanwhile, with
# the trip and participant ids of the current scope (storage/trace.py)
REQUEST_ID = trace.REQUEST_ID


def utc_timestamp(created: float) -> str:
    """``2026-12-07T03:04:05.678+00:00``: UTC with its offset, whatever the host's zone."""
    return dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": utc_timestamp(record.created),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        # formatted where it is written, in its context: the request, then the ids of
        # what the work is about (ints and codes; a log call's own extras win)
        request_id = REQUEST_ID.get()
        if request_id is not None:
            out["requestId"] = request_id
        for key, value in trace.fields().items():
            out[key] = redact(value) if isinstance(value, str) else value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                if key == "requestId":  # our own random id: a digit run in it is no number
                    out[key] = value
                    continue
                out[key] = redact(str(value)) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[1] is not None:
            out["exc"] = redact(format_traceback(record.exc_info[1]))
        return json.dumps(out, default=str, ensure_ascii=False)


# Whose exception messages a log line keeps: the infrastructure's (connections, SQL,
# HTTP, the broker), and Python's own about code. Any other message (a ValueError, a
# domain error, ``int()`` of what someone typed) may quote a name or an address: only
# its type is written.
_TELLING_MODULES = (
    "sqlalchemy",
    "asyncpg",
    "sqlite3",
    "aiosqlite",
    "httpx",
    "httpcore",
    "pywa",
    "pywa_async",
    "botocore",
    "redis",
    "dramatiq",
    "aiohttp",
    "asyncio",
    "ssl",
    "socket",
)
_TELLING_TYPES = (OSError, TimeoutError, KeyError, AttributeError, ImportError, RecursionError)


def _describe(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    name = kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException) and getattr(exc, "statement", None) is not None:
        # a statement's error: the driver's message and the SQL, never its parameters
        return f"{name}: ({type(orig).__name__}) {orig}\n[SQL: {exc.statement}]"  # type: ignore[attr-defined]
    if module.split(".")[0] in _TELLING_MODULES or isinstance(exc, _TELLING_TYPES):
        return f"{name}: {exc}"
    return f"{name} (message not logged)"


def describe_error(exc: BaseException) -> str:
    """``exc`` as one line safe to keep (an inbound unit's ``last_error``): its type, and
    its message only when :func:`_describe` says it cannot hold personal data, redacted."""
    return redact(_describe(exc)).splitlines()[0]


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and of what caused it, as Python prints it, with each
    exception's message only when :func:`_describe` says it cannot hold personal data."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in chain):
        chain.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__suppress_context__:
            current = None
        else:
            current = current.__context__
    parts = [
        "Traceback (most recent call last):\n"
        + "".join(traceback.format_tb(e.__traceback__))
        + _describe(e)
        for e in reversed(chain)
    ]
    return "\n\nThe above exception led to the following:\n\n".join(parts)


# Libraries that log what people typed, whole updates or statement parameters at debug
# or info (pywa: raw updates; aiosqlite, SQLAlchemy, asyncpg: bound values; transitions:
# event data): kept to warnings whatever LOG_LEVEL says.
QUIET = (
    "pywa",
    "pywa_async",
    "httpx",
    "httpcore",
    "aiohttp.access",
    "aiosqlite",
    "sqlalchemy",
    "asyncpg",
    "transitions",
)


def setup_logging(service: str, level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)

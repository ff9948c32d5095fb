"""Structured JSON logs: ``level, service, jobId, tripId, participantId, msg`` and extras,
and the error reports sent to Sentry.

Phone numbers never reach the logs: the formatter masks any long digit run, whatever
a library decided to log. Sentry events get the same masking on every string they carry
(message, exception values, breadcrumbs, stack frames' local variables, extra, contexts,
request data) before they leave the process.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any

_DIGITS = re.compile(r"\+?\d{9,15}")
# the signature of a signed link (an admin's proof image): whoever reads a log line must
# not be able to open the link, even before it expires
_SIGNATURE = re.compile(r"([?&]sig=)[^&\s\"']+")
# a jastiper's one-time web link (/web): the token in its path opens their panel
_WEB_LINK = re.compile(r"(/j-web/)[A-Za-z0-9_-]{20,}")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


# Meta's message ids carry the number in base64 (``wamid.HBgN…``)
_WAMID = re.compile(r"wamid\.[A-Za-z0-9+/=_-]+")


def redact(text: str) -> str:
    text = _WAMID.sub("wamid.…", text)
    text = _SIGNATURE.sub(r"\1…", text)
    text = _WEB_LINK.sub(r"\1…", text)
    return _DIGITS.sub(lambda m: m.group(0)[:4] + "…", text)


# Values under these keys (any depth, any case) are dropped from error reports whole:
# what a buyer typed, raw webhook bodies, key material.
_SCRUBBED_KEYS = frozenset(
    {"address", "street", "phone", "wa_id", "body", "raw", "pii_key", "account_number"}
)
FILTERED = "[Filtered]"
# Sentry's own hex identifiers: a run of digits in them is not a number, and a masked one
# would break the event.
_KEPT_KEYS = frozenset({"event_id", "trace_id", "span_id", "parent_span_id", "profile_id"})


def scrub(value: Any) -> Any:
    """``value`` with every string (keys included) passed through :func:`redact`, and
    every integer that reads as a phone number masked; dicts and lists are walked."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, float, dt.date, dt.time, dt.timedelta)):
        return value
    if isinstance(value, int):
        text = str(value)
        masked = redact(text)
        return value if masked == text else masked
    if isinstance(value, dict):
        return {
            k if not isinstance(k, str) else scrub(k): _scrub_item(k, v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return redact(bytes(value).decode("utf-8", "replace"))
    return redact(str(value))


def _scrub_item(key: Any, value: Any) -> Any:
    if not isinstance(key, str):
        return scrub(value)
    if key.lower() in _SCRUBBED_KEYS:
        return FILTERED
    if key in _KEPT_KEYS and isinstance(value, str):
        return value
    return scrub(value)


def scrub_event(event: Any, hint: Any = None) -> Any:
    """Sentry's ``before_send`` / ``before_send_transaction``: the whole event, scrubbed."""
    return scrub(event)


def scrub_breadcrumb(crumb: Any, hint: Any = None) -> Any:
    """Sentry's ``before_breadcrumb``: a log line or request kept for the next event."""
    return scrub(crumb)


def release() -> str:
    """What Sentry calls the release: ``jastipin@<package version>``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"jastipin@{version('jastipin')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "jastipin@unknown"


def init_sentry(dsn: str, *, environment: str | None = None, **options: Any) -> None:
    """Start error reporting; every event and breadcrumb goes through :func:`scrub`.

    ``environment`` is ``APP_ENV`` (Settings.app_env); the release is the package
    version. ``options`` go to ``sentry_sdk.init`` as they are (tests pass a local
    ``transport``).
    """
    import sentry_sdk

    # send_default_pii stays unset (False): no user IP, cookies or request bodies
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release(),
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        **options,
    )


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = redact(str(value)) if isinstance(value, str) else value
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str, ensure_ascii=False)


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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)

"""What an error report (a Sentry event) may carry, and how many of them leave.

Events are rebuilt from an allow-list rather than scrubbed: the exception's type and
module, the frames' module, function and line, the log call's message template (its
arguments dropped), a few id-like extras (the unit key, kinds, job and row ids), the
request's method and path, and Sentry's own bookkeeping. Frame locals are never
collected (``include_local_variables=False``) and dropped again if present; exception
values, log arguments, breadcrumb data, request bodies, headers, cookies, tags and
contexts set by code are not copied. Every string kept still goes through
:func:`bot.logs.redact`. So a name, a street or a number in any spelling has no field to
travel in, whatever an exception message or a ``repr`` holds.

:class:`EventLimiter` keeps an outage from flooding the tracker: one event per
fingerprint (exception type, where it was raised, message template) per minute, and at
most :data:`GLOBAL_CAP` events a minute in all; what was held back is counted and said
in the next event that goes.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.logs import redact
from storage import trace

log = logging.getLogger(__name__)

# top-level fields copied as they are (Sentry's own bookkeeping; no user content)
_TOP = (
    "event_id",
    "timestamp",
    "start_timestamp",
    "level",
    "platform",
    "logger",
    "release",
    "environment",
    "server_name",
    "sdk",
    "type",
)
# extras a log call may attach (``extra={...}``): ids, counts and kinds, never text
EXTRA_KEYS = frozenset(
    {
        "unit",
        "kind",
        "kinds",
        "error",
        "jobId",
        "job",
        "tripId",
        "participantId",
        "userId",
        "requestId",
        "outboxId",
        "broadcastId",
        "proofId",
        "attempt",
        "try",
        "code",
        "left",
        "count",
        "repeated",
        "source",
        "service",
        "size",
    }
)
# an extra's string value is kept only when it looks like an identifier (no spaces: a
# name or a street has some), and only its first part when it is "Type: message"
_ID_LIKE = re.compile(r"[A-Za-z0-9_.:/#@=+-]{1,80}")
_CONTEXTS = ("runtime", "os", "trace")
_FRAME_KEYS = ("function", "module", "lineno", "in_app", "filename")
_CRUMB_KEYS = ("type", "category", "level", "timestamp")
_SPAN_KEYS = (
    "span_id",
    "trace_id",
    "parent_span_id",
    "op",
    "status",
    "start_timestamp",
    "timestamp",
)

PER_FINGERPRINT_SECONDS = 60.0
GLOBAL_CAP = 20  # events a minute, whatever their fingerprint


def _text(value: Any, limit: int = 200) -> str:
    return redact(str(value))[:limit]


def _extra_value(key: str, value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        masked = redact(str(value))
        return value if masked == str(value) else masked
    if isinstance(value, list | tuple | set | frozenset):
        kept = [_extra_value(key, v) for v in list(value)[:20]]
        return [v for v in kept if v is not None]
    if isinstance(value, str):
        if key == "error":  # "KeyError: 'x'": the type only
            value = value.split(":", 1)[0]
        if _ID_LIKE.fullmatch(value):
            # our request ids are random hex (bot/app.py): a digit run in one is no number
            return value if key == "requestId" else redact(value)
    return None


def _frames(stacktrace: Any) -> dict[str, Any] | None:
    if not isinstance(stacktrace, dict):
        return None
    frames = []
    for frame in stacktrace.get("frames") or []:
        if isinstance(frame, dict):
            frames.append({k: frame[k] for k in _FRAME_KEYS if k in frame})
    return {"frames": frames}


def _exception(exc: Any) -> dict[str, Any] | None:
    if not isinstance(exc, dict):
        return None
    values = []
    for value in exc.get("values") or []:
        if not isinstance(value, dict):
            continue
        kept: dict[str, Any] = {"type": _text(value.get("type", "Exception"), 120)}
        if "module" in value:
            kept["module"] = _text(value["module"], 120)
        mechanism = value.get("mechanism")
        if isinstance(mechanism, dict):
            kept["mechanism"] = {
                k: mechanism[k] for k in ("type", "handled", "exception_id") if k in mechanism
            }
        frames = _frames(value.get("stacktrace"))
        if frames is not None:
            kept["stacktrace"] = frames
        values.append(kept)
    return {"values": values}


def allowed_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event rebuilt from the allow-list (see the module's docstring)."""
    out: dict[str, Any] = {k: event[k] for k in _TOP if k in event}
    logentry = event.get("logentry")
    if isinstance(logentry, dict) and logentry.get("message"):
        # the template of the log call, never its arguments nor the formatted line
        out["logentry"] = {"message": _text(logentry["message"])}
    elif isinstance(event.get("message"), str):
        out["message"] = _text(event["message"])
    if "transaction" in event:
        out["transaction"] = _text(event["transaction"], 120)
    exception = _exception(event.get("exception"))
    if exception is not None:
        out["exception"] = exception
    extra = event.get("extra")
    if isinstance(extra, dict):
        kept = {}
        for key, value in extra.items():
            if key in EXTRA_KEYS:
                safe = _extra_value(key, value)
                if safe is not None:
                    kept[key] = safe
        if kept:
            out["extra"] = kept
    contexts = event.get("contexts")
    if isinstance(contexts, dict):
        out["contexts"] = {k: contexts[k] for k in _CONTEXTS if isinstance(contexts.get(k), dict)}
    request = event.get("request")
    if isinstance(request, dict):
        kept_request = {}
        if "method" in request:
            kept_request["method"] = _text(request["method"], 10)
        if "url" in request:
            kept_request["url"] = _text(str(request["url"]).split("?", 1)[0], 200)
        out["request"] = kept_request
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, dict):
        kept_crumbs = []
        for crumb in crumbs.get("values") or []:
            if not isinstance(crumb, dict):
                continue
            c = {k: crumb[k] for k in _CRUMB_KEYS if k in crumb}
            if crumb.get("type") not in ("http", "query") and "message" in crumb:
                c["message"] = _text(crumb["message"])
            kept_crumbs.append(c)
        out["breadcrumbs"] = {"values": kept_crumbs}
    spans = event.get("spans")
    if isinstance(spans, list):
        out["spans"] = [
            {k: s[k] for k in _SPAN_KEYS if k in s} | {"description": _text(s.get("op", ""))}
            for s in spans
            if isinstance(s, dict)
        ]
    return out


def allowed_breadcrumb(
    crumb: dict[str, Any], hint: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A breadcrumb kept for the next event: a log line's template (not its arguments),
    no data of any kind (URLs, statement parameters); SQL statements are not kept."""
    if crumb.get("category") == "query" or crumb.get("type") == "query":
        return None
    record = (hint or {}).get("log_record")
    out = {k: crumb[k] for k in _CRUMB_KEYS if k in crumb}
    if isinstance(record, logging.LogRecord) and isinstance(record.msg, str):
        out["message"] = _text(record.msg)
    elif crumb.get("type") not in ("http", "query") and "message" in crumb:
        out["message"] = _text(crumb["message"])
    return out


def fingerprint(event: dict[str, Any]) -> tuple[str, ...]:
    """What makes two events "the same failure": the exception's type and the place it
    was raised (module and line of the last frame), and the message template."""
    parts: list[str] = [str(event.get("logger", ""))]
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        parts.append(str(logentry.get("message", "")))
    elif isinstance(event.get("message"), str):
        parts.append(event["message"])
    for value in (event.get("exception") or {}).get("values") or []:
        parts.append(str(value.get("type", "")))
        frames = (value.get("stacktrace") or {}).get("frames") or []
        if frames:
            parts.append(f"{frames[-1].get('module')}:{frames[-1].get('lineno')}")
    return tuple(parts)


class EventLimiter:
    """One event per fingerprint per ``per_fingerprint`` seconds, and at most ``cap``
    events per minute in all. Thread-safe (Sentry calls ``before_send`` from any
    thread)."""

    def __init__(
        self,
        *,
        per_fingerprint: float = PER_FINGERPRINT_SECONDS,
        cap: int = GLOBAL_CAP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_fingerprint = per_fingerprint
        self.cap = cap
        self.clock = clock
        self._last: dict[tuple[str, ...], float] = {}
        self._held: dict[tuple[str, ...], int] = {}
        self._window_start = -1e18
        self._in_window = 0
        self.dropped = 0
        self._lock = threading.Lock()

    def admit(self, key: tuple[str, ...]) -> int | None:
        """None when the event must be dropped; else how many of its kind were held
        back since the last one went."""
        now = self.clock()
        with self._lock:
            if now - self._window_start >= 60.0:
                self._window_start, self._in_window = now, 0
            last = self._last.get(key)
            if (last is not None and now - last < self.per_fingerprint) or (
                self._in_window >= self.cap
            ):
                self._held[key] = self._held.get(key, 0) + 1
                self.dropped += 1
                return None
            if len(self._last) > 1000:  # forget fingerprints quiet for a while
                self._last = {
                    k: t for k, t in self._last.items() if now - t < self.per_fingerprint
                }
            self._last[key] = now
            self._in_window += 1
            return self._held.pop(key, 0)


class EventGate:
    """Sentry's ``before_send``: rate-limited, then rebuilt from the allow-list."""

    def __init__(self, limiter: EventLimiter | None = None) -> None:
        self.limiter = limiter or EventLimiter()

    def __call__(self, event: dict[str, Any], hint: Any = None) -> dict[str, Any] | None:
        held = self.limiter.admit(fingerprint(event))
        if held is None:
            return None
        out = allowed_event(event)
        # the request and the ids of the work that failed (storage/trace.py): Sentry
        # calls this where the event was captured, in that work's context
        request_id = trace.request_id()
        ids = {**trace.fields(), **({"requestId": request_id} if request_id else {})}
        for key, value in ids.items():
            safe = _extra_value(key, value) if key in EXTRA_KEYS else None
            if safe is not None:
                out.setdefault("extra", {}).setdefault(key, safe)
        if held:
            out.setdefault("extra", {})["repeated"] = held
        return out


def before_send_transaction(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """Performance events (when traces are sampled): the same allow-list, no limit."""
    return allowed_event(event)


def release() -> str:
    """What Sentry and ``/health`` call the release: ``jastipin@<package version>+<commit>``,
    the commit from ``JASTIPIN_COMMIT`` (baked into the image by the build argument
    ``GIT_COMMIT``) or, in a checkout, git's; without either, the version alone."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        name = f"jastipin@{version('jastipin')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        name = "jastipin@unknown"
    commit = _commit()
    return f"{name}+{commit}" if commit else name


@functools.cache
def _commit() -> str | None:
    import os
    import subprocess
    from pathlib import Path

    baked = os.environ.get("JASTIPIN_COMMIT", "").strip()
    if baked:
        return baked[:12]
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def init_sentry(
    dsn: str,
    *,
    environment: str | None = None,
    limiter: EventLimiter | None = None,
    **options: Any,
) -> None:
    """Start error reporting: events rebuilt from the allow-list and rate-limited
    (:class:`EventGate`), breadcrumbs reduced to log templates, no frame locals, no
    request bodies, no default PII (IP, cookies, user).

    ``environment`` is ``APP_ENV`` (Settings.app_env); the release is the package
    version. ``options`` go to ``sentry_sdk.init`` as they are (tests pass a local
    ``transport``).
    """
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release(),
        include_local_variables=False,
        include_source_context=False,
        max_request_body_size="never",
        before_send=EventGate(limiter),  # type: ignore[arg-type]
        before_send_transaction=before_send_transaction,  # type: ignore[arg-type]
        before_breadcrumb=allowed_breadcrumb,  # type: ignore[arg-type]
        **options,
    )

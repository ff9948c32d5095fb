"""What a log line belongs to: the request that caused the work, and the trip and
participant it is about — ids and codes only, never a number, a name or an address.

Set where work starts (the HTTP middleware, the inbox processor per unit, the outbox per
send, the Dramatiq middleware per job), added to by the code that learns more (a trip
joined, a user found), read by the log formatter (``bot/logs.py``), and stored with
what a piece of work leaves for later (an inbox unit, an outbox row, a broadcast) so
that the later work, in this process or another, writes the same request id.

Here, in the lowest layer, because the repositories read it when they write those rows.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator, Mapping

# The id of the HTTP request being answered (``X-Request-Id``, bot/app.py), or of the
# request whose work is being done (a unit, a send, a job).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# Ids of what the work is about (``tripId``, ``participantId``, ``userId``, ``unit``);
# None outside a :func:`scope` (then :func:`bind` adds nothing).
_FIELDS: contextvars.ContextVar[Mapping[str, int | str] | None] = contextvars.ContextVar(
    "log_fields", default=None
)


def request_id() -> str | None:
    return REQUEST_ID.get()


def new_request_id() -> str:
    """A fresh id (32 hex digits) for work no request caused: an HTTP request without a
    usable ``X-Request-Id``, one run of a scheduled job."""
    return uuid.uuid4().hex


def fields() -> Mapping[str, int | str]:
    """The ids bound in the current scope."""
    return _FIELDS.get() or {}


@contextlib.contextmanager
def scope(request: str | None, **ids: int | str | None) -> Iterator[None]:
    """Work on behalf of ``request`` (None: of no request) about ``ids``. What is bound
    inside ends with it."""
    token = REQUEST_ID.set(request)
    fields_token = _FIELDS.set({k: v for k, v in ids.items() if v is not None})
    try:
        yield
    finally:
        _FIELDS.reset(fields_token)
        REQUEST_ID.reset(token)


def bind(**ids: int | str | None) -> None:
    """Add ids learned along the way (the trip a buyer joined) to the current scope:
    the lines written after it, until the scope ends, carry them."""
    current = _FIELDS.get()
    if current is None:
        return
    _FIELDS.set({**current, **{k: v for k, v in ids.items() if v is not None}})

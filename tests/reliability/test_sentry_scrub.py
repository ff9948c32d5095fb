"""Error reports carry no phone numbers: Sentry events pass through the logs' redaction.

Sentry is started the way ``jastipin serve`` starts it (``init_sentry``), with a transport
that keeps the envelopes in memory instead of sending them anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from bot.keys import OUTBOX
from bot.logs import init_sentry
from storage.repo import outbox as outbox_repo
from storage.repo.users import upsert_user
from tests.conftest import Harness, phone

LOCAL_DSN = "http://public@127.0.0.1:9/1"  # never contacted: the transport is local


class LocalTransport(Transport):
    """Collects every envelope the SDK would have sent."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        return [e.get_event() for e in self.envelopes if e.get_event() is not None]  # type: ignore[misc]

    def text(self) -> str:
        """Everything that would have gone over the wire, as text."""
        return "\n".join(e.serialize().decode("utf-8", "replace") for e in self.envelopes)


@pytest.fixture
def sentry() -> Iterator[LocalTransport]:
    transport = LocalTransport()
    init_sentry(LOCAL_DSN, transport=transport)
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def forms(number: str) -> list[str]:
    """The ways a number can show up: as given, with a plus, local 0-form, last 9 digits."""
    national = number[2:]  # 62 + 8xx…
    return [number, "+" + number, "0" + national, number[-9:]]


def assert_no_number(text: str, number: str) -> None:
    for form in forms(number):
        assert form not in text, f"{form!r} reached Sentry"


async def test_an_outbox_crash_reports_the_error_but_not_the_recipients_number(
    harness: Harness, sentry: LocalTransport
) -> None:
    number = phone()
    async with harness.db.transaction() as session:
        user = await upsert_user(session, harness.cipher, bsuid=None, wa_id=number)
        # a payload the transport cannot build: the dispatcher's "unexpected error" path,
        # logged with the traceback while `to` holds the decrypted number
        outbox_repo.enqueue(session, user.id, {"type": "buttons", "buttons": []})
    # a library that logs the number in a line before the crash (a breadcrumb)
    logging.getLogger("pywa_async.tests").warning("sending to %s failed once", number)
    await harness.app[OUTBOX].flush()
    sentry_sdk.flush()

    (event,) = sentry.events()
    assert event["logentry"]["message"] == "unexpected error sending outbox row %s"
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert event["exception"]["values"][-1]["type"] == "KeyError"
    # the frames' variables were attached (and masked), not dropped
    send = next(f for f in frames if f["function"] == "send")
    assert send["vars"]["to"] == repr(number[:4] + "…")
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"] if c.get("type") == "log"]
    assert f"sending to {number[:4]}… failed once" in crumbs
    assert_no_number(sentry.text(), number)


def _charge(to: str, amount: int) -> None:
    note = f"transfer for {to} failed"
    raise ValueError(f"bank refused {amount} for {to}: {note}")


async def test_every_part_of_an_event_is_masked(sentry: LocalTransport) -> None:
    number = phone()
    sentry_sdk.add_breadcrumb(message=f"joined {number}", data={"who": "+" + number})
    sentry_sdk.set_extra("recipient", number)
    sentry_sdk.set_extra("as_number", int(number))
    sentry_sdk.set_context("buyer", {"wa": number, "address": "Jl. Melati 12, Bandung"})
    sentry_sdk.set_tag("last", number[-9:])
    try:
        _charge(number, 150000)
    except ValueError:
        sentry_sdk.capture_exception()
    sentry_sdk.capture_message(f"no reply for 0{number[2:]} after checkout")
    sentry_sdk.flush()

    text = sentry.text()
    crash, message = sentry.events()
    assert "bank refused 150000" in text and "_charge" in text
    assert message["message"].startswith("no reply for")
    # a typed address under a known key is dropped whole (the source lines shown with the
    # frames are this test's own, so look at the context itself)
    assert crash["contexts"]["buyer"]["address"] == "[Filtered]"
    assert crash["extra"]["as_number"] == number[:4] + "…"
    assert_no_number(text, number)

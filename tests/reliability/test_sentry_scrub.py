"""Error reports carry no personal data: Sentry events are rebuilt from an allow-list
(exception type, module, line, the log call's template, unit id, kinds), never frame
locals, exception messages, log arguments or what a person typed.

Sentry is started the way ``jastipin serve`` starts it (``init_sentry``), with a transport
that keeps the envelopes in memory instead of sending them anywhere. The failures are
real ones: a table gone from under the inbox (a database error mid-batch) and a flow
raising with the buyer's text in its message.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sqlalchemy import text

from bot import simulate
from bot.keys import OUTBOX
from bot.logs import JsonFormatter
from bot.reports import EventLimiter, init_sentry
from flows import menu
from flows.base import Ctx
from storage.repo import outbox as outbox_repo
from storage.repo.users import upsert_user
from tests.conftest import Harness, phone
from tests.reliability.sentry import LOCAL_DSN, LocalTransport

NUMBER = "6281219039736"
NAME = "Sari Kenanga"
STREET = "Jl. Kenanga No. 17"
TYPED = f"alamat baru {STREET} a.n. {NAME} +62 812-1903-9736"
NEEDLES = [
    NUMBER,
    "+" + NUMBER,
    "+62 812-1903-9736",
    "0812-1903-9736",
    "0812 1903 9736",
    "0" + NUMBER[2:],
    NUMBER[-9:],
    NAME,
    "Kenanga",
    "alamat baru",
]


@pytest.fixture
def sentry() -> Iterator[LocalTransport]:
    transport = LocalTransport()
    # no rate limit here: every failure of the test must show up
    init_sentry(LOCAL_DSN, transport=transport, limiter=EventLimiter(per_fingerprint=0))
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def assert_no_personal_data(text: str) -> None:
    for needle in NEEDLES:
        assert needle not in text, f"{needle!r} reached Sentry"


def by_message(events: list[dict[str, Any]], message: str) -> list[dict[str, Any]]:
    return [e for e in events if (e.get("logentry") or {}).get("message") == message]


async def test_a_database_error_mid_batch_reports_the_unit_but_nothing_of_the_buyer(
    harness: Harness, sentry: LocalTransport
) -> None:
    h = harness
    await h.seed_demo()
    # Given the buyer's conversations table gone from under the inbox (a real error of
    # the database, in the batch and again in the one-by-one retry)
    async with h.db.transaction() as session:
        await session.execute(text("ALTER TABLE conversations RENAME TO conversations_away"))
    try:
        # When the buyer writes their new address
        resp = await h.post(simulate.text(NUMBER, TYPED, name=NAME))
        assert resp.status == 200
        await h.settle()
    finally:
        async with h.db.transaction() as session:
            await session.execute(text("ALTER TABLE conversations_away RENAME TO conversations"))
    sentry_sdk.flush()

    # Then the operator is told which unit failed, how and where
    (event,) = by_message(sentry.events(), "processing an inbound unit failed")
    assert event["extra"]["unit"].startswith("w:h1:")  # the digest of Meta's message id
    exc = event["exception"]["values"][-1]
    assert exc["type"] in ("OperationalError", "ProgrammingError")
    assert "value" not in exc  # the message (SQL, its parameters) stays home
    frames = exc["stacktrace"]["frames"]
    assert any(f["module"] == "bot.inbox" and f["function"] == "_apply_alone" for f in frames)
    assert all("vars" not in f and "context_line" not in f for f in frames)
    # and nothing of what the buyer is or typed, in any spelling
    assert_no_personal_data(sentry.text())


async def test_a_flow_raising_with_the_typed_text_reports_no_personal_data(
    harness: Harness, sentry: LocalTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(ctx: Ctx) -> None:
        # a bug that puts what the buyer typed and who they are into the exception, with
        # the context (user row, conversation, incoming message) in its locals
        unit, profile = ctx.incoming, {"name": ctx.incoming.profile_name}
        # and a library that logged the update just before (a breadcrumb)
        logging.getLogger("pywa_async.tests").warning("update from %s: %s", NUMBER, unit.text)
        raise ValueError(f"cannot read {unit.text!r} from {profile} ({ctx!r})")

    monkeypatch.setattr(menu, "not_understood", broken)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("api"))
    logging.getLogger().addHandler(handler)
    try:
        await harness.say(NUMBER, TYPED, name=NAME)
    finally:
        logging.getLogger().removeHandler(handler)
    sentry_sdk.flush()

    # the log line says where it failed, not what the buyer wrote (nor the reprs)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (logged, *_) = [x for x in lines if x["msg"] == "processing an inbound unit failed"]
    assert "ValueError (message not logged)" in logged["exc"] and "broken" in logged["exc"]
    assert_no_personal_data(json.dumps(logged))

    failed = by_message(sentry.events(), "processing an inbound unit failed")
    assert failed  # (and again each time the unit is retried)
    event = failed[0]
    exc = event["exception"]["values"][-1]
    assert exc["type"] == "ValueError"
    assert any(f["function"] == "broken" for f in exc["stacktrace"]["frames"])
    # the breadcrumb of the library's line is its template, not the values
    crumbs = [c.get("message") for c in event["breadcrumbs"]["values"]]
    assert "update from %s: %s" in crumbs
    assert_no_personal_data(sentry.text())


async def test_an_outbox_crash_reports_the_error_but_not_the_recipients_number(
    harness: Harness, sentry: LocalTransport
) -> None:
    number = phone()
    async with harness.db.transaction() as session:
        user = await upsert_user(session, harness.cipher, bsuid=None, wa_id=number)
        # a payload the transport cannot build: the dispatcher's "unexpected error" path,
        # logged with the traceback while `to` holds the decrypted number
        outbox_repo.queue(session, user.id, {"type": "buttons", "buttons": []})
    await harness.app[OUTBOX].flush()
    sentry_sdk.flush()

    (event,) = sentry.events()
    assert event["logentry"]["message"] == "unexpected error sending outbox row %s"
    assert event["exception"]["values"][-1]["type"] == "KeyError"
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    send = next(f for f in frames if f["function"] == "send")
    assert "vars" not in send and send["lineno"] > 0
    text_sent = sentry.text()
    for form in (number, "+" + number, "0" + number[2:], number[-9:]):
        assert form not in text_sent


def _charge(to: str, amount: int) -> None:
    note = f"transfer for {to} failed"
    raise ValueError(f"bank refused {amount} for {to}: {note}")


async def test_only_allowed_fields_leave_whatever_code_attaches(sentry: LocalTransport) -> None:
    sentry_sdk.add_breadcrumb(message=f"joined {NUMBER}", data={"who": "+" + NUMBER})
    sentry_sdk.set_extra("recipient", NUMBER)
    sentry_sdk.set_extra("unit", "w:h1:3f2a")
    sentry_sdk.set_extra("error", f"ValueError: {TYPED}")
    sentry_sdk.set_context("buyer", {"wa": NUMBER, "address": STREET})
    sentry_sdk.set_tag("name", NAME)
    sentry_sdk.set_user({"id": NUMBER, "username": NAME})
    try:
        _charge(NUMBER, 150000)
    except ValueError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush()

    (crash,) = sentry.events()
    assert crash["exception"]["values"][-1]["type"] == "ValueError"
    assert crash["exception"]["values"][-1]["stacktrace"]["frames"][-1]["function"] == "_charge"
    assert crash["extra"] == {"unit": "w:h1:3f2a", "error": "ValueError"}
    assert "buyer" not in crash.get("contexts", {}) and "user" not in crash
    assert not crash.get("tags")
    assert_no_personal_data(sentry.text())


async def test_repeated_failures_send_one_event_per_minute(sentry: LocalTransport) -> None:
    clock = [1000.0]
    limiter = EventLimiter(clock=lambda: clock[0])
    client = sentry_sdk.get_client()
    client.options["before_send"].limiter = limiter
    log = logging.getLogger("tests.flood")
    for _ in range(50):
        try:
            _charge(NUMBER, 1)
        except ValueError:
            log.exception("charging failed")
        clock[0] += 0.1
    clock[0] += 60
    try:
        _charge(NUMBER, 1)
    except ValueError:
        log.exception("charging failed")
    sentry_sdk.flush()
    first, second = sentry.events()
    assert "repeated" not in first.get("extra", {})
    assert second["extra"]["repeated"] == 49  # the ones held back, said once
    assert limiter.dropped == 49


def test_log_lines_mask_the_number_in_every_spelling() -> None:
    from bot.logs import redact

    line = redact(f"to {NUMBER} / +{NUMBER} / +62 812-1903-9736 / 0812-1903-9736 / 0812 1903 9736")
    for needle in NEEDLES[:7]:
        assert needle not in line
    # what is not a number stays readable
    assert redact("at 2026-12-07 10:09:02, Rp 1.250.000, order JP-7") == (
        "at 2026-12-07 10:09:02, Rp 1.250.000, order JP-7"
    )

"""Logs an on-call person can tie together: every answer carries an ``X-Request-Id`` (a
proxy's is kept), every line written while answering carries it as ``requestId``, each
request has an access line (the route's template, never a token in the path), and ``ts``
is UTC with its offset. The release names the commit."""

from __future__ import annotations

import json
import logging
import re

import pytest

from bot import simulate
from bot.logs import JsonFormatter
from bot.reports import release
from tests.conftest import Harness, phone


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    formatter = JsonFormatter("api")
    return [json.loads(formatter.format(r)) for r in caplog.records]


async def test_a_webhook_answer_carries_its_request_id_into_the_log(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="jastipin.access")  # whatever an earlier test set
    resp = await h.post(simulate.text(phone(), "HALO", name="Sari"))
    assert resp.status == 200
    request_id = resp.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    access = [
        line
        for line in _lines(caplog)
        if line.get("logger") == "jastipin.access" and line.get("requestId") == request_id
    ]
    assert len(access) == 1
    assert access[0]["msg"] == "POST /api/webhooks/whatsapp 200"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", str(access[0]["ts"]))

    # a proxy's id is kept; a header that is not an id is replaced
    kept = await h.client.get("/health", headers={"X-Request-Id": "edge-7f3a9c21"})
    assert kept.headers["X-Request-Id"] == "edge-7f3a9c21"
    assert (await kept.json())["version"] == release()  # the release Sentry names too
    junk = await h.client.get("/health", headers={"X-Request-Id": "x\u00e9<script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", junk.headers["X-Request-Id"])
    # refused requests too (a 4xx raised, not returned)
    missing = await h.client.get("/t/NOPE99")
    assert missing.status == 404 and missing.headers.get("X-Request-Id")


async def test_an_access_line_names_the_route_not_the_token(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="jastipin.access")  # whatever an earlier test set
    token = "A" * 43
    await harness.client.get(f"/j-web/{token}")
    text = "\n".join(json.dumps(line) for line in _lines(caplog))
    assert token not in text


def test_the_release_names_the_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import reports

    reports._commit.cache_clear()
    monkeypatch.setenv("JASTIPIN_COMMIT", "0123456789abcdef")
    try:
        assert release().endswith("+0123456789ab")
        assert release().startswith("jastipin@")
    finally:
        reports._commit.cache_clear()

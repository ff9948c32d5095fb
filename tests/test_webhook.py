"""The webhook as Meta uses it: challenge, signature, durability, idempotency."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot import simulate
from bot.app import create_app
from bot.keys import PROCESSOR
from storage.models import InboundUpdate, MessageStatus, OutboxMessage
from tests.conftest import VERIFY_TOKEN, Harness, make_settings, phone

# The peers' corpus beside the checkout when it is there (it may have grown), else the
# copy vendored here (pywa's test data, MIT: see its LICENSE).
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "meta-webhooks"
FIXTURES = _SHARED if _SHARED.is_dir() else Path(__file__).parent / "fixtures" / "meta-webhooks"


async def test_challenge_answers_meta_and_refuses_a_wrong_token(harness: Harness) -> None:
    ok = await harness.client.get(
        "/api/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
    )
    assert ok.status == 200
    assert await ok.text() == "42"
    wrong = await harness.client.get(
        "/api/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"},
    )
    assert wrong.status == 403


async def test_join_demo_gets_the_trip_back_through_the_graph_api(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    texts = await harness.say(buyer, "JOIN DEMO", name="Sari")
    assert len(texts) == 1
    assert "Jastip Tokyo Demo" in texts[0]
    assert "Tokyo, Jepang" in texts[0]
    assert "Tina" in texts[0]
    # it went out through the fake Graph API, addressed to the buyer's number
    assert harness.fake.sent_to(buyer)[0]["to"] == buyer
    assert harness.fake.rejected == []


async def test_unsigned_and_badly_signed_posts_are_refused(harness: Harness) -> None:
    body = simulate.text(phone(), "JOIN DEMO")
    unsigned = await harness.post(body, signed=False)
    assert unsigned.status == 401
    raw = simulate.encode(body)
    forged = await harness.client.post(
        "/api/webhooks/whatsapp",
        data=raw,
        headers={"X-Hub-Signature-256": simulate.sign(raw, "someone-elses-secret")},
    )
    assert forged.status == 403
    # the signature covers the raw bytes: the same JSON re-serialised is not the same body
    reformatted = json.dumps(body, indent=2).encode()
    tampered = await harness.client.post(
        "/api/webhooks/whatsapp",
        data=reformatted,
        headers={"X-Hub-Signature-256": simulate.sign(raw, "test-app-secret")},
    )
    assert tampered.status == 403
    async with harness.db.read() as session:
        assert (await session.execute(select(func.count(InboundUpdate.id)))).scalar_one() == 0


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"object": "whatsapp_business_account"}', b'{"entry": [{"id": 1}]}'],
)
async def test_malformed_bodies_get_400(harness: Harness, raw: bytes) -> None:
    resp = await harness.post(raw)
    assert resp.status == 400


async def test_a_redelivered_message_changes_nothing(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    body = simulate.text(buyer, "JOIN DEMO", wamid="wamid.REDELIVERED1")
    for _ in range(3):
        resp = await harness.post(body)
        assert resp.status == 200
        await harness.settle()
    assert len(harness.fake.sent_to(buyer)) == 1


async def test_concurrent_redeliveries_have_exactly_one_effect(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    body = simulate.text(buyer, "JOIN DEMO", wamid="wamid.CONCURRENT1")
    responses = await asyncio.gather(*(harness.post(body) for _ in range(10)))
    assert [r.status for r in responses] == [200] * 10
    await harness.settle()
    await harness.app[PROCESSOR].sweep(older_than_seconds=0)
    await harness.settle()
    assert len(harness.fake.sent_to(buyer)) == 1
    async with harness.db.read() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert len(rows) == 1


async def test_database_down_answers_503_so_meta_retries(tmp_path: Path) -> None:
    for url in (
        "postgresql+asyncpg://postgres@127.0.0.1:1/none",
        f"sqlite+aiosqlite:///{tmp_path}/missing-dir/x/db.sqlite",
    ):
        settings = make_settings(url, tmp_path)
        app = create_app(settings, run_background=False)
        async with TestClient(TestServer(app)) as client:
            raw = simulate.encode(simulate.text(phone(), "JOIN DEMO"))
            resp = await client.post(
                "/api/webhooks/whatsapp",
                data=raw,
                headers={"X-Hub-Signature-256": simulate.sign(raw, "test-app-secret")},
            )
            assert resp.status == 503
            health = await client.get("/health")
            assert health.status == 503
            assert (await health.json())["checks"]["database"] == "unreachable"


def _fixture_bodies() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []

    def walk(name: str, node: Any) -> None:
        if isinstance(node, dict) and "object" in node and "entry" in node:
            out.append((name, node))
        elif isinstance(node, dict):
            for key, child in node.items():
                walk(f"{name}/{key}", child)

    for path in sorted(FIXTURES.glob("*.json")):
        walk(path.stem, json.loads(path.read_text()))
    return out


FIXTURE_BODIES = _fixture_bodies()


def test_the_recorded_corpus_is_there() -> None:
    assert len(FIXTURE_BODIES) >= 60, "the shared Meta webhook corpus went missing"


async def test_every_recorded_meta_shape_is_acknowledged_and_handled(harness: Harness) -> None:
    await harness.seed_demo()
    for name, body in FIXTURE_BODIES:
        resp = await harness.post(body)
        assert resp.status == 200, name
    await harness.settle()
    async with harness.db.read() as session:
        units = (await session.execute(select(InboundUpdate))).scalars().all()
    assert units, "nothing was stored"
    problems = [(u.key, u.status, u.last_error) for u in units if u.status != "done"]
    assert problems == []
    # the bot answered the text and media messages, never with a rejected send
    assert harness.fake.rejected == []
    assert harness.fake.sent_to("972987654321"), "the corpus' text message got no answer"


async def test_statuses_only_move_forward(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    await harness.say(buyer, "JOIN DEMO")
    wamid = harness.fake.sent_to(buyer)[0]["wamid"]
    for state in ("read", "delivered", "sent"):
        resp = await harness.post(simulate.status(wamid, state, buyer, phone_number_id="x"))
        assert resp.status == 200
        await harness.settle()
    async with harness.db.read() as session:
        status = (
            await session.execute(
                select(MessageStatus).where(MessageStatus.wa_message_id == wamid)
            )
        ).scalar_one()
    assert status.status == "read"


async def test_a_failed_status_is_recorded_with_metas_code(harness: Harness) -> None:
    await harness.seed_demo()
    buyer = phone()
    await harness.say(buyer, "JOIN DEMO")
    wamid = harness.fake.sent_to(buyer)[0]["wamid"]
    await harness.post(simulate.status(wamid, "failed", buyer, error_code=131026))
    await harness.settle()
    async with harness.db.read() as session:
        row = (
            await session.execute(
                select(OutboxMessage).where(OutboxMessage.wa_message_id == wamid)
            )
        ).scalar_one()
    assert row.status == "failed"
    assert row.error_code == 131026


async def test_a_batched_body_is_split_and_each_message_answered(harness: Harness) -> None:
    await harness.seed_demo()
    a, b = phone(), phone()
    first = simulate.text(a, "JOIN DEMO")
    second = simulate.text(b, "JOIN DEMO")
    first["entry"][0]["changes"].append(second["entry"][0]["changes"][0])
    resp = await harness.post(first)
    assert resp.status == 200
    await harness.settle()
    assert len(harness.fake.sent_to(a)) == 1
    assert len(harness.fake.sent_to(b)) == 1


async def test_a_user_with_a_hidden_number_is_answered_by_user_id(harness: Harness) -> None:
    await harness.seed_demo()
    body = simulate.text(None, "JOIN DEMO", bsuid="ID.1234567890ABCDEF")
    resp = await harness.post(body)
    assert resp.status == 200
    await harness.settle()
    sent = [m for m in harness.fake.sent if m.get("to") == "ID.1234567890ABCDEF"]
    assert sent and "Jastip Tokyo Demo" in json.dumps(sent[0])

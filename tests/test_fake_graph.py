"""Tests for the fake WhatsApp Cloud API, driven by the real ``pywa_async`` client."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pywa_async import WhatsApp, errors, types

from tests.fakes.graph_api import FakeGraphAPI, message_text

TOKEN = "test-token"
PHONE_ID = "1234"
USER = "6281234567890"
OTHER_USER = "6289876543210"
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI.running(token=TOKEN) as running_fake:
        yield running_fake


@pytest.fixture
async def session() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def wa(fake: FakeGraphAPI, session: httpx.AsyncClient) -> WhatsApp:
    client = WhatsApp(phone_id=PHONE_ID, token=TOKEN, session=session, verify_token="x")
    fake.attach(session)
    return client


@pytest.fixture
async def raw(fake: FakeGraphAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client for requests pywa would not build (or would build differently)."""
    async with httpx.AsyncClient(
        base_url=fake.graph_url("25.0"), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client


def _text(body: str, to: str = USER) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def _interactive(interactive: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": USER,
        "type": "interactive",
        "interactive": interactive,
    }


def _rows(n: int, prefix: str = "row") -> list[types.SectionRow]:
    return [
        types.SectionRow(title=f"{prefix} {i}", callback_data=f"{prefix}-{i}") for i in range(n)
    ]


# --------------------------------------------------------------------------- client wiring


async def test_pywa_constructor_starts_nothing_and_base_url_is_overridable(
    fake: FakeGraphAPI, session: httpx.AsyncClient
) -> None:
    tasks_before = len(asyncio.all_tasks())
    threads_before = threading.active_count()
    client = WhatsApp(phone_id=PHONE_ID, token=TOKEN, session=session, verify_token="x")
    assert client._server is None  # no server given -> pywa registers/starts nothing
    assert len(asyncio.all_tasks()) == tasks_before
    assert threading.active_count() == threads_before
    assert str(session.base_url).startswith("https://graph.facebook.com/v")

    fake.attach(session)

    assert str(session.base_url).startswith(f"{fake.base_url}/v")
    sent = await client.send_message(to=USER, text="halo")
    assert sent.id == fake.sent[0]["wamid"]


async def test_any_version_segment_is_accepted(fake: FakeGraphAPI, raw: httpx.AsyncClient) -> None:
    for version in ("v17.0", "v25.0", "v26"):
        res = await raw.post(f"{fake.base_url}/{version}/{PHONE_ID}/messages", json=_text("x"))
        assert res.status_code == 200, res.text
    assert [m["wamid"].split("_")[0] for m in fake.sent] == [
        "wamid.FAKE1",
        "wamid.FAKE2",
        "wamid.FAKE3",
    ]


# ------------------------------------------------------------------------ accepted messages


async def test_text_is_accepted_and_recorded(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    first = await wa.send_message(to=USER, text="Halo! Mau titip apa?")
    second = await wa.send_message(to=OTHER_USER, text="x" * 4096)

    assert first.id != second.id
    assert fake.texts_to(USER) == ["Halo! Mau titip apa?"]
    [record] = fake.sent_to(USER)
    assert record["to"] == USER
    assert record["wamid"] == first.id
    assert record["phone_id"] == PHONE_ID
    assert record["type"] == "text"
    assert len(fake.sent) == 2
    assert fake.rejected == []


async def test_reply_buttons_are_accepted(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    await wa.send_message(
        to=USER,
        text="Konfirmasi pesanan?",
        header="Pesanan #12",
        footer="Jastipin",
        buttons=[
            types.Button(title="Ya", callback_data="confirm:12"),
            types.Button(title="Tidak", callback_data="cancel:12"),
            types.Button(title="x" * 20, callback_data="i" * 256),
        ],
    )

    [record] = fake.sent_to(USER)
    interactive = record["interactive"]
    assert interactive["type"] == "button"
    assert [b["reply"]["id"] for b in interactive["action"]["buttons"]][:2] == [
        "confirm:12",
        "cancel:12",
    ]
    assert fake.texts_to(USER) == ["Konfirmasi pesanan?"]


async def test_section_list_is_accepted(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    await wa.send_message(
        to=USER,
        text="Pilih kategori",
        buttons=types.SectionList(
            button_title="Kategori",
            sections=[
                types.Section(title="Makanan", rows=_rows(4)),
                types.Section(
                    title="Lainnya",
                    rows=[
                        types.SectionRow(
                            title="y" * 24, callback_data="other", description="d" * 72
                        ),
                        *_rows(5, prefix="more"),
                    ],
                ),
            ],
        ),
    )

    [record] = fake.sent_to(USER)
    assert record["interactive"]["type"] == "list"
    assert sum(len(s["rows"]) for s in record["interactive"]["action"]["sections"]) == 10


async def test_template_reaction_and_media_by_link_are_accepted(
    wa: WhatsApp, fake: FakeGraphAPI, raw: httpx.AsyncClient
) -> None:
    sent = await wa.send_message(to=USER, text="halo")
    await wa.send_reaction(to=USER, emoji="👍", message_id=sent.id)
    payloads = [
        {
            "messaging_product": "whatsapp",
            "to": USER,
            "type": "template",
            "template": {"name": "order_ready", "language": {"code": "id"}},
        },
        {
            "messaging_product": "whatsapp",
            "to": USER,
            "type": "document",
            "document": {
                "link": "https://example.com/invoice.pdf",
                "caption": "Invoice",
                "filename": "invoice.pdf",
            },
        },
    ]
    for payload in payloads:
        res = await raw.post(f"/{PHONE_ID}/messages", json=payload)
        assert res.status_code == 200, res.text

    assert [m["type"] for m in fake.sent_to(USER)] == ["text", "reaction", "template", "document"]
    assert fake.texts_to(USER) == ["halo", "order_ready", "Invoice"]
    assert message_text(fake.sent[1]) is None


# ------------------------------------------------------------------------ rejected messages


async def test_button_title_of_21_chars_is_rejected(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    with pytest.raises(errors.WhatsAppError) as excinfo:
        await wa.send_message(
            to=USER, text="Pilih", buttons=[types.Button(title="x" * 21, callback_data="a")]
        )

    err = excinfo.value
    assert isinstance(err, errors.InvalidParameter)
    assert err.code == 131009
    assert err.status_code == 400
    assert err.type == "OAuthException"
    assert err.details is not None and "Button title length invalid" in err.details
    assert err.fbtrace_id
    assert fake.sent == []
    [(payload, error)] = fake.rejected
    assert payload["type"] == "interactive"
    assert error["code"] == 131009


async def test_four_buttons_are_rejected(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    buttons = [types.Button(title=f"B{i}", callback_data=f"b{i}") for i in range(4)]
    with pytest.raises(errors.WhatsAppError) as excinfo:
        await wa.send_message(to=USER, text="Pilih", buttons=buttons)

    assert excinfo.value.code == 131009
    assert "buttons count" in (excinfo.value.details or "")
    assert fake.sent == []


async def test_eleven_list_rows_are_rejected(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    section_list = types.SectionList(
        button_title="Pilih",
        sections=[
            types.Section(title="A", rows=_rows(6)),
            types.Section(
                title="B",
                rows=[types.SectionRow(title=f"B{i}", callback_data=f"b{i}") for i in range(5)],
            ),
        ],
    )
    with pytest.raises(errors.WhatsAppError) as excinfo:
        await wa.send_message(to=USER, text="Pilih", buttons=section_list)

    assert excinfo.value.code == 131009
    assert "row count" in (excinfo.value.details or "")


async def test_row_title_of_25_chars_is_rejected(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    section_list = types.SectionList(
        button_title="Pilih",
        sections=[
            types.Section(title="A", rows=[types.SectionRow(title="r" * 25, callback_data="r")])
        ],
    )
    with pytest.raises(errors.WhatsAppError) as excinfo:
        await wa.send_message(to=USER, text="Pilih", buttons=section_list)

    assert excinfo.value.code == 131009
    assert "Row title length invalid" in (excinfo.value.details or "")


async def test_text_over_4096_chars_is_rejected_with_code_100(wa: WhatsApp) -> None:
    with pytest.raises(errors.WhatsAppError) as excinfo:
        await wa.send_message(to=USER, text="x" * 4097)

    assert excinfo.value.code == 100
    assert excinfo.value.status_code == 400


_BUTTON = {"type": "reply", "reply": {"id": "a", "title": "A"}}
_ROW = {"id": "r", "title": "R"}


@pytest.mark.parametrize(
    ("payload", "code", "needle"),
    [
        pytest.param(_text(""), 100, "text['body']", id="empty-text"),
        pytest.param(
            {"messaging_product": "whatsapp", "to": USER, "type": "poll", "poll": {}},
            100,
            "Unsupported message type",
            id="unknown-type",
        ),
        pytest.param(
            {"to": USER, "type": "text", "text": {"body": "x"}},
            100,
            "messaging_product",
            id="no-messaging-product",
        ),
        pytest.param(
            _interactive(
                {"type": "button", "body": {"text": "b"}, "action": {"buttons": [_BUTTON] * 2}}
            ),
            131009,
            "not unique",
            id="duplicate-button-ids",
        ),
        pytest.param(
            _interactive({"type": "button", "action": {"buttons": [_BUTTON]}}),
            100,
            "interactive['body']",
            id="button-without-body",
        ),
        pytest.param(
            _interactive(
                {"type": "button", "body": {"text": "b" * 1025}, "action": {"buttons": [_BUTTON]}}
            ),
            131009,
            "Body text length invalid",
            id="button-body-1025",
        ),
        pytest.param(
            _interactive(
                {
                    "type": "list",
                    "body": {"text": "b"},
                    "action": {"button": "x" * 21, "sections": [{"rows": [_ROW]}]},
                }
            ),
            131009,
            "Button text length invalid",
            id="list-button-label-21",
        ),
        pytest.param(
            _interactive(
                {
                    "type": "list",
                    "body": {"text": "b"},
                    "action": {
                        "button": "Pilih",
                        "sections": [{"rows": [_ROW]}, {"rows": [{"id": "s", "title": "S"}]}],
                    },
                }
            ),
            131009,
            "Section title is required",
            id="untitled-sections",
        ),
        pytest.param(
            _interactive(
                {
                    "type": "list",
                    "body": {"text": "b"},
                    "footer": {"text": "f" * 61},
                    "action": {"button": "Pilih", "sections": [{"rows": [_ROW]}]},
                }
            ),
            131009,
            "Footer text length invalid",
            id="footer-61",
        ),
        pytest.param(
            _interactive(
                {
                    "type": "list",
                    "body": {"text": "b"},
                    "action": {
                        "button": "Pilih",
                        "sections": [
                            {"rows": [{"id": "r", "title": "R", "description": "d" * 73}]}
                        ],
                    },
                }
            ),
            131009,
            "Row description length invalid",
            id="row-description-73",
        ),
        pytest.param(
            {
                "messaging_product": "whatsapp",
                "to": USER,
                "type": "image",
                "image": {"id": "1", "link": "https://example.com/a.jpg"},
            },
            131009,
            "exactly one of",
            id="image-link-and-id",
        ),
        pytest.param(
            {
                "messaging_product": "whatsapp",
                "to": USER,
                "type": "image",
                "image": {"id": "1", "caption": "c" * 1025},
            },
            131009,
            "Caption length invalid",
            id="caption-1025",
        ),
        pytest.param(
            {
                "messaging_product": "whatsapp",
                "to": USER,
                "type": "template",
                "template": {"name": "order_ready"},
            },
            100,
            "template['language']",
            id="template-without-language",
        ),
    ],
)
async def test_invalid_payloads_are_rejected(
    fake: FakeGraphAPI, raw: httpx.AsyncClient, payload: dict[str, Any], code: int, needle: str
) -> None:
    res = await raw.post(f"/{PHONE_ID}/messages", json=payload)

    assert res.status_code == 400
    error = res.json()["error"]
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{code})")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert needle in error["error_data"]["details"]
    assert error["fbtrace_id"]
    assert fake.sent == []
    assert fake.rejected == [(payload, error)]


async def test_missing_or_wrong_token_is_401(fake: FakeGraphAPI) -> None:
    async with httpx.AsyncClient(base_url=fake.graph_url("25.0")) as client:
        missing = await client.post(f"/{PHONE_ID}/messages", json=_text("x"))
        wrong = await client.post(
            f"/{PHONE_ID}/messages",
            json=_text("x"),
            headers={"Authorization": "Bearer nope"},
        )

    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == 104
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "OAuthException"
    assert fake.sent == []


async def test_wrong_token_raises_through_pywa(fake: FakeGraphAPI) -> None:
    async with httpx.AsyncClient() as session:
        client = WhatsApp(phone_id=PHONE_ID, token="expired", session=session)
        fake.attach(session)
        with pytest.raises(errors.ExpiredAccessToken) as excinfo:
            await client.send_message(to=USER, text="halo")
    assert excinfo.value.code == 190
    assert excinfo.value.status_code == 401


# ------------------------------------------------------------------------ scripted failures


async def test_fail_next_then_recover(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    fake.fail_next()

    with pytest.raises(errors.WhatsAppError) as excinfo:
        await wa.send_message(to=USER, text="satu")
    assert isinstance(excinfo.value, errors.UnknownError)
    assert excinfo.value.code == 131000
    assert excinfo.value.status_code == 500
    assert fake.sent == []
    assert fake.pending_failures == 0

    await wa.send_message(to=USER, text="satu")
    assert fake.texts_to(USER) == ["satu"]


@pytest.mark.parametrize(
    ("code", "http_status", "exc_type"),
    [
        (130429, 400, errors.RateLimitHit),
        (131026, 400, errors.MessageUndeliverable),
        (131047, 400, errors.ReEngagementMessage),
        (131050, 400, errors.UserStoppedMarketingMessages),
        (100, 400, errors.WhatsAppError),
    ],
)
async def test_fail_next_scripted_codes(
    wa: WhatsApp,
    fake: FakeGraphAPI,
    code: int,
    http_status: int,
    exc_type: type[errors.WhatsAppError],
) -> None:
    fake.fail_next(2, code=code, http_status=http_status, title="Scripted")

    for _ in range(2):
        with pytest.raises(exc_type) as excinfo:
            await wa.send_message(to=USER, text="x")
        assert excinfo.value.code == code
        assert excinfo.value.status_code == http_status
        assert "Scripted" in excinfo.value.message
    await wa.send_message(to=USER, text="x")
    assert len(fake.sent) == 1
    assert len(fake.rejected) == 2


async def test_past_the_numbers_cap_the_fake_answers_130429_as_meta_does(
    wa: WhatsApp, fake: FakeGraphAPI
) -> None:
    """A number's tier (here 3 a second): the sends arriving in one calendar second past
    it are refused with 130429 and not delivered; the next second has room again."""
    fake.cap = 3
    if time.time() % 1 > 0.3:  # start early in a second: the five land in it
        await asyncio.sleep(1.0 - time.time() % 1)
    outcomes: list[str] = []
    for i in range(5):
        try:
            await wa.send_message(to=USER, text=f"pesan {i}")
            outcomes.append("sent")
        except errors.RateLimitHit as exc:
            assert exc.code == 130429 and exc.status_code == 400
            outcomes.append("130429")
    per_second = dict(fake.arrivals)
    assert sum(per_second.values()) == 5
    refused = sum(max(0, n - 3) for n in per_second.values())
    assert outcomes.count("130429") == refused == fake.over_cap
    if len(per_second) == 1:  # all five in one second (the usual case)
        assert outcomes == ["sent"] * 3 + ["130429"] * 2
    assert fake.texts_to(USER) == [f"pesan {i}" for i in range(5) if outcomes[i] == "sent"]
    await asyncio.sleep(1.05 - time.time() % 1)  # the next second
    await wa.send_message(to=USER, text="lagi")
    assert fake.texts_to(USER)[-1] == "lagi"


async def test_fail_next_only_for_one_recipient(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    fake.fail_next(code=131026, http_status=400, to=OTHER_USER)

    await wa.send_message(to=USER, text="untuk user")
    with pytest.raises(errors.MessageUndeliverable):
        await wa.send_message(to=OTHER_USER, text="untuk other")
    await wa.send_message(to=OTHER_USER, text="lagi")

    assert fake.texts_to(USER) == ["untuk user"]
    assert fake.texts_to(OTHER_USER) == ["lagi"]


async def test_disconnect_next_records_but_does_not_answer(
    wa: WhatsApp, fake: FakeGraphAPI
) -> None:
    fake.disconnect_next(1)

    with pytest.raises(httpx.RemoteProtocolError):
        await wa.send_message(to=USER, text="mungkin terkirim")
    assert fake.texts_to(USER) == ["mungkin terkirim"]

    await wa.send_message(to=USER, text="berikutnya")
    assert fake.texts_to(USER) == ["mungkin terkirim", "berikutnya"]


async def test_latency_is_applied(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    fake.latency = 0.1
    started = time.monotonic()
    await asyncio.gather(*(wa.send_message(to=USER, text=str(i)) for i in range(5)))
    elapsed = time.monotonic() - started

    assert 0.1 <= elapsed < 0.5  # concurrent requests sleep concurrently
    assert sorted(fake.texts_to(USER)) == ["0", "1", "2", "3", "4"]


async def test_mark_as_read_is_recorded_separately(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    fake.fail_next()  # scripted failures never hit read receipts
    result = await wa.mark_message_as_read(message_id="wamid.INCOMING1")
    typing = await wa.indicate_typing(message_id="wamid.INCOMING2")

    assert result.success and typing.success
    assert [r["message_id"] for r in fake.read_receipts] == ["wamid.INCOMING1", "wamid.INCOMING2"]
    assert fake.read_receipts[1]["typing_indicator"] == {"type": "text"}
    assert fake.sent == []
    assert fake.pending_failures == 1


async def test_clear_resets_records(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    await wa.send_message(to=USER, text="a")
    await wa.mark_message_as_read(message_id="wamid.X")
    fake.fail_next()
    fake.clear()

    assert (fake.sent, fake.rejected, fake.read_receipts) == ([], [], [])
    sent = await wa.send_message(to=USER, text="b")
    assert sent.id.startswith("wamid.FAKE2_")  # ids stay unique across clear()


# ---------------------------------------------------------------------------------- media


async def test_media_upload_url_and_download_round_trip(
    wa: WhatsApp, fake: FakeGraphAPI, tmp_path: Path
) -> None:
    content = b"\x89PNG\r\n\x1a\n fake png bytes"
    media = await wa.upload_media(media=content, mime_type="image/png", filename="produk.png")

    stored = fake.media[media.id]
    assert (stored.data, stored.mime_type, stored.filename) == (content, "image/png", "produk.png")

    media_url = await wa.get_media_url(media.id)
    assert media_url.url.startswith(f"{fake.base_url}/media-download/{media.id}?token=")
    assert media_url.mime_type == "image/png"
    assert media_url.file_size == len(content)
    assert media_url.sha256 == stored.sha256

    assert await wa.get_media_bytes(media_url.url) == content
    path = await wa.download_media(url=media_url.url, path=tmp_path)
    assert path == tmp_path / "produk.png"
    assert path.read_bytes() == content

    await wa.send_image(to=USER, image=media.id, caption="Foto produk")
    [record] = fake.sent_to(USER)
    assert record["image"] == {"id": media.id, "caption": "Foto produk"}
    assert fake.texts_to(USER) == ["Foto produk"]


async def test_add_media_simulates_user_media_and_delete(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    media_id = fake.add_media(b"%PDF-1.7 receipt", "application/pdf")

    media_url = await wa.get_media_url(media_id)
    assert await wa.get_media_bytes(media_url.url) == b"%PDF-1.7 receipt"

    assert (await wa.delete_media(media_id)).success
    assert fake.deleted_media == [media_id]
    with pytest.raises(errors.WhatsAppError) as excinfo:
        await wa.get_media_url(media_id)
    assert excinfo.value.code == 100
    with pytest.raises(httpx.HTTPStatusError):
        await wa.get_media_bytes(media_url.url)


async def test_media_download_needs_token(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    media_id = fake.add_media(b"voice", "audio/ogg")
    media_url = await wa.get_media_url(media_id)

    async with httpx.AsyncClient() as anonymous:
        res = await anonymous.get(media_url.url)
    assert res.status_code == 401


async def test_unsupported_upload_type_is_rejected(wa: WhatsApp) -> None:
    with pytest.raises(errors.WhatsAppError) as excinfo:
        await wa.upload_media(media=b"GIF89a", mime_type="image/gif", filename="a.gif")
    assert excinfo.value.code == 100
    assert "image/gif" in (excinfo.value.details or "")


# ------------------------------------------------------------------------------- wait_for


async def test_wait_for_wakes_on_accepted_messages(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    async def send_later() -> None:
        for i in range(3):
            await asyncio.sleep(0.02)
            await wa.send_message(to=USER if i < 2 else OTHER_USER, text=f"m{i}")

    task = asyncio.create_task(send_later())
    await fake.wait_for(2, timeout=2, to=USER)
    assert fake.texts_to(USER) == ["m0", "m1"]
    await fake.wait_for(3, timeout=2)
    await task


async def test_wait_for_times_out_with_context(wa: WhatsApp, fake: FakeGraphAPI) -> None:
    await wa.send_message(to=USER, text="cuma satu")
    fake.fail_next(code=131026, http_status=400)
    with pytest.raises(errors.WhatsAppError):
        await wa.send_message(to=USER, text="gagal")

    with pytest.raises(TimeoutError) as excinfo:
        await fake.wait_for(2, timeout=0.1)
    message = str(excinfo.value)
    assert "expected at least 2" in message
    assert "got 1" in message
    assert "cuma satu" in message
    assert "131026" in message


# ----------------------------------------------------------------------------- standalone


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_standalone_entry_point() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.graph_api",
        "--port",
        str(port),
        "--latency",
        "0",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(100):
                try:
                    await client.get("/_fake/stats")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            res = await client.post(
                f"/v25.0/{PHONE_ID}/messages",
                json=_text("dari benchmark"),
                headers={"Authorization": "Bearer anything"},
            )
            assert res.status_code == 200, res.text
            stats = (await client.get("/_fake/stats")).json()
            sent = (await client.get("/_fake/sent", params={"to": USER})).json()
        assert stats["sent"] == 1
        assert sent[0]["text"]["body"] == "dari benchmark"
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            proc.kill()
            await asyncio.wait_for(proc.wait(), timeout=30)

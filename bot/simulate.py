"""Meta-shaped webhook bodies, for the terminal chat, the simulator, tests and benchmarks.

The shapes follow the recorded corpus in ``shared/fixtures/meta-webhooks``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "dev-phone-id"
DISPLAY_NUMBER = "6281100009999"


def new_wamid(number: str | None = None) -> str:
    """A message id shaped like Meta's: ``wamid.`` + base64 of a record that holds the
    sender's number and a random id — so the number is in every id, as in production."""
    record = b"\x18\x0d" + (number or "0").encode() + b"\x15\x02\x00\x12\x18\x14"
    return "wamid." + base64.b64encode(record + secrets.token_hex(10).upper().encode()).decode()


def _envelope(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
    }


def _contact(wa_id: str | None, name: str | None, bsuid: str | None) -> dict[str, Any]:
    contact: dict[str, Any] = {"profile": {"name": name or ""}}
    if wa_id:
        contact["wa_id"] = wa_id
    contact["user_id"] = bsuid or f"ID.{hashlib.sha256((wa_id or '').encode()).hexdigest()[:16]}"
    return contact


def message_update(
    wa_id: str | None,
    message: dict[str, Any],
    *,
    name: str | None = "Buyer",
    bsuid: str | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A ``messages`` webhook carrying one message from a user (``timestamp``: when the
    user sent it, as Meta reports it; now by default)."""
    contact = _contact(wa_id, name, bsuid)
    msg = {
        "from": wa_id or contact["user_id"],
        "id": message.pop("id", None) or new_wamid(wa_id),
        "timestamp": str(timestamp or int(time.time())),
        **message,
    }
    if not wa_id:
        msg["from_user_id"] = contact["user_id"]
    return _envelope(
        {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": DISPLAY_NUMBER,
                "phone_number_id": phone_number_id,
            },
            "contacts": [contact],
            "messages": [msg],
        }
    )


def text(wa_id: str | None, body: str, **kw: Any) -> dict[str, Any]:
    wamid = kw.pop("wamid", None)
    return message_update(wa_id, {"id": wamid, "type": "text", "text": {"body": body}}, **kw)


def tap(
    wa_id: str | None, payload_id: str, title: str, *, as_list: bool = False, **kw: Any
) -> dict[str, Any]:
    """A reply-button tap or a list-row selection."""
    wamid = kw.pop("wamid", None)
    if as_list:
        interactive = {"type": "list_reply", "list_reply": {"id": payload_id, "title": title}}
    else:
        interactive = {"type": "button_reply", "button_reply": {"id": payload_id, "title": title}}
    return message_update(
        wa_id,
        {
            "id": wamid,
            "type": "interactive",
            "interactive": interactive,
            "context": {"from": DISPLAY_NUMBER, "id": new_wamid()},
        },
        **kw,
    )


def media(
    wa_id: str | None,
    kind: str,
    media_id: str,
    mime_type: str,
    *,
    caption: str | None = None,
    filename: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """An image or document message (the bytes live behind ``media_id``)."""
    wamid = kw.pop("wamid", None)
    body: dict[str, Any] = {"id": media_id, "mime_type": mime_type, "sha256": "x"}
    if caption:
        body["caption"] = caption
    if filename:
        body["filename"] = filename
    return message_update(wa_id, {"id": wamid, "type": kind, kind: body}, **kw)


def status(
    wamid: str,
    state: str,
    recipient: str,
    *,
    tracker: str | None = None,
    error_code: int | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
    timestamp: int | None = None,
    billable: bool = False,
    category: str = "service",
) -> dict[str, Any]:
    """A status webhook for a message we sent."""
    st: dict[str, Any] = {
        "id": wamid,
        "status": state,
        "timestamp": str(timestamp or int(time.time())),
        "recipient_id": recipient,
        "recipient_user_id": f"ID.{hashlib.sha256(recipient.encode()).hexdigest()[:16]}",
    }
    if state in ("sent", "delivered", "read"):
        st["pricing"] = {
            "billable": billable,
            "pricing_model": "PMP",
            "category": category,
            "type": "free_customer_service" if not billable else "regular",
        }
    if tracker:
        st["biz_opaque_callback_data"] = tracker
    if error_code is not None:
        st["errors"] = [
            {
                "code": error_code,
                "title": "Failure",
                "message": "Failure",
                "error_data": {"details": "Failure"},
            }
        ]
    return _envelope(
        {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": DISPLAY_NUMBER,
                "phone_number_id": phone_number_id,
            },
            "contacts": [
                {"profile": {"name": ""}, "wa_id": recipient, "user_id": st["recipient_user_id"]}
            ],
            "statuses": [st],
        }
    )


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def sign(raw: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` header Meta would send for ``raw``."""
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()

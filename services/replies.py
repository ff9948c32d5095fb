"""Reply builders: the outbox payloads flows write, always within Meta's limits.

Meta rejects a list with more than 10 rows, a row title over 24 characters, more than
3 reply buttons or a button title over 20 characters, and bodies over 1024 characters
(4096 for plain text). Builders shorten what is too long with an ellipsis rather than
let a long product name break a reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pywa.types import CallbackData

TEXT_MAX = 4096
BODY_MAX = 1024
BUTTON_TITLE_MAX = 20
MAX_BUTTONS = 3
ROW_TITLE_MAX = 24
ROW_DESC_MAX = 72
MAX_ROWS = 10
LIST_BUTTON_MAX = 20
HEADER_MAX = 60
FOOTER_MAX = 60
CAPTION_MAX = 1024

Payload = dict[str, Any]


def clip(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters, ending with an ellipsis when cut."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def middle(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters by cutting out its middle, so the tail
    that tells two similar names apart ("… 60 ml" / "… 20 ml") stays readable."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    words = text.split(" ")
    tail = ""
    for word in reversed(words[1:]):  # the last words, up to about a third of the room
        candidate = f"{word} {tail}".strip()
        if len(candidate) > max(6, limit // 3 + 2):
            break
        tail = candidate
    if not tail:
        tail = text[-(limit // 3) :].lstrip()
    head = text[: limit - len(tail) - 1].rstrip()
    return f"{head}…{tail}"


def _id(data: CallbackData | str) -> str:
    return data if isinstance(data, str) else data.to_str()


def text(body: str) -> Payload:
    return {"type": "text", "text": clip(body, TEXT_MAX)}


def buttons(
    body: str,
    choices: Sequence[tuple[str, CallbackData | str]],
    *,
    header: str | None = None,
    footer: str | None = None,
    image_key: str | None = None,
) -> Payload:
    """Up to three reply buttons under a body; with ``image_key``, under a stored picture
    (WhatsApp's image header): one message where a picture and then the buttons took
    two, and one send at the number's cap instead of two (issue #28)."""
    if not 1 <= len(choices) <= MAX_BUTTONS:
        raise ValueError(f"1..{MAX_BUTTONS} buttons, got {len(choices)}")
    out: Payload = {
        "type": "buttons",
        "text": clip(body, BODY_MAX),
        "buttons": [{"id": _id(d), "title": clip(t, BUTTON_TITLE_MAX)} for t, d in choices],
    }
    if image_key:
        out["media_key"] = image_key
        out["mime_type"] = image_type(image_key)
    elif header:
        out["header"] = clip(header, HEADER_MAX)
    if footer:
        out["footer"] = clip(footer, FOOTER_MAX)
    return out


def list_rows(
    body: str,
    button: str,
    rows: Sequence[tuple[str, str | None, CallbackData | str]],
    *,
    section_title: str | None = None,
    header: str | None = None,
    footer: str | None = None,
) -> Payload:
    """An interactive list of at most 10 rows: (title, description, payload)."""
    if not 1 <= len(rows) <= MAX_ROWS:
        raise ValueError(f"1..{MAX_ROWS} rows, got {len(rows)}")
    out: Payload = {
        "type": "list",
        "text": clip(body, BODY_MAX),
        "button": clip(button, LIST_BUTTON_MAX),
        "sections": [
            {
                "title": clip(section_title or button, ROW_TITLE_MAX),
                "rows": [
                    {
                        "id": _id(d),
                        "title": middle(t, ROW_TITLE_MAX),
                        **({"description": clip(desc, ROW_DESC_MAX)} if desc else {}),
                    }
                    for t, desc, d in rows
                ],
            }
        ],
    }
    if header:
        out["header"] = clip(header, HEADER_MAX)
    if footer:
        out["footer"] = clip(footer, FOOTER_MAX)
    return out


def list_sections(
    body: str,
    button: str,
    sections: Sequence[tuple[str, Sequence[tuple[str, str | None, CallbackData | str]]]],
) -> Payload:
    """An interactive list in titled sections (at most 10 rows in all)."""
    count = sum(len(rows) for _title, rows in sections)
    if not 1 <= count <= MAX_ROWS:
        raise ValueError(f"1..{MAX_ROWS} rows, got {count}")
    return {
        "type": "list",
        "text": clip(body, BODY_MAX),
        "button": clip(button, LIST_BUTTON_MAX),
        "sections": [
            {
                "title": clip(title, ROW_TITLE_MAX),
                "rows": [
                    {
                        "id": _id(d),
                        "title": middle(t, ROW_TITLE_MAX),
                        **({"description": clip(desc, ROW_DESC_MAX)} if desc else {}),
                    }
                    for t, desc, d in rows
                ],
            }
            for title, rows in sections
            if rows
        ],
    }


IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


def image_type(media_key: str) -> str:
    """The MIME type a stored picture is declared as (a PNG QR code as image/png)."""
    extension = media_key.rsplit(".", 1)[-1].lower() if "." in media_key else ""
    return IMAGE_TYPES.get(extension, "image/jpeg")


def image(media_key: str, caption: str | None = None) -> Payload:
    """A stored picture, sent declared as what it is (a PNG QR code as image/png)."""
    out: Payload = {"type": "image", "media_key": media_key, "mime_type": image_type(media_key)}
    if caption:
        out["caption"] = clip(caption, CAPTION_MAX)
    return out


def document(media_key: str, filename: str, caption: str | None = None) -> Payload:
    out: Payload = {"type": "document", "media_key": media_key, "filename": filename}
    if caption:
        out["caption"] = clip(caption, CAPTION_MAX)
    return out


def as_plain_text(p: Payload) -> str:
    """A human rendering (terminal chat, simulator, logs-free previews)."""
    kind = p.get("type")
    lines = [p.get("header", ""), p.get("text") or p.get("caption") or ""]
    if kind == "buttons":
        if p.get("media_key"):  # a picture as the buttons' header
            lines.insert(0, f"<image: {p['media_key']}>")
        lines += [f"  [{i}] {b['title']}" for i, b in enumerate(p["buttons"], 1)]
    elif kind == "list":
        n = 0
        lines.append(f"  ({p['button']})")
        for section in p["sections"]:
            for row in section["rows"]:
                n += 1
                desc = f" — {row['description']}" if row.get("description") else ""
                lines.append(f"  [{n}] {row['title']}{desc}")
    elif kind in ("image", "document"):
        lines.insert(0, f"<{kind}: {p.get('filename') or p.get('media_key')}>")
    elif kind == "template":
        params = " | ".join(p.get("params") or [])
        lines.append(f"<template {p['name']} ({p['language']}, {p['category']}): {params}>")
    if p.get("footer"):
        lines.append(p["footer"])
    return "\n".join(line for line in lines if line)


def choices(p: Payload) -> list[tuple[str, str]]:
    """(title, id) of every tappable choice, in display order."""
    if p.get("type") == "buttons":
        return [(b["title"], b["id"]) for b in p["buttons"]]
    if p.get("type") == "list":
        return [(r["title"], r["id"]) for s in p["sections"] for r in s["rows"]]
    return []

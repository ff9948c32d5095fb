"""The simulator's HTML: WhatsApp-like bubbles, rendered on the server.

Every bubble is plain HTML that works without JavaScript: a reply button or a list row
is a small form that posts its payload id; a list opens with ``<details>``. The same
fragments are pushed to the page over server-sent events, so the page looks the same
whether it was reloaded or updated live. Everything a person or the bot typed is
escaped before WhatsApp's ``*bold*`` / ``_italic_`` / ``~strike~`` marks are applied.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from typing import Any
from urllib.parse import urlencode

from locales import LOCALES, Translator, _
from services.links import JAKARTA

Payload = dict[str, Any]

# texts used inside f-strings (which the catalogue extractor does not read)
PHOTO = _("Foto")
DOCUMENT = _("Dokumen")
TEMPLATE = _("Template")
WHO = _("Pilih siapa Anda")
NUMBER = _("Nomor WhatsApp")
PROFILE_NAME = _("Nama profil")
OPEN_CHAT = _("Buka chat")
ATTACH = _("Lampirkan foto atau PDF")
TYPE_HERE = _("Ketik pesan (atau keterangan foto)")
MESSAGE = _("Tulis pesan")
SEND = _("Kirim")
CHATS = _("Daftar chat")
EMPTY = _("Belum ada pesan. Coba ketik JOIN DEMO.")
NOTE = _(
    "Mode dev: pesan masuk lewat webhook asli (bertanda tangan seperti Meta), balasan "
    "diambil dari outbox. Tidak ada yang dikirim ke WhatsApp."
)
# the paperclip, drawn (an emoji font is not everywhere, e.g. a headless browser)
CLIP = (
    '<svg aria-hidden="true" width="24" height="24" viewBox="0 0 24 24" fill="none" '
    'stroke="#54656f" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
    '<path d="M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2'
    'a2 2 0 0 1-2.8-2.8l8.5-8.5"/></svg>'
)
_MARKS = (
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), "s"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Contact:
    """Who the page speaks as: a phone number and the WhatsApp profile name it sends."""

    phone: str
    name: str
    lang: str

    def query(self, **extra: str) -> str:
        return urlencode({"phone": self.phone, "name": self.name, "lang": self.lang, **extra})


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    """One bubble: ``me`` (what the simulated person sent) or ``bot`` (an outbox row)."""

    id: str
    sender: str
    payload: Payload
    order: float
    out_id: int | None = None
    at: dt.datetime | None = None  # sent (UTC)
    status: str = "sent"  # the latest status reported: sent, delivered, read, failed

    def as_json(self, contact: Contact, tr: Translator) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.sender,
            "type": self.payload.get("type"),
            "payload": self.payload,
            "status": self.status,
            "html": bubble(self, contact, tr),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Person:
    """A row of the chat list."""

    name: str
    phone: str
    role: str
    unread: int
    last: str  # the last message's first line (or the role, before any)
    at: dt.datetime | None


TICKS = {"sent": "✓", "delivered": "✓✓", "read": "✓✓", "played": "✓✓", "failed": "⚠"}


def clock(at: dt.datetime | None) -> str:
    """``14:05`` in Jakarta time, as the phone would show it."""
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(JAKARTA).strftime("%H:%M")


# a web address as WhatsApp finds one; the punctuation that ends a sentence is not part
_URL = re.compile(r"(https?://[^\s<>\"']+?)(?=[.,;:!?)\]]*(?:\s|$))")


def _marked(text: str) -> str:
    out = html.escape(text)
    for pattern, tag in _MARKS:
        out = pattern.sub(rf"<{tag}>\1</{tag}>", out)
    return out


def wa_format(text: str) -> str:
    """Escaped text with WhatsApp's emphasis marks, line breaks and tappable links (which
    open in a new tab) as HTML."""
    parts = _URL.split(text)
    out = []
    for n, part in enumerate(parts):
        if n % 2:
            url = html.escape(part)
            out.append(f'<a href="{url}" target="_blank" rel="noopener">{url}</a>')
        else:
            out.append(_marked(part))
    return "".join(out).replace("\n", "<br>")


def _tap_form(contact: Contact, payload_id: str, title: str, kind: str, label: str) -> str:
    esc = html.escape
    return (
        '<form class="tap js-send" method="post" action="/dev/chat/send">'
        f'<input type="hidden" name="phone" value="{esc(contact.phone)}">'
        f'<input type="hidden" name="name" value="{esc(contact.name)}">'
        f'<input type="hidden" name="lang" value="{esc(contact.lang)}">'
        f'<input type="hidden" name="tap_id" value="{esc(payload_id)}">'
        f'<input type="hidden" name="tap_title" value="{esc(title)}">'
        f'<input type="hidden" name="tap_kind" value="{kind}">'
        f'<button type="submit">{label}</button></form>'
    )


def _bot_body(item: Item, contact: Contact, tr: Translator) -> str:
    p, esc = item.payload, html.escape
    kind = p.get("type")
    parts: list[str] = []
    if p.get("header"):
        parts.append(f'<div class="header">{wa_format(p["header"])}</div>')
    media_url = f"/dev/chat/media/out/{item.out_id}?{contact.query()}"
    if kind == "image" or (kind == "buttons" and p.get("media_key")):
        parts.append(
            f'<a href="{esc(media_url)}" target="_blank" rel="noopener">'
            f'<img src="{esc(media_url)}" alt="{esc(tr(PHOTO))}"></a>'
        )
    elif kind == "document":
        parts.append(
            f'<a class="doc" href="{esc(media_url)}" target="_blank" rel="noopener">'
            f"📄 {esc(p.get('filename') or tr(DOCUMENT))}</a>"
        )
    elif kind == "template":
        parts.append(
            f'<div class="template">{esc(tr(TEMPLATE))}: <code>{esc(p.get("name", ""))}'
            f"</code> ({esc(p.get('language', ''))})</div>"
        )
        params = p.get("params") or []
        if params:
            parts.append(
                "<ol class='params'>"
                + "".join(f"<li>{wa_format(str(x))}</li>" for x in params)
                + "</ol>"
            )
    body = p.get("text") or p.get("caption")
    if body:
        parts.append(f'<div class="text">{wa_format(body)}</div>')
    if p.get("footer"):
        parts.append(f'<div class="footer">{wa_format(p["footer"])}</div>')
    out = "".join(parts)
    if kind == "buttons":
        out += (
            '<div class="buttons">'
            + "".join(
                _tap_form(contact, b["id"], b["title"], "button", esc(b["title"]))
                for b in p.get("buttons", [])
            )
            + "</div>"
        )
    elif kind == "list":
        rows = []
        for section in p.get("sections", []):
            rows.append(f'<div class="section">{esc(section.get("title", ""))}</div>')
            for row in section.get("rows", []):
                desc = row.get("description")
                label = esc(row["title"]) + (
                    f'<span class="desc">{esc(desc)}</span>' if desc else ""
                )
                rows.append(_tap_form(contact, row["id"], row["title"], "list", label))
        out += (
            f'<details class="list"><summary>☰ {esc(p.get("button", ""))}</summary>'
            + "".join(rows)
            + "</details>"
        )
    return out


def _my_body(item: Item, contact: Contact, tr: Translator) -> str:
    p, esc = item.payload, html.escape
    kind = p.get("type")
    parts: list[str] = []
    url = f"/dev/chat/media/in/{p.get('media_id', '')}?{contact.query()}"
    if kind == "image" or (kind == "buttons" and p.get("media_key")):
        parts.append(f'<img src="{esc(url)}" alt="{esc(tr(PHOTO))}">')
    elif kind == "document":
        parts.append(
            f'<a class="doc" href="{esc(url)}" target="_blank" rel="noopener">'
            f"📄 {esc(p.get('filename') or tr(DOCUMENT))}</a>"
        )
    if kind == "tap":
        parts.append(f'<div class="text tapped">↩ {esc(p.get("text", ""))}</div>')
    elif p.get("text"):
        parts.append(f'<div class="text">{wa_format(p["text"])}</div>')
    return "".join(parts)


def bubble(item: Item, contact: Contact, tr: Translator) -> str:
    body = _bot_body(item, contact, tr) if item.sender == "bot" else _my_body(item, contact, tr)
    status = html.escape(item.status)
    meta = (
        f'<span class="stamp"><time>{clock(item.at)}</time>'
        f'<span class="tick {status}" title="{status}">{TICKS.get(item.status, "")}</span></span>'
    )
    return (
        f'<div class="msg {item.sender}" id="{html.escape(item.id)}" '
        f'data-kind="{html.escape(str(item.payload.get("type", "")))}">{body}{meta}</div>'
    )


def people_list(people: list[Person], contact: Contact | None, lang: str) -> str:
    """The chat list: name, time and first line of the last message, unread badge."""
    esc = html.escape
    rows = []
    for x in people:
        on = "on" if contact and contact.phone == x.phone else ""
        badge = f'<em class="unread">{x.unread}</em>' if x.unread else ""
        query = esc(urlencode({"phone": x.phone, "name": x.name, "lang": lang}))
        rows.append(
            f'<li><a class="{on}" href="/dev/chat?{query}" data-phone="{esc(x.phone)}">'
            f'<i class="avatar">{esc(x.name[:1])}</i><b>{esc(x.name)}</b>'
            f"<time>{clock(x.at)}</time><span>{esc(x.last)}</span>{badge}</a></li>"
        )
    return "".join(rows)


def _lang_switch(contact: Contact | None, lang: str) -> str:
    links = []
    for code in LOCALES:
        query = contact.query(lang=code) if contact else urlencode({"lang": code})
        cls = ' class="on"' if code == lang else ""
        links.append(f'<a{cls} href="/dev/chat?{html.escape(query)}">{code.upper()}</a>')
    return '<nav class="lang">' + " · ".join(links) + "</nav>"


def _picker(tr: Translator, lang: str, people: list[Person], contact: Contact | None) -> str:
    esc = html.escape
    links = people_list(people, contact, lang)
    return f"""<aside class="picker">
<h2>{esc(tr(WHO))}</h2>
<ul class="people">{links}</ul>
<form method="get" action="/dev/chat" class="other">
<input type="hidden" name="lang" value="{esc(lang)}">
<label>{esc(tr(NUMBER))}
<input name="phone" inputmode="tel" required placeholder="0812…"
 value="{esc(contact.phone if contact else "")}"></label>
<label>{esc(tr(PROFILE_NAME))}
<input name="name" value="{esc(contact.name if contact else "")}"></label>
<button type="submit">{esc(tr(OPEN_CHAT))}</button>
</form>
<p class="note">{esc(tr(NOTE))}</p>
</aside>"""


def _compose(tr: Translator, contact: Contact) -> str:
    esc = html.escape
    return f"""<form id="compose" class="compose js-send" method="post"
 action="/dev/chat/send" enctype="multipart/form-data">
<input type="hidden" name="phone" value="{esc(contact.phone)}">
<input type="hidden" name="name" value="{esc(contact.name)}">
<input type="hidden" name="lang" value="{esc(contact.lang)}">
<label class="attach" title="{esc(tr(ATTACH))}">{CLIP}
<input type="file" name="file" accept="image/*,application/pdf"
 aria-label="{esc(tr(ATTACH))}"></label>
<input name="text" autocomplete="off" autofocus
 placeholder="{esc(tr(TYPE_HERE))}"
 aria-label="{esc(tr(MESSAGE))}">
<button type="submit" aria-label="{esc(tr(SEND))}">➤</button>
</form>"""


def page(
    tr: Translator,
    lang: str,
    people: list[Person],
    contact: Contact | None,
    items: list[Item],
    *,
    error: str | None = None,
) -> str:
    esc = html.escape
    title = tr(_("Simulator WhatsApp Jastipin"))
    if contact is None:
        pick = tr(_("Pilih nomor untuk mulai chat dengan bot."))
        chat = f'<section class="chat empty"><p>{esc(pick)}</p></section>'
    else:
        last_out = max((i.out_id for i in items if i.out_id is not None), default=0)
        bubbles = "".join(bubble(i, contact, tr) for i in items)
        you = tr(_("Anda: {name} ({phone})"), name=contact.name or "-", phone=contact.phone)
        hint = "" if items else f'<p class="hint">{esc(tr(EMPTY))}</p>'
        chat = f"""<section class="chat" id="chat" data-phone="{esc(contact.phone)}"
 data-query="{esc(contact.query())}" data-after="{last_out}">
<header class="who"><a class="back" href="/dev/chat?lang={esc(lang)}"
 aria-label="{esc(tr(CHATS))}">←</a>
<b>Jastipin</b><span>{esc(you)}</span></header>
<div class="messages" id="messages">{hint}{bubbles}</div>
<div id="end"></div>
{_compose(tr, contact)}
</section>"""
    err = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    screen = "in-chat" if contact else "in-list"  # a phone shows one of the two
    return f"""<!doctype html>
<html lang="{esc(lang)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="stylesheet" href="/dev/chat/static/devchat.css">
<script src="/dev/chat/static/devchat.js" defer></script>
</head><body>
<header class="top"><h1>{esc(title)}</h1>{_lang_switch(contact, lang)}</header>
{err}
<main class="{screen}">{_picker(tr, lang, people, contact)}{chat}</main>
</body></html>"""

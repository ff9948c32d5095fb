"""Catalogues complete in both languages; Rupiah the Indonesian way; replies within limits."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest

from locales import Translator, format_date, format_rupiah
from services import replies
from services.payloads import JoinTap, MenuTap, parse

ROOT = Path(__file__).resolve().parents[1]


def _i18n():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("i18n", ROOT / "scripts" / "i18n.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_text_in_the_code_is_translated_in_both_catalogues() -> None:
    i18n = _i18n()
    assert len(i18n.extracted()) >= 20, "extraction found suspiciously few texts"
    assert i18n.problems() == []


def test_english_and_indonesian_differ_where_they_should() -> None:
    en, id_ = Translator("en"), Translator("id")
    assert en("Pesanan saya") == "My orders"
    assert id_("Pesanan saya") == "Pesanan saya"
    assert en("Salam kenal, {name}!", name="Tina") == "Nice to meet you, Tina!"
    assert Translator("fr").locale == "id"  # unknown locales fall back to the default


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0, "Rp 0"), (85_000, "Rp 85.000"), (1_250_000, "Rp 1.250.000"), (-5_000, "-Rp 5.000")],
)
def test_rupiah_is_formatted_the_indonesian_way(amount: int, text: str) -> None:
    assert format_rupiah(amount) == text


def test_dates_in_both_languages() -> None:
    day = dt.date(2026, 12, 20)
    assert format_date(day, "id") == "20 Des 2026"
    assert format_date(day, "en") == "20 Dec 2026"


def test_builders_keep_replies_inside_metas_limits() -> None:
    long = "Kit Kat Matcha Edisi Terbatas Musim Dingin Tokyo"
    b = replies.buttons("x" * 2000, [(long, MenuTap("catalog"))])
    assert len(b["text"]) == 1024 and b["text"].endswith("…")
    assert len(b["buttons"][0]["title"]) == 20
    rows = [(long, "d" * 100, f"row:{i}") for i in range(10)]
    lst = replies.list_rows("body", "Lihat produk yang tersedia", rows)
    assert all(
        len(r["title"]) <= 24 and len(r["description"]) <= 72 for r in lst["sections"][0]["rows"]
    )
    assert len(lst["button"]) <= 20
    with pytest.raises(ValueError):
        replies.list_rows("body", "x", [*rows, ("one more", None, "row:10")])
    with pytest.raises(ValueError):
        replies.buttons("body", [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")])


def test_typed_payloads_round_trip_and_refuse_garbage() -> None:
    tap = JoinTap("consent_yes", "DEMO")
    assert tap.to_str() == "join:consent_yes:DEMO"
    assert parse(tap.to_str()) == tap
    assert parse("join:only-one-field") is None
    assert parse("nobody:knows") is None


def test_a_template_reads_plainly_in_the_terminal_chat() -> None:
    from services.sends import template_payload
    from storage.models import MessageTemplate

    template = MessageTemplate(name="jastipin_broadcast", language="id", category="marketing")
    payload = template_payload(template, ["Jastip Tokyo", "Baris satu\n\nbaris  dua\tok"])
    # Meta refuses new lines, tabs and long runs of spaces in a parameter
    assert payload["params"] == ["Jastip Tokyo", "Baris satu · baris dua ok"]
    assert replies.as_plain_text(payload) == (
        "<template jastipin_broadcast (id, marketing): Jastip Tokyo | Baris satu · baris dua ok>"
    )


def test_a_picture_as_the_buttons_header_is_one_message_shown_with_its_picture() -> None:
    """A product's photo heads its buttons: one payload, declared as what the file is,
    and the terminal chat shows the picture before the text and the choices."""
    payload = replies.buttons(
        "*Kit Kat Matcha*\nRp 85.000", [("Pesan", "s:order:2")], image_key="products/2.png"
    )
    assert payload["type"] == "buttons" and payload["media_key"] == "products/2.png"
    assert payload["mime_type"] == "image/png" and "header" not in payload
    assert replies.as_plain_text(payload).splitlines() == [
        "<image: products/2.png>",
        "*Kit Kat Matcha*",
        "Rp 85.000",
        "  [1] Pesan",
    ]

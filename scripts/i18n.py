"""Keep the Babel catalogues in step with the code.

    python scripts/i18n.py check   # exit 1 if a text is missing or untranslated
    python scripts/i18n.py sync    # add new texts to both catalogues, drop unused ones

A text whose Indonesian word means two things carries a context (``msgctxt``):
``pgettext("order", "Pesanan")`` in Python, ``{{ pgettext("order", "…") }}`` in the
templates; the catalogues keep one entry per (context, msgid).

msgids are the Indonesian copy (Indonesian is the default locale and the copy is
written in it first); ``id`` repeats it, ``en`` translates it. ``sync`` leaves new
English entries empty so ``check`` (and the test suite) fails until they are written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from locales import LOCALES, po_path  # noqa: E402

KEYWORDS = {"_": None, "pgettext": ((1, "c"), 2)}
Key = tuple[str, str | None]  # (msgid, context)


def extracted() -> dict[Key, list[tuple[str, int]]]:
    found: dict[Key, list[tuple[str, int]]] = {}
    # Python everywhere, and the admin panel's Jinja2 templates (``{{ _("…") }}``)
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2.ext:babel_extract")]
    for folder in ("bot", "flows", "services", "admin_web", "storage"):
        for filename, lineno, message, _comments, context in extract_from_dir(
            ROOT / folder,
            method_map=method_map,
            keywords=KEYWORDS,
            options_map={"**/templates/**.html": {"trimmed": "true"}},
        ):
            if isinstance(message, str) and message:
                where = (f"{folder}/{filename}", lineno)
                found.setdefault((message, context or None), []).append(where)
    return found


def load(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.exists():
        return Catalog(locale=locale, domain="messages", project="jastipin")
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def problems() -> list[str]:
    messages = extracted()
    out: list[str] = []
    for locale in LOCALES:
        catalog = load(locale)
        for msgid, context in messages:
            entry = catalog.get(msgid, context=context)
            shown = f"{context}|{msgid!r}" if context else repr(msgid)
            if entry is None:
                out.append(f"[{locale}] missing: {shown}")
            elif not entry.string:
                out.append(f"[{locale}] untranslated: {shown}")
    return out


def sync() -> None:
    messages = extracted()
    for locale in LOCALES:
        old = load(locale)
        new = Catalog(locale=locale, domain="messages", project="jastipin", fuzzy=False)
        for (msgid, context), locations in sorted(
            messages.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
        ):
            entry = old.get(msgid, context=context)
            string = entry.string if entry is not None else ""
            if locale == "id" and not string:
                string = msgid
            new.add(msgid, string, locations=locations, context=context)
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, new, width=99, sort_output=True)


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "check"
    if cmd == "sync":
        sync()
    issues = problems()
    for line in issues:
        print(line)
    return 1 if issues and cmd == "check" else 0


if __name__ == "__main__":
    raise SystemExit(main())

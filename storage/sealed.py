"""Columns sealed with the PII key: what they hold is never on disk in plain text.

A sealed column is an ordinary mapped attribute for the code (a dict, a str); the
type encrypts on the way in and decrypts on the way out with the process's active
:class:`~storage.crypto.PiiCipher`. Used where personal data travels in free-form
values: webhook bodies in the inbox (numbers, names, every typed text), outbox payloads
(replies echo addresses and names), conversation data (the address typed at checkout),
profile and display names.

The cipher is set once per process by whoever builds it from the settings
(:func:`activate`); a sealed column used before that raises instead of writing plain
text. Values written before a column was sealed (plain JSON or text) are still read,
and rewritten sealed by ``jastipin db upgrade`` (:func:`storage.repo.privacy.reseal`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import LargeBinary, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from storage.crypto import PiiCipher

_VERSION = b"\x01"
_active: PiiCipher | None = None


def activate(cipher: PiiCipher) -> PiiCipher:
    """Make ``cipher`` the one sealed columns use in this process; returns it."""
    global _active
    _active = cipher
    return cipher


def active() -> PiiCipher:
    if _active is None:
        raise RuntimeError(
            "no PII cipher is active: build it with storage.sealed.activate(PiiCipher(key)) "
            "before touching sealed columns"
        )
    return _active


def is_sealed(raw: bytes | str | None) -> bool:
    return isinstance(raw, bytes | bytearray | memoryview) and bytes(raw[:1]) == _VERSION


def _plain(raw: bytes | str) -> str:
    """A value stored before its column was sealed (SQLite keeps TEXT as TEXT)."""
    return raw if isinstance(raw, str) else bytes(raw).decode()


class SealedJSON(TypeDecorator[Any]):
    """A JSON value stored encrypted (``bytea`` / ``BLOB``)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return active().encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if is_sealed(value):
            return json.loads(active().decrypt(bytes(value)))
        return json.loads(_plain(value))


class SealedText(TypeDecorator[str]):
    """A short text (a name) stored encrypted."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return active().encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if is_sealed(value):
            return active().decrypt(bytes(value))
        return _plain(value)


class HashedId(TypeDecorator[str]):
    """One of Meta's message ids, stored as a keyed digest (:meth:`PiiCipher.digest_id`):
    looked up by equality like the id itself (the bound value is digested the same way),
    read back as the digest."""

    impl = String(200)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else active().digest_id(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return value


def open_cipher(key: bytes) -> PiiCipher:
    """The process's cipher for ``key`` (the settings' PII key), active for sealed columns."""
    if _active is not None and _active.key_id == PiiCipher.id_of(key):
        return _active
    return activate(PiiCipher(key))

"""PII at rest: authenticated encryption plus a keyed hash for look-ups.

Two sub-keys are derived from ``PII_ENCRYPTION_KEY`` with HKDF, one for AES-GCM and
one for HMAC-SHA256, so the look-up hash reveals nothing about the ciphertext key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
# a file sealed with the key: magic, nonce, AES-GCM body (the object key as associated
# data, so a sealed file moved under another name does not open)
FILE_MAGIC = b"JSEAL\x01"


class WrongKey(ValueError):
    """A value sealed with another key than the one(s) this cipher holds."""


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


class PiiCipher:
    """Encrypts, decrypts and hashes personal data with keys derived from one secret."""

    def __init__(self, key: bytes, *, previous: bytes | None = None) -> None:
        """``previous``: the key being rotated away from (``jastipin keys rotate``); a
        value it sealed still opens, everything new is sealed with ``key``."""
        if len(key) != 32:
            raise ValueError("PII key must be 32 bytes")
        self.key_id = self.id_of(key)
        self._aead = AESGCM(_derive(key, b"jastipin/pii/aead"))
        self._file_aead = AESGCM(_derive(key, b"jastipin/pii/file"))
        self._mac_key = _derive(key, b"jastipin/pii/lookup")
        self._id_key = _derive(key, b"jastipin/pii/message-id")
        self._label_key = _derive(key, b"jastipin/pii/label")
        self.previous = PiiCipher(previous) if previous is not None else None

    @staticmethod
    def id_of(key: bytes) -> str:
        """A name for the key that reveals nothing about it (to tell keys apart)."""
        return _derive(key, b"jastipin/pii/key-id").hex()[:16]

    def encrypt(self, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), None)

    def decrypt(self, blob: bytes) -> str:
        if blob[:1] != _VERSION:
            raise ValueError("unknown PII ciphertext version")
        nonce, body = blob[1:13], blob[13:]
        try:
            return self._aead.decrypt(nonce, body, None).decode()
        except InvalidTag:
            if self.previous is not None:
                return self.previous.decrypt(blob)
            raise WrongKey("sealed with another PII key") from None

    def opens(self, blob: bytes) -> bool:
        """True when ``blob`` was sealed with this cipher's own key (not ``previous``)."""
        try:
            self._aead.decrypt(blob[1:13], blob[13:], None)
        except InvalidTag:
            return False
        return blob[:1] == _VERSION

    def seal_file(self, data: bytes, name: str) -> bytes:
        """The bytes of a file as stored: sealed, bound to its object key ``name``."""
        nonce = os.urandom(12)
        return FILE_MAGIC + nonce + self._file_aead.encrypt(nonce, data, name.encode())

    def open_file(self, blob: bytes, name: str) -> bytes:
        """A stored file's plain bytes (a file stored before sealing is returned as is)."""
        if not is_sealed_file(blob):
            return blob
        start = len(FILE_MAGIC)
        nonce, body = blob[start : start + 12], blob[start + 12 :]
        try:
            return self._file_aead.decrypt(nonce, body, name.encode())
        except InvalidTag:
            if self.previous is not None:
                return self.previous.open_file(blob, name)
            raise WrongKey(f"{name} is sealed with another PII key") from None

    def opens_file(self, blob: bytes, name: str) -> bool:
        """True when the stored file ``blob`` is sealed with this cipher's own key."""
        if not is_sealed_file(blob):
            return False
        start = len(FILE_MAGIC)
        try:
            self._file_aead.decrypt(blob[start : start + 12], blob[start + 12 :], name.encode())
        except InvalidTag:
            return False
        return True

    def encrypt_json(self, data: dict[str, Any]) -> bytes:
        return self.encrypt(json.dumps(data, ensure_ascii=False, sort_keys=True))

    def decrypt_json(self, blob: bytes) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.decrypt(blob))
        return result

    def lookup_hash(self, value: str) -> str:
        """A stable keyed hash of a normalised phone number, for unique look-up."""
        return hmac.new(self._mac_key, normalise_phone(value).encode(), hashlib.sha256).hexdigest()

    def digest_id(self, value: str) -> str:
        """A keyed digest of one of Meta's message ids (a ``wamid`` is the recipient's
        number and a counter in base64): equal ids give equal digests, nothing gives the
        id back. A digest passes through unchanged, so hashing twice is harmless."""
        if value.startswith(DIGEST_PREFIX):
            return value
        mac = hmac.new(self._id_key, value.encode(), hashlib.sha256).hexdigest()[:40]
        return DIGEST_PREFIX + mac

    def digest_label(self, value: str) -> str:
        """A short keyed digest of a button's or a row's title (which may carry a
        person's name): equal titles give equal digests, nothing gives the title back.
        64 bits: two titles of one message never collide in practice."""
        return hmac.new(self._label_key, value.encode(), hashlib.sha256).hexdigest()[:16]


DIGEST_PREFIX = "h1:"


def is_sealed_file(blob: bytes) -> bool:
    return blob[: len(FILE_MAGIC)] == FILE_MAGIC


def normalise_phone(value: str) -> str:
    """Digits only, Indonesian local ``08…`` turned into ``628…`` (E.164 without ``+``)."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    return digits

"""Reading every row at rest, for tests that no PII is stored in plain text."""

from __future__ import annotations

import base64
import binascii
import re

from sqlalchemy import text

from storage.models import Base
from tests.conftest import Harness

_B64 = re.compile(rb"[A-Za-z0-9+/_-]{12,}={0,2}")


def base64_hides(blob: bytes, needles: list[bytes]) -> list[bytes]:
    """Base64 tokens in ``blob`` that decode (at any alignment) to text holding a needle."""
    found = []
    for match in _B64.finditer(blob):
        token = match.group(0).rstrip(b"=")
        for start in range(min(len(token), 80)):
            chunk = token[start:]
            if len(chunk) % 4 == 1:
                chunk = chunk[:-1]
            chunk += b"=" * (-len(chunk) % 4)
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    decoded = decode(chunk)
                except (binascii.Error, ValueError):
                    continue
                if any(n in decoded for n in needles):
                    found.append(match.group(0)[:60])
    return sorted(set(found))


async def all_rows(h: Harness) -> bytes:
    """Every value of every table as stored (raw SQL: no type decrypts anything)."""
    out = bytearray()
    async with h.db.read() as session:
        for table in Base.metadata.sorted_tables:
            rows = await session.execute(text(f'SELECT * FROM "{table.name}"'))
            for row in rows:
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        out += bytes(value)
                    else:
                        out += str(value).encode()
                    out += b"\x00"
    return bytes(out)

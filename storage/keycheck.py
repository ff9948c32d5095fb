"""The PII key is checked before a process touches sealed data.

A known text is sealed with the key in ``pii_key_canary`` (migration 0017, or the first
process that checks a database without one — after checking that its key opens the
values already sealed). A process with another key, or started while a key rotation is
unfinished, gets :class:`KeyMismatch` with a sentence for the operator, instead of
failing every unit with an empty ``InvalidTag`` and answering buyers as strangers.

Sync functions take a SQLAlchemy ``Connection`` (a migration's, or an async one's
``run_sync``); :func:`verify` is the async door.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import LargeBinary, column, inspect, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.crypto import PiiCipher
from storage.sealed import SealedJSON, SealedText, is_sealed

CANARY_TEXT = "jastipin pii key canary v1"
CANARY = table(
    "pii_key_canary",
    column("id"),
    column("key_id"),
    column("sealed", LargeBinary),
    column("next_key_id"),
    column("next_sealed", LargeBinary),
)
SAMPLE = 20  # sealed values read per column by the sample check


class KeyMismatch(Exception):
    """The process's PII key cannot be used on this database; the message says why."""


def wrong_key(expected: str, got: str) -> str:
    return (
        "PII_ENCRYPTION_KEY is not the key this database's personal data is sealed with "
        f"(the database's key is {expected}, this process has {got}): start it with the "
        "database's key (see docs/RUNBOOK.md, 'PII key'); to change keys use "
        "`jastipin keys rotate`"
    )


def rotating(target: str) -> str:
    return (
        f"a PII key rotation to key {target} is not finished: run `jastipin keys rotate` "
        "again (PII_ENCRYPTION_KEY = the new key, PII_ENCRYPTION_KEY_OLD = the old one) "
        "before starting anything else"
    )


def sealed_columns(conn: Connection | None = None) -> list[tuple[str, str]]:
    """(table, column) of every value sealed with the PII key, from the models: sealed
    column types and ``*_enc`` binary columns. With ``conn``, only those its database
    has (a migration runs before later ones add columns)."""
    from storage.models import Base

    present: dict[str, set[str]] | None = None
    if conn is not None:
        insp = inspect(conn)
        present = {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}
    out = []
    for tbl in Base.metadata.sorted_tables:
        if tbl.name == CANARY.name:
            continue
        for col in tbl.columns:
            sealed = isinstance(col.type, SealedJSON | SealedText) or (
                isinstance(col.type, LargeBinary) and col.name.endswith("_enc")
            )
            if sealed and (present is None or col.name in present.get(tbl.name, ())):
                out.append((tbl.name, col.name))
    return out


def samples(conn: Connection, per_column: int = SAMPLE) -> list[tuple[str, bytes]]:
    """Up to ``per_column`` sealed values of each sealed column: (where, raw bytes)."""
    out = []
    for tbl, col in sealed_columns(conn):
        rows = conn.execute(
            text(f'SELECT "{col}" FROM "{tbl}" WHERE "{col}" IS NOT NULL LIMIT :n'),
            {"n": per_column * 2},
        )
        found = [bytes(v) for (v,) in rows if is_sealed(v)][:per_column]
        out += [(f"{tbl}.{col}", v) for v in found]
    return out


def open_samples(conn: Connection, cipher: PiiCipher) -> int:
    """Open sealed values of every sealed column with ``cipher``; how many opened.
    Raises :class:`KeyMismatch` naming the first column that does not open."""
    opened = 0
    for where, blob in samples(conn):
        if not cipher.opens(blob):
            raise KeyMismatch(
                f"PII_ENCRYPTION_KEY (key {cipher.key_id}) does not open the values sealed "
                f"in {where}: this is not the key this data was sealed with"
            )
        opened += 1
    return opened


def check_sync(
    conn: Connection, cipher: PiiCipher, *, claim: bool = True, samples_too: bool = False
) -> str:
    """Check ``cipher``'s key against the database; returns what was found (``ok``,
    ``claimed``, ``unclaimed``, ``no canary table``). ``claim``: seal the canary when
    there is none (the key must open what is already sealed). ``samples_too``: also open
    sealed rows (the restore drill, predeploy)."""
    if not inspect(conn).has_table(CANARY.name):
        open_samples(conn, cipher)  # a database before 0017: the rows tell
        return "no canary table"
    row = conn.execute(
        select(CANARY.c.key_id, CANARY.c.sealed, CANARY.c.next_key_id).where(CANARY.c.id == 1)
    ).first()
    if row is None:
        open_samples(conn, cipher)
        if not claim:
            return "unclaimed"
        try:
            with conn.begin_nested():
                conn.execute(
                    CANARY.insert().values(
                        id=1, key_id=cipher.key_id, sealed=cipher.encrypt(CANARY_TEXT)
                    )
                )
        except IntegrityError:  # claimed at the same moment by another process
            return check_sync(conn, cipher, claim=False, samples_too=samples_too)
        return "claimed"
    key_id, sealed, next_key_id = row
    if next_key_id is not None:
        raise KeyMismatch(rotating(next_key_id))
    if not cipher.opens(bytes(sealed)):
        raise KeyMismatch(wrong_key(key_id, cipher.key_id))
    if samples_too:
        open_samples(conn, cipher)
    return "ok"


async def verify(db: Any, cipher: PiiCipher, **kw: Any) -> str:
    """:func:`check_sync` on ``db`` (a :class:`storage.db.Database`)."""
    async with db.transaction() as session:
        conn = await session.connection()
        result: str = await conn.run_sync(lambda c: check_sync(c, cipher, **kw))
        return result

"""``jastipin keys rotate``: reseal every sealed value and file with a new PII key.

Resumable: :func:`begin` marks the rotation in the canary (``next_*``: the canary sealed
with the new key) before anything else changes, so that no process starts in between
(storage/keycheck.py). Rows are resealed in batches, each committed on its own; a value
already sealed with the new key is skipped, so a run that stopped anywhere is simply run
again, with the same two keys. Keyed digests are recomputed from the sealed values they
belong to: a user's phone hash from their sealed number, an inbox unit's key from its
sealed body. :func:`finish` switches the canary last.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import LargeBinary, String, column, select, table, update

from storage.crypto import DIGEST_PREFIX, PiiCipher, is_sealed_file
from storage.keycheck import CANARY, CANARY_TEXT, KeyMismatch, check_sync, sealed_columns
from storage.media import MediaStore
from storage.repo.inbox import lane_of
from storage.sealed import is_sealed

BATCH = 200
# keyed digests recomputed from a sealed column of the same row
_DIGESTS = {"users": ("phone_hash", "phone_enc"), "inbound_updates": ("key", "body")}


@dataclass
class Progress:
    values: int = 0  # sealed values rewritten with the new key
    digests: int = 0  # keyed digests recomputed
    files: int = 0  # files sealed with the new key
    batches: int = 0


async def begin(db: Any, old: PiiCipher, new: PiiCipher) -> str:
    """Start the rotation from ``old`` to ``new``, or find it under way; returns
    ``started``, ``resumed`` or ``done`` (the database is already on ``new``)."""
    async with db.transaction() as session:
        conn = await session.connection()

        def run(c: Any) -> str:
            row = c.execute(
                select(CANARY.c.key_id, CANARY.c.sealed, CANARY.c.next_key_id).where(
                    CANARY.c.id == 1
                )
            ).first()
            if row is None:  # never checked: it must be the old key's data
                check_sync(c, old, claim=True)
                return run(c)
            key_id, sealed, next_key_id = row
            sealed = bytes(sealed)
            if next_key_id is None:
                if new.opens(sealed):
                    return "done"
                if not old.opens(sealed):
                    raise KeyMismatch(
                        f"PII_ENCRYPTION_KEY_OLD (key {old.key_id}) is not this database's "
                        f"key either (the database's key is {key_id}): nothing was changed"
                    )
                c.execute(
                    update(CANARY)
                    .where(CANARY.c.id == 1)
                    .values(next_key_id=new.key_id, next_sealed=new.encrypt(CANARY_TEXT))
                )
                return "started"
            if next_key_id != new.key_id:
                raise KeyMismatch(
                    f"an unfinished rotation is going to key {next_key_id}, not to "
                    f"PII_ENCRYPTION_KEY ({new.key_id}): finish that one first, with that "
                    "key as PII_ENCRYPTION_KEY"
                )
            if not old.opens(sealed):
                raise KeyMismatch(
                    f"PII_ENCRYPTION_KEY_OLD (key {old.key_id}) is not the key this rotation "
                    f"started from ({key_id})"
                )
            return "resumed"

        result: str = await conn.run_sync(run)
        return result


async def reseal_rows(
    db: Any,
    keyring: PiiCipher,
    *,
    batch: int = BATCH,
    on_batch: Callable[[Progress], Awaitable[None]] | None = None,
) -> Progress:
    """Reseal every sealed value not yet under ``keyring``'s key (``keyring.previous``
    opens the others), recompute the keyed digests, one committed batch at a time."""
    progress = Progress()
    async with db.read() as session:
        conn = await session.connection()
        found = await conn.run_sync(sealed_columns)
    by_table: dict[str, list[str]] = {}
    for tbl, col in found:
        by_table.setdefault(tbl, []).append(col)
    for name, cols in by_table.items():
        digest = _DIGESTS.get(name)
        extra = [column(digest[0], String)] if digest else []
        if name == "inbound_updates":
            extra.append(column("lane", String))
        t = table(name, column("id"), *(column(c, LargeBinary) for c in cols), *extra)
        last = 0
        while True:
            async with db.transaction() as session:
                rows = (
                    await session.execute(
                        select(t).where(t.c.id > last).order_by(t.c.id).limit(batch)
                    )
                ).all()
                if not rows:
                    break
                for row in rows:
                    changes = _resealed(row._mapping, cols, keyring, progress)
                    if digest:
                        _redigest(name, row._mapping, digest, keyring, changes, progress)
                    if changes:
                        await session.execute(update(t).where(t.c.id == row.id).values(changes))
                last = rows[-1].id
            progress.batches += 1
            if on_batch is not None:
                await on_batch(progress)
    return progress


def _resealed(row: Any, cols: list[str], keyring: PiiCipher, progress: Progress) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for col in cols:
        value = row[col]
        if value is None or not is_sealed(value) or keyring.opens(bytes(value)):
            continue  # empty, stored before sealing (db upgrade seals it), or done
        changes[col] = keyring.encrypt(keyring.decrypt(bytes(value)))
        progress.values += 1
    return changes


def _redigest(
    name: str,
    row: Any,
    digest: tuple[str, str],
    keyring: PiiCipher,
    changes: dict[str, Any],
    progress: Progress,
) -> None:
    target, source = digest
    raw = row[source]
    if raw is None or not is_sealed(raw):
        return
    plain = keyring.decrypt(bytes(raw))
    current = row[target]
    fresh: str | None
    if name == "users":
        fresh = keyring.lookup_hash(plain)
    else:
        body = json.loads(plain)
        fresh = _inbound_key(current, body, keyring)
        lane = lane_of(body, keyring.digest_id) if row["lane"] else None
        if lane is not None and lane != row["lane"]:  # a user's units stay in one lane
            changes["lane"] = lane
    if fresh is not None and fresh != current:
        changes[target] = fresh
        progress.digests += 1


def _inbound_key(key: str, body: dict[str, Any], keyring: PiiCipher) -> str | None:
    """An inbox unit's key under the new key (bot/inbox.py makes them): ``w:<digest>``
    for a message, ``st:<digest>:<status>`` for a status; other keys hold no digest."""
    try:
        value = body["entry"][0]["changes"][0]["value"]
        if key.startswith("w:" + DIGEST_PREFIX):
            return "w:" + keyring.digest_id(str(value["messages"][0]["id"]))
        if key.startswith("st:" + DIGEST_PREFIX):
            status = value["statuses"][0]
            return f"st:{keyring.digest_id(str(status.get('id')))}:{status.get('status')}"
    except (KeyError, IndexError, TypeError):
        return None
    return None


async def reseal_files(
    store: MediaStore,
    keyring: PiiCipher,
    *,
    on_file: Callable[[Progress], Awaitable[None]] | None = None,
    progress: Progress | None = None,
) -> Progress:
    """Seal every object of the raw ``store`` with ``keyring``'s key: those sealed with
    ``keyring.previous`` are opened and resealed, those stored before sealing are sealed;
    those already under the key are left alone (so a rerun resumes)."""
    progress = progress or Progress()
    for key, _written in await store.listing():
        blob = await store.get(key)
        if keyring.opens_file(blob, key):
            continue
        plain = keyring.open_file(blob, key) if is_sealed_file(blob) else blob
        await store.put(key, keyring.seal_file(plain, key), "application/octet-stream")
        progress.files += 1
        if on_file is not None:
            await on_file(progress)
    return progress


async def finish(db: Any, new: PiiCipher) -> None:
    """Switch the canary to the new key: processes with it may start again."""
    async with db.transaction() as session:
        await session.execute(
            update(CANARY)
            .where(CANARY.c.id == 1, CANARY.c.next_key_id == new.key_id)
            .values(
                key_id=new.key_id,
                sealed=CANARY.c.next_sealed,
                next_key_id=None,
                next_sealed=None,
            )
        )

"""Copies of payment proofs in a second bucket (``S3_BACKUP_BUCKET``), made by the
scheduler. The database's own backups (``jastipin backup``) are ``storage/dbbackup.py``.

Proofs are the one thing a jastiper cannot recreate: they settle disputes about who paid
what. The scheduler copies each new proof to the backup bucket (same key, same
S3_BACKUP_* store, the media store's by default) and marks it, so a copy is made once; a copy
that failed is tried again on the next pass.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

from storage.db import Database
from storage.media import S3MediaStore, build_media_store
from storage.models import PaymentProof, utcnow

log = logging.getLogger(__name__)

BATCH = 100


async def replicate_proofs(db: Database, settings: Any, *, batch: int = BATCH) -> int:
    """Copy up to ``batch`` proofs not yet in the backup bucket; returns how many."""
    if not settings.s3_backup_bucket:
        return 0
    # the objects as stored (sealed with the PII key), copied as they are, to the
    # backups' own store (S3_BACKUP_*: write-only credentials there)
    source = build_media_store(settings, sealed=False)
    endpoint, access_key, secret_key = settings.backup_store()
    target = S3MediaStore(
        bucket=settings.s3_backup_bucket,
        endpoint_url=endpoint,
        access_key=access_key,
        secret_key=secret_key,
        server_side_encryption=getattr(settings, "s3_server_side_encryption", "AES256") or None,
    )
    async with db.read() as session:
        proofs = (
            await session.execute(
                select(PaymentProof.id, PaymentProof.media_key, PaymentProof.mime_type)
                .where(PaymentProof.backed_up_at.is_(None))
                .order_by(PaymentProof.id)
                .limit(batch)
            )
        ).all()
    copied = 0
    for proof_id, key, mime in proofs:
        try:
            await target.put(key, await source.get(key), mime)
        except Exception:
            log.exception("proof backup failed", extra={"proofId": proof_id})
            continue  # tried again next pass
        async with db.transaction() as session:
            await session.execute(
                update(PaymentProof)
                .where(PaymentProof.id == proof_id)
                .values(backed_up_at=utcnow())
            )
        copied += 1
    if copied:
        log.info("proofs backed up", extra={"count": copied})
    return copied

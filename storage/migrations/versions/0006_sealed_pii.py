"""Seal personal data at rest: inbox bodies, outbox payloads, conversation data,
people's names and what buyers type freely (order notes, questions) become ciphertext
columns (``bytea`` / ``BLOB``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

The values already stored are kept as their plain bytes here (the migration has no
key); ``jastipin db upgrade`` then rewrites them sealed with the PII key
(``storage.repo.privacy.reseal``). The sealed types still read a plain value, so
nothing breaks in between.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS: list[tuple[str, str, Any]] = [
    ("inbound_updates", "body", sa.JSON()),
    ("outbox", "payload", sa.JSON()),
    ("conversations", "data", sa.JSON()),
    ("users", "profile_name", sa.String(200)),
    ("users", "display_name", sa.String(200)),
    ("order_items", "note", sa.Text()),
    ("questions", "text", sa.Text()),
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, column, _old in COLUMNS:
        if postgres:
            source = f"{column}::text" if isinstance(_old, sa.JSON) else column
            op.execute(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE bytea "
                f"USING convert_to({source}, 'UTF8')"
            )
        else:
            with op.batch_alter_table(table) as batch:
                batch.alter_column(column, type_=sa.LargeBinary(), existing_type=_old)
            # SQLite keeps a TEXT value TEXT in a BLOB column: make it bytes
            op.execute(f"UPDATE {table} SET {column} = CAST({column} AS BLOB)")


def downgrade() -> None:
    raise NotImplementedError(
        "sealed columns hold ciphertext: restore the backup taken before 0006 instead"
    )

"""``jastipin db upgrade``: Alembic, configured in code so it works from any directory.

Migrations are written to be non-destructive: add a column or table, backfill, and
drop the old one only in a later release.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from storage.db import private_sqlite_file

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    private_sqlite_file(database_url)
    command.upgrade(alembic_config(database_url), revision)


def revision(database_url: str, message: str) -> None:
    """Autogenerate a new migration from the models (developers only)."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)

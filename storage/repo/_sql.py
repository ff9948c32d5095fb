"""Dialect helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

_T = TypeVar("_T")


def insert_ignoring_conflicts(session: AsyncSession, model: Any, index_elements: list[str]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's dialect."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing(index_elements=index_elements)


def adopt(session: AsyncSession, obj: _T) -> _T:
    """An object built from a row this transaction just inserted with a plain Core
    statement, made persistent in the session as if it had been loaded: no SELECT to
    read it back, nothing for the unit of work to flush. Every column must be set."""
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


class InsertIgnoring:
    """``INSERT … ON CONFLICT DO NOTHING [RETURNING …]`` into ``table``, built once per
    dialect: the hot paths pass their rows as parameters, so SQLAlchemy's compiled cache
    (keyed on the statement object) serves every call. ``conflict``: the unique columns
    (None: any unique constraint)."""

    def __init__(self, table: Any, conflict: list[str] | None, *returning: Any) -> None:
        self.table = table
        self.conflict = conflict
        self.returning = returning
        self._built: dict[str, Any] = {}

    def __call__(self, session: AsyncSession) -> Any:
        dialect = "postgresql" if is_postgres(session) else "sqlite"
        stmt = self._built.get(dialect)
        if stmt is None:
            module: Any = postgresql if dialect == "postgresql" else sqlite
            stmt = module.insert(self.table).on_conflict_do_nothing(index_elements=self.conflict)
            if self.returning:
                stmt = stmt.returning(*self.returning)
            self._built[dialect] = stmt
        return stmt


def is_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def move_status(
    session: AsyncSession, row: Any, sources: Iterable[str], to: str, **values: Any
) -> bool:
    """One conditional update: ``status = to`` (and ``values``) only while the row's
    status is one of ``sources`` in the database. Two doors racing cannot both win: only
    the update that still finds the row in a source state changes it. The loaded ``row``
    is brought up to date without another statement; False when nothing changed."""
    model = type(row)
    result = await session.execute(
        update(model)
        .where(model.id == row.id, model.status.in_(tuple(sources)))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return False
    for name, value in {"status": to, **values}.items():
        set_committed_value(row, name, value)
    return True

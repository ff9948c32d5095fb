"""Dialect helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

from sqlalchemy import event, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, make_transient_to_detached
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


class StagedWrites:
    """Rows a hot path keeps on the session instead of writing them one by one, written
    by ``statement`` in one executemany just before the transaction commits, and
    dropped when the whole transaction rolls back.

    Written whenever a commit begins: also when a savepoint is released (they then
    join the outer transaction, before the savepoint's own flush), and when the outer
    commit ends a savepoint still open. Rows are kept by a key (a second row under the
    same key replaces the first: the last state of a conversation); written in the
    order first staged."""

    every: ClassVar[list[StagedWrites]] = []

    def __init__(self, name: str, statement: Any) -> None:
        self.key = f"jastipin.staged.{name}"
        self.statement = statement
        StagedWrites.every.append(self)

    def rows(self, session: AsyncSession | Session) -> dict[Any, dict[str, Any]]:
        """The rows staged in ``session``'s transaction (add to it)."""
        staged: dict[Any, dict[str, Any]] = session.info.setdefault(self.key, {})
        return staged

    def pending(self, session: AsyncSession | Session) -> bool:
        return bool(session.info.get(self.key))

    def write(self, session: Session) -> None:
        """Write the staged rows now (the sync session, inside the async one's greenlet),
        without autoflush, so no row added later through the unit of work goes first."""
        rows = session.info.pop(self.key, None)
        if rows:
            with session.no_autoflush:
                session.execute(self.statement, list(rows.values()))


@event.listens_for(Session, "before_commit")
def _write_staged(session: Session) -> None:
    for staged in StagedWrites.every:
        staged.write(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_staged(session: Session, _previous: Any) -> None:
    if not session.in_transaction():  # the whole transaction rolled back
        for staged in StagedWrites.every:
            session.info.pop(staged.key, None)


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

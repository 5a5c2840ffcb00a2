"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session as DbSession
from sqlmodel import SQLModel


def insert_ignoring_conflicts(
    db: DbSession,
    table: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    conflict_columns: list[str],
    *,
    id_column: str = "id",
) -> set[Any]:
    """Insert ``rows``, skipping those that collide on ``conflict_columns``; return new ids.

    The database decides, not a prior SELECT, so concurrent writers can never create a
    duplicate and never fail on one.
    """
    if not rows:
        return set()
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table_id = getattr(table, id_column)
    statement = (
        insert(table).on_conflict_do_nothing(index_elements=conflict_columns).returning(table_id)
    )
    result = db.execute(statement, list(rows))
    return {row[0] for row in result}

"""append-only audit trail

The audit log, reviews and human labels refuse UPDATE and DELETE through row-level triggers
(PostgreSQL: a plpgsql function raising an exception; SQLite: BEFORE triggers with
RAISE(ABORT)). 0001 created them, but on SQLite 0003 rebuilt ``reviews`` (batch mode copies the
table to add a unique constraint) and the copy lost its triggers. This revision (re)creates the
triggers idempotently on every append-only table. Later migrations that rebuild one of these
tables on SQLite must recreate its triggers too (tests/test_audit.py checks every table at head).

TRUNCATE stays possible on PostgreSQL (row-level triggers do not fire on it): test fixtures and
a deliberate operator wipe use it; ordinary writes cannot edit history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.engine import Connection

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here, not imported from models: a migration must keep doing what it did when written.
APPEND_ONLY = ("audit_events", "reviews", "human_labels")


def _ensure_triggers(connection: Connection, table: str) -> None:
    # Same names as 0001's triggers, so 0001's downgrade still removes them.
    if connection.dialect.name == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            connection.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} "
                f"BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
        return
    connection.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ BEGIN "
        f"RAISE EXCEPTION '{table} is append-only'; END $$ LANGUAGE plpgsql"
    )
    connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    connection.exec_driver_sql(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
    )


def upgrade() -> None:
    """Apply this revision."""
    connection = op.get_bind()
    for table in APPEND_ONLY:
        _ensure_triggers(connection, table)


def downgrade() -> None:
    """Revert this revision: nothing to undo.

    The triggers stay: they are what 0001 meant to install, and 0001's downgrade removes them.
    """

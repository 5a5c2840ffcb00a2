"""Database triggers that refuse UPDATE and DELETE on the append-only tables."""

from collections.abc import Sequence

from sqlalchemy.engine import Connection

# Frozen here, not imported from models: a migration must keep doing what it did when written.
INITIAL_APPEND_ONLY_TABLES = ("human_labels", "reviews", "audit_events")


def create_append_only_triggers(
    connection: Connection, tables: Sequence[str] = INITIAL_APPEND_ONLY_TABLES
) -> None:
    """Make every table in ``tables`` refuse updates and deletes."""
    for table in tables:
        if connection.dialect.name == "sqlite":
            for operation in ("UPDATE", "DELETE"):
                connection.exec_driver_sql(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        else:
            connection.exec_driver_sql(
                f"CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$ BEGIN "
                f"RAISE EXCEPTION '{table} is append-only'; END $$ LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
            )


def drop_append_only_triggers(
    connection: Connection, tables: Sequence[str] = INITIAL_APPEND_ONLY_TABLES
) -> None:
    """Remove the triggers that create_append_only_triggers made."""
    for table in tables:
        if connection.dialect.name == "sqlite":
            for operation in ("update", "delete"):
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")
        else:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {table}_append_only()")

"""scoring jobs (procrastinate, PostgreSQL) and shared rate limits

On PostgreSQL this applies procrastinate's schema (its ``procrastinate_*`` tables, types,
functions and triggers), through which scoring jobs reach any number of `judgeloop worker`
processes. The schema is the one shipped by the installed procrastinate package, the version
its own code expects; upgrading that package later may need its migrations
(``procrastinate schema --migrations`` lists them), applied by a later judgeloop migration.
SQLite keeps the in-process worker and gets no job tables.

Both databases get ``rate_limit_buckets``: token buckets that every process shares.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 15:30:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from judgeloop.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROP_PROCRASTINATE = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
    procrastinate_workers CASCADE;
DO $$
DECLARE item record;
BEGIN
    FOR item IN SELECT oid::regprocedure AS name FROM pg_proc
                WHERE proname LIKE 'procrastinate\\_%' LOOP
        EXECUTE 'DROP FUNCTION ' || item.name || ' CASCADE';
    END LOOP;
    FOR item IN SELECT typname FROM pg_type
                WHERE typname LIKE 'procrastinate\\_%' AND typtype IN ('c', 'e') LOOP
        EXECUTE 'DROP TYPE IF EXISTS ' || quote_ident(item.typname) || ' CASCADE';
    END LOOP;
END $$;
"""


def _driver_connection() -> Any:
    """The psycopg connection under alembic's, in the same transaction."""
    return op.get_bind().connection.driver_connection


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "rate_limit_buckets",
        sa.Column("key", AutoString(length=200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    if op.get_bind().dialect.name == "postgresql":
        from procrastinate.schema import SchemaManager

        # The driver's own execute, without parameters: the schema holds '%' and ':' that
        # SQLAlchemy's text() would read as placeholders.
        _driver_connection().execute(SchemaManager.get_schema())


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        _driver_connection().execute(_DROP_PROCRASTINATE)
    op.drop_table("rate_limit_buckets")

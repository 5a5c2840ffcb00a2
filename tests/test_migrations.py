"""The alembic migrations create exactly the schema that models.py declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

import judgeloop.models  # noqa: F401
from judgeloop.store import current_revision
from judgeloop.store.migrate import owned_by_judgeloop


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "include_name": owned_by_judgeloop}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == [], f"write a migration for: {differences}"


def test_database_is_at_the_newest_revision(engine: Engine) -> None:
    from alembic.script import ScriptDirectory

    from judgeloop.store.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert current_revision(engine) == head

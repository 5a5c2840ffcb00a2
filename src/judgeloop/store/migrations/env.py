"""Alembic environment: migrates the engine handed over in ``config.attributes``."""

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import judgeloop.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from judgeloop.store.migrate import owned_by_judgeloop

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    """Run migrations on a live connection (offline SQL generation is not supported)."""
    url = config.get_main_option("sqlalchemy.url") or ""
    engine = config.attributes.get("engine") or create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=owned_by_judgeloop,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()

"""The audit trail: append-only at the database, complete, and exportable as JSONL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DatabaseError

from judgeloop.models import APPEND_ONLY_TABLES, AuditEvent
from judgeloop.store import claim_item, db_session, submit_review
from tests.queue_factories import LEASE, escalated_item, reviewer

# ----------------------------------------------------------------- append-only at the database


def _one_row_in_every_append_only_table(engine: Engine) -> None:
    """A review (with its human label) and the audit events its writes recorded."""
    alice, _ = reviewer(engine, "alice")
    with db_session(engine) as db:
        item = escalated_item(db)
        assert item.id is not None
        claim_item(db, item.id, alice, lease=LEASE)
        submit_review(db, item.id, alice, label="yes")


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
@pytest.mark.parametrize("statement", ["UPDATE {table} SET id = id + 1000", "DELETE FROM {table}"])
def test_append_only_tables_refuse_tampering(engine: Engine, table: str, statement: str) -> None:
    # Reviews matter here: on SQLite, 0003's table rebuild had dropped their triggers.
    _one_row_in_every_append_only_table(engine)
    with engine.connect() as connection:
        before = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    assert before > 0
    with pytest.raises(DatabaseError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(text(statement.format(table=table)))
    with engine.connect() as connection:
        assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == before


def test_truncate_still_empties_the_audit_log_on_postgres(engine: Engine) -> None:
    # The test fixtures wipe PostgreSQL with TRUNCATE; row-level triggers must not block it.
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    _one_row_in_every_append_only_table(engine)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_events"))
    with db_session(engine) as db:
        assert db.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 0

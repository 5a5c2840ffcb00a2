"""The store on SQLite and PostgreSQL: idempotent sessions, checked labels, append-only rows."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, text
from sqlalchemy.exc import DatabaseError
from sqlmodel import select

from judgeloop.models import AuditEvent, HumanLabel, HumanLabelCreate, Session, SessionCreate
from judgeloop.store import (
    InvalidInputError,
    add_criteria,
    add_labels,
    add_sessions,
    authenticate,
    create_key,
    db_session,
    list_keys,
    revoke_key,
)
from tests.factories import RESOLVED, TONE, label_payload, session_payload


def _session(external_id: str = "s-1") -> SessionCreate:
    return SessionCreate.model_validate(session_payload(external_id))


def _count(engine: Engine, table: type) -> int:
    with db_session(engine) as db:
        return int(db.exec(select(func.count()).select_from(table)).one())


def test_same_session_twice_is_stored_once(engine: Engine) -> None:
    with db_session(engine) as db:
        [(first, created_first)] = add_sessions(db, [_session()], actor="t")
        [(second, created_second)] = add_sessions(db, [_session()], actor="t")
        batch = add_sessions(db, [_session("s-2"), _session("s-2"), _session()], actor="t")
    assert created_first and not created_second
    assert first.id == second.id
    assert [created for _row, created in batch] == [True, False, False]
    assert batch[0][0].id == batch[1][0].id
    assert _count(engine, Session) == 2


def test_concurrent_writers_store_a_session_once(engine: Engine) -> None:
    def post(_: int) -> tuple[int | None, bool]:
        with db_session(engine) as db:
            [(row, created)] = add_sessions(db, [_session("race")], actor="t")
            return row.id, created

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(post, range(16)))
    assert len({session_id for session_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert _count(engine, Session) == 1


def test_session_messages_and_metadata_round_trip(engine: Engine) -> None:
    with db_session(engine) as db:
        [(row, _)] = add_sessions(db, [_session()], actor="t")
    with db_session(engine) as db:
        stored = db.get(Session, row.id)
    assert stored is not None
    assert stored.messages[2]["tool_calls"][0]["arguments"] == {"order_id": "NW-1"}
    assert stored.messages[3]["content"] == {"status": "shipped"}
    assert stored.session_metadata == {"channel": "chat"}
    assert stored.created_at.tzinfo is not None
    assert len(stored.content_hash) == 64


def test_labels_are_checked_all_or_nothing(engine: Engine) -> None:
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED, TONE], actor="t")
        add_sessions(db, [_session()], actor="t")
        good = HumanLabelCreate.model_validate(label_payload())
        bad_value = HumanLabelCreate.model_validate(label_payload(value="maybe"))
        bad_criterion = HumanLabelCreate.model_validate(label_payload(criterion="helpful"))
        bad_session = HumanLabelCreate.model_validate(label_payload(external_id="nope"))
        with pytest.raises(InvalidInputError) as caught:
            add_labels(db, [good, bad_value, bad_criterion, bad_session], actor="t")
    messages = {problem.loc: problem.msg for problem in caught.value.problems}
    assert "allowed: 'yes', 'no'" in messages[(1, "value")]
    assert "allowed: resolved, tone" in messages[(2, "criterion")]
    assert "nope" in messages[(3, "session")]
    assert _count(engine, HumanLabel) == 0


def test_identical_label_is_not_stored_twice_but_a_changed_one_is(engine: Engine) -> None:
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED, TONE], actor="t")
        add_sessions(db, [_session()], actor="t")
        label = HumanLabelCreate.model_validate(label_payload())
        tone = HumanLabelCreate.model_validate(label_payload(criterion="tone", value=4))
        first = add_labels(db, [label, tone], actor="t")
        again = add_labels(db, [label], actor="t")
        changed = add_labels(
            db, [HumanLabelCreate.model_validate(label_payload(value="no"))], actor="t"
        )
    assert [created for _, created in first] == [True, True]
    assert first[1][0].value == "4"
    assert (again[0][0].id, again[0][1]) == (first[0][0].id, False)
    assert changed[0][1] is True
    assert _count(engine, HumanLabel) == 3


@pytest.mark.parametrize("table", ["human_labels", "audit_events"])
@pytest.mark.parametrize("statement", ["UPDATE {table} SET id = id", "DELETE FROM {table}"])
def test_append_only_tables_refuse_update_and_delete(
    engine: Engine, table: str, statement: str
) -> None:
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED], actor="t")
        add_sessions(db, [_session()], actor="t")
        add_labels(db, [HumanLabelCreate.model_validate(label_payload())], actor="t")
    with pytest.raises(DatabaseError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(text(statement.format(table=table)))
    assert _count(engine, HumanLabel) == 1


def test_every_write_records_an_audit_event(engine: Engine) -> None:
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED], actor="alice")
        add_sessions(db, [_session(), _session("s-2")], actor="pipeline-1")
        add_sessions(db, [_session()], actor="pipeline-1")  # nothing new: nothing to audit
        add_labels(db, [HumanLabelCreate.model_validate(label_payload())], actor="bob")
        create_key(db, role="reviewer", name="rita", actor="admin")
    with db_session(engine) as db:
        events = db.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    assert [(e.actor, e.action) for e in events] == [
        ("alice", "criterion.create"),
        ("pipeline-1", "sessions.create"),
        ("bob", "labels.create"),
        ("admin", "key.create"),
    ]
    assert events[1].detail["count"] == 2
    assert all(e.created_at.tzinfo is not None for e in events)


def test_changed_criterion_definition_is_refused(engine: Engine) -> None:
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED], actor="t")
        assert add_criteria(db, [RESOLVED], actor="t")[0][1] is False
        changed = RESOLVED.model_copy(update={"labels": ["pass", "fail"]})
        with pytest.raises(InvalidInputError, match="different definition"):
            add_criteria(db, [changed], actor="t")


def test_keys_are_hashed_and_revocable(engine: Engine) -> None:
    with db_session(engine) as db:
        row, plaintext = create_key(db, role="pipeline", name="etl", actor="t")
        assert authenticate(db, plaintext) is not None
        assert authenticate(db, plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None
        assert authenticate(db, "not-a-key") is None
        stored = list_keys(db)[0]
        assert plaintext not in (stored.key_hash, stored.prefix, stored.name)
        assert len(stored.key_hash) == 64 and plaintext.startswith(f"jl_{stored.prefix}_")
        assert row.id is not None
        revoke_key(db, row.id, actor="t")
        assert authenticate(db, plaintext) is None
    with engine.connect() as connection:
        dumped = " ".join(str(r) for r in connection.execute(text("SELECT * FROM api_keys")))
    assert plaintext not in dumped


def test_unknown_role_is_refused(engine: Engine) -> None:
    with db_session(engine) as db, pytest.raises(InvalidInputError, match="allowed: pipeline"):
        create_key(db, role="superuser", name="x", actor="t")

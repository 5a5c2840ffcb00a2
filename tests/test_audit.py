"""The audit trail: append-only at the database, complete, and exportable as JSONL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DatabaseError

from judgeloop.cli import app
from judgeloop.config import get_settings
from judgeloop.escalation import EscalationPolicy
from judgeloop.gates import evaluate, load_rules
from judgeloop.models import APPEND_ONLY_TABLES, AuditEvent, HumanLabelCreate
from judgeloop.pipeline.worker import Worker
from judgeloop.store import (
    add_labels,
    claim_item,
    db_session,
    decide_gate,
    gate_public,
    open_gate,
    revoke_key,
    submit_review,
)
from judgeloop.store.judges import activate_judge_version
from judgeloop.types import utc_now
from tests.conftest import auth
from tests.factories import label_payload
from tests.queue_factories import LEASE, escalated_item, reviewer

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def judgeloop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., Result]]:
    """Run `judgeloop ARGS` in this process (a subprocess costs seconds of imports)."""
    from typer.testing import CliRunner

    def invoke(database_url: str, *args: str) -> Result:
        monkeypatch.setenv("JUDGELOOP_DATABASE_URL", database_url)
        get_settings.cache_clear()
        return CliRunner().invoke(app, list(args))

    yield invoke
    get_settings.cache_clear()


# ----------------------------------------------------------------- append-only at the database


def _one_row_in_every_append_only_table(engine: Engine) -> None:
    """A review (with its human label) and the audit events its writes recorded."""
    alice, _ = reviewer(engine, "alice")
    with db_session(engine) as db:
        item = escalated_item(db)
        assert item.id is not None
        claim_item(db, item.id, alice, lease=LEASE)
        submit_review(db, item.id, alice, label="yes")


def test_append_only_tables_refuse_tampering(engine: Engine) -> None:
    # Reviews matter here: on SQLite, 0003's table rebuild had dropped their triggers.
    _one_row_in_every_append_only_table(engine)
    for table in APPEND_ONLY_TABLES:
        with engine.connect() as connection:
            before = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        assert before > 0, table
        for statement in (f"UPDATE {table} SET id = id + 1000", f"DELETE FROM {table}"):
            with pytest.raises(DatabaseError, match=f"{table} is append-only"):
                with engine.begin() as connection:
                    connection.execute(text(statement))
        with engine.connect() as connection:
            after = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        assert after == before, table


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_truncate_still_empties_the_audit_log_on_postgres(engine: Engine) -> None:
    # The test fixtures wipe PostgreSQL with TRUNCATE; row-level triggers must not block it.
    _one_row_in_every_append_only_table(engine)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_events"))
    with db_session(engine) as db:
        assert db.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 0


# ----------------------------------------------------------------- what is recorded, exported


def _events(engine: Engine, action: str) -> list[AuditEvent]:
    with db_session(engine) as db:
        statement = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(db.execute(statement).scalars())


def _review_label_gate_revoke_and_activation(engine: Engine) -> None:
    rita, _ = reviewer(engine, "rita")
    gone, _ = reviewer(engine, "gone")
    with db_session(engine) as db:
        item = escalated_item(db)
        assert item.id is not None
        claim_item(db, item.id, rita, lease=LEASE)
        submit_review(db, item.id, rita, label="yes")
        label = label_payload(value="no", annotator="bo")
        label["session"]["source"] = "queue-test"
        add_labels(db, [HumanLabelCreate.model_validate(label)], actor="sme:bo")
        arguments = {"id": 7}
        gate = open_gate(
            db,
            action_name="delete_customer",
            arguments=arguments,
            state={},
            callback_url=None,
            evaluation=evaluate(
                "delete_customer", arguments, load_rules(REPO_ROOT / "judges" / "gates.yaml")
            ),
            actor="key:1:agent",
        )
        assert gate.id is not None
        item_id = gate_public(db, gate).queue_item_id
        assert item_id is not None
        claim_item(db, item_id, rita, lease=LEASE)
        decide_gate(db, gate.id, rita, action="reject", reason="customer is VIP")
        assert gone.id is not None
        revoke_key(db, gone.id, actor="key:9:ada")
        activate_judge_version(db, "v-resolved", actor="cli:eng")


def test_export_has_reviews_labels_gates_keys_and_activations_with_actors(
    engine: Engine, database_url: str, tmp_path: Path, judgeloop: Callable[..., Result]
) -> None:
    before = utc_now()
    _review_label_gate_revoke_and_activation(engine)
    output = tmp_path / "audit.jsonl"
    result = judgeloop(database_url, "audit", "export", "--output", str(output))
    assert result.exit_code == 0, result.output
    assert "events to" in result.stdout
    events = [json.loads(line) for line in output.read_text().splitlines()]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert all(
        set(e) == {"id", "at", "actor", "action", "target_type", "target_id", "detail"}
        for e in events
    )
    by_action = {(e["action"], e["actor"]): e for e in events}
    rita = next(e["actor"] for e in events if e["actor"].endswith(":rita"))
    for action, actor in [
        ("queue.review", rita),
        ("labels.create", rita),  # the review's label
        ("labels.create", "sme:bo"),
        ("gate.open", "key:1:agent"),
        ("gate.decide", rita),
        ("key.revoke", "key:9:ada"),
        ("judge_version.activate", "cli:eng"),
    ]:
        assert (action, actor) in by_action, f"no {action} by {actor} in {sorted(by_action)}"
    assert by_action[("gate.decide", rita)]["detail"]["status"] == "rejected"
    assert by_action[("key.revoke", "key:9:ada")]["detail"]["name"] == "gone"
    assert all(before - timedelta(seconds=5) <= _at(e) <= utc_now() for e in events)

    # Filters: an action prefix and a time range, to standard output.
    since = (before - timedelta(seconds=5)).isoformat()
    gates = judgeloop(database_url, "audit", "export", "--action", "gate.*", "--since", since)
    assert [json.loads(line)["action"] for line in gates.stdout.splitlines()] == [
        "gate.open",
        "gate.decide",
    ]
    in_an_hour = (utc_now() + timedelta(hours=1)).isoformat()
    later = judgeloop(database_url, "audit", "export", "--since", in_an_hour)
    assert later.stdout == ""


def _at(event: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(event["at"]))


def test_export_refuses_bad_dates_naming_option_and_value(
    tmp_path: Path, judgeloop: Callable[..., Result]
) -> None:
    for args, option, message in [
        (["--since", "2026-13-01"], "--since", "'2026-13-01' is not an ISO 8601 date"),
        (["--until", "yesterday"], "--until", "'yesterday' is not an ISO 8601 date"),
        (["--since", "2026-11-23", "--until", "2026-11-22"], "--until", "is not after --since"),
    ]:
        result = judgeloop(f"sqlite:///{tmp_path / 'none.db'}", "audit", "export", *args)
        assert result.exit_code == 2
        assert message in result.stderr and option in result.stderr


def test_worker_records_the_escalation_policy_when_it_changes(engine: Engine) -> None:
    def start_worker(policy: EscalationPolicy) -> None:
        worker = Worker(engine=engine, policy=policy, policy_path=Path("judges/escalation.yaml"))
        worker.contexts()
        worker.contexts()  # a reload in the same worker records nothing again

    start_worker(EscalationPolicy())
    start_worker(EscalationPolicy())  # a restart with the same policy: no new event
    stricter = EscalationPolicy.model_validate(
        {"defaults": {"audit_rate": 0.2, "raised_audit_rate": 0.3}}
    )
    start_worker(stricter)
    events = _events(engine, "rules.change")
    assert [e.target_id for e in events] == ["escalation_policy", "escalation_policy"]
    assert events[1].detail["previous_hash"] == events[0].detail["hash"]
    assert events[1].detail["rules"]["defaults"]["audit_rate"] == 0.2
    assert events[1].detail["path"] == "judges/escalation.yaml"
    assert events[1].actor == "pipeline"


def test_gates_api_records_the_gate_rules_it_applies(
    engine: Engine, api: httpx.Client, keys: dict[str, str]
) -> None:
    body = {"action": {"name": "get_order", "arguments": {"id": 1}}, "state": {}}
    for _ in range(2):
        response = api.post("/v1/gates", json=body, headers=auth(keys["pipeline"]))
        assert response.status_code == 201, response.text
    [event] = _events(engine, "rules.change")
    assert (event.actor, event.target_id) == ("api", "gate_rules")
    assert event.detail["hash"] and "rules" in event.detail["rules"]

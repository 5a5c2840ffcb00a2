"""Gate rules (pure) and the gate store: tiers, fail-closed defaults, deciding, expiry, counts."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from judgeloop.gates import GateRules, GateRulesFileError, evaluate, load_rules
from judgeloop.models import ApiKey
from judgeloop.store import (
    ConflictError,
    InvalidInputError,
    claim_item,
    create_key,
    db_session,
    decide_gate,
    expire_gates,
    gate_counts,
    gate_public,
    get_gate,
    list_queue,
    open_gate,
    rejected_gates,
)
from judgeloop.types import utc_now

REPO_ROOT = Path(__file__).resolve().parents[1]
RULES = load_rules(REPO_ROOT / "judges" / "gates.yaml")
LEASE = timedelta(minutes=15)


@pytest.mark.parametrize(
    ("action", "arguments", "tier", "status", "rule"),
    [
        ("get_order", {"id": 3}, "green", "approved", "read_only"),
        ("refund", {"amount": 40}, "yellow", "approved", "refunds"),
        ("issue_refund", {"amount": "€100"}, "yellow", "approved", "refunds"),
        ("refund", {"amount": 180}, "yellow", "pending", "refunds"),
        ("refund", {}, "yellow", "pending", "refunds"),
        ("update_orders", {"records": list(range(10))}, "yellow", "approved", "bulk_updates"),
        ("update_orders", {"records": list(range(51))}, "yellow", "pending", "bulk_updates"),
        ("send_email", {"to": "ops@northwind.example"}, "green", "approved", "internal_email"),
        ("send_email", {"to": "someone@gmail.com"}, "red", "pending", "external_email"),
        ("delete_customer", {"id": 1}, "red", "pending", "deletions"),
        ("launch_rocket", {}, "red", "pending", "unmatched"),
    ],
)
def test_rules_put_actions_in_tiers(
    action: str, arguments: dict[str, object], tier: str, status: str, rule: str
) -> None:
    evaluation = evaluate(action, arguments, RULES)
    assert (evaluation.tier, evaluation.status, evaluation.rule) == (tier, status, rule)
    assert evaluation.explanation


def test_no_rules_means_every_action_is_red() -> None:
    evaluation = evaluate("get_order", {}, GateRules())
    assert evaluation.tier == "red" and evaluation.status == "pending"
    assert "fail closed" in evaluation.explanation


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("rules: [{name: a, action: x, tier: blue}]", "rules.0.tier", "green"),
        ("rules: [{name: a, action: '(', tier: red}]", "rules.0.action", "regular expression"),
        (
            "rules: [{name: a, action: x, tier: yellow, require_human_if: ['amount is big']}]",
            "rules.0.require_human_if",
            "cannot read condition",
        ),
        ("rules: [{name: a, action: x, tier: red, colour: 1}]", "rules.0.colour", "Extra"),
        ("timeouts: {red: {on_expiry: maybe}}", "timeouts.red.on_expiry", "reject"),
        (
            "rules: [{name: a, action: x, tier: red, require_human_if: ['a > 1']}]",
            "rules",
            "only applies to yellow",
        ),
    ],
)
def test_bad_rules_file_names_file_and_field(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(text)
    with pytest.raises(GateRulesFileError) as caught:
        load_rules(path)
    assert str(path) in str(caught.value)
    assert field in str(caught.value) and message in str(caught.value)


def _reviewer(engine: Engine, name: str = "rita") -> ApiKey:
    with db_session(engine) as db:
        key, _plaintext = create_key(db, role="reviewer", name=name, actor="test")
        db.expunge(key)
        return key


def _open(engine: Engine, action: str, arguments: dict[str, object]) -> int:
    with db_session(engine) as db:
        gate = open_gate(
            db,
            action_name=action,
            arguments=arguments,
            state={"messages": [{"role": "user", "content": "refund me"}]},
            callback_url=None,
            evaluation=evaluate(action, arguments, RULES),
            actor="test",
        )
        assert gate.id is not None
        return gate.id


def test_green_gate_is_approved_without_a_queue_item(engine: Engine) -> None:
    gate_id = _open(engine, "get_order", {"id": 1})
    with db_session(engine) as db:
        view = gate_public(db, get_gate(db, gate_id))
    assert view.status == "approved" and view.rule == "read_only" and view.queue_item_id is None


def test_red_gate_is_queued_and_decided_under_a_lease(engine: Engine) -> None:
    reviewer, other = _reviewer(engine), _reviewer(engine, "otto")
    gate_id = _open(engine, "delete_customer", {"id": 7})
    with db_session(engine) as db:
        view = gate_public(db, get_gate(db, gate_id))
        assert view.status == "pending" and view.tier == "red" and view.queue_item_id
        [item] = list_queue(db, reviewer=reviewer)
        assert item.kind == "gate" and item.gate_id == gate_id and item.priority == 450
        with pytest.raises(ConflictError, match="claim"):
            decide_gate(db, gate_id, reviewer, action="approve")
        with pytest.raises(InvalidInputError, match="reason"):
            decide_gate(db, gate_id, reviewer, action="reject")
        claim_item(db, view.queue_item_id, reviewer, lease=LEASE)
        with pytest.raises(ConflictError, match="rita"):
            decide_gate(db, gate_id, other, action="approve")
        gate = decide_gate(db, gate_id, reviewer, action="reject", reason="customer is VIP")
        assert gate.status == "rejected" and gate.reason == "customer is VIP"
        assert gate.decided_at is not None
        with pytest.raises(ConflictError, match="already rejected"):
            decide_gate(db, gate_id, reviewer, action="approve")
        assert list_queue(db, reviewer=reviewer) == []
        [rejected] = rejected_gates(db)
        assert rejected.reason == "customer is VIP" and rejected.reviewer == "rita"
        [count] = gate_counts(db)
        assert (count.tier, count.requests, count.human_decisions) == ("red", 1, 1)


def test_modify_records_new_arguments(engine: Engine) -> None:
    reviewer = _reviewer(engine)
    gate_id = _open(engine, "refund", {"amount": 500})
    with db_session(engine) as db:
        view = gate_public(db, get_gate(db, gate_id))
        assert view.queue_item_id is not None
        claim_item(db, view.queue_item_id, reviewer, lease=LEASE)
        gate = decide_gate(
            db, gate_id, reviewer, action="modify", modified_arguments={"amount": 90}
        )
        assert gate.status == "modified" and gate.modified_arguments == {"amount": 90}


def test_hard_timeout_expires_and_rejects(engine: Engine) -> None:
    reviewer = _reviewer(engine)
    gate_id = _open(engine, "launch_rocket", {})
    with db_session(engine) as db:
        assert expire_gates(db) == 0
        assert expire_gates(db, now=utc_now() + timedelta(hours=5)) == 1
        gate = get_gate(db, gate_id)
        assert gate.status == "expired"
        assert gate.reason == "expired: no reviewer decided within 4 hours; rejected"
        assert list_queue(db, reviewer=reviewer) == []
        assert [r.gate_id for r in rejected_gates(db)] == [gate_id]
        [count] = gate_counts(db)
        assert (count.requests, count.human_decisions) == (1, 0)


def test_soft_timeout_raises_priority_once(engine: Engine) -> None:
    reviewer = _reviewer(engine)
    _open(engine, "refund", {"amount": 500})
    with db_session(engine) as db:
        later = utc_now() + timedelta(minutes=20)
        expire_gates(db, now=later)
        expire_gates(db, now=later)
        [item] = list_queue(db, reviewer=reviewer)
        assert item.priority == 300 and item.reasons[-1] == "gate:soft_timeout"


def test_cli_lists_shows_and_exports_rejected_gates(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    from tests.test_cli import run_cli

    _open(engine, "get_order", {"id": 1})
    gate_id = _open(engine, "launch_rocket", {"target": "moon"})
    with db_session(engine) as db:
        expire_gates(db, now=utc_now() + timedelta(hours=5))
    listed = run_cli(database_url, "gates", "list", "--status", "expired").stdout
    assert "launch_rocket" in listed and "get_order" not in listed
    shown = json.loads(run_cli(database_url, "gates", "show", str(gate_id)).stdout)
    assert shown["status"] == "expired" and shown["rule"] == "unmatched"
    assert run_cli(database_url, "gates", "show", "999", check=False).returncode == 1
    out = tmp_path / "rejected.jsonl"
    run_cli(database_url, "export", "rejected-gates", "--out", str(out))
    [case] = [json.loads(line) for line in out.read_text().splitlines()]
    assert case["action"] == "launch_rocket" and case["arguments"] == {"target": "moon"}
    assert case["reason"].startswith("expired:") and case["state"]["messages"]

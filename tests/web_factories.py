"""Builders for the web UI tests: an escalated session or a gate in the queue, keys, calibration."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from judgeloop.calibration.calibrate import CalibrationResult, TestOutcome
from judgeloop.calibration.calibrators import calibration_metrics as calibration_metrics_of
from judgeloop.calibration.guarantee import fixed_sequence_threshold
from judgeloop.calibration.metrics import agreement_report
from judgeloop.gates import GateRules, evaluate
from judgeloop.models import CriterionCreate, Decision, Judgment, SessionCreate
from judgeloop.store import (
    add_calibration,
    add_criteria,
    add_sessions,
    create_key,
    db_session,
    enqueue,
    gate_public,
    open_gate,
    register_judge_version,
)
from tests.factories import RESOLVED, session_payload

# Distinctive, so a test can tell whether the judge's verdict leaked into a page.
JUDGE_RATIONALE = "JUDGE-RATIONALE-fd81c2: the agent looked the order up and answered."
JUDGE_CONFIDENCE = 0.4321


def queued_session(
    engine: Engine,
    *,
    external_id: str = "s-1",
    criterion: CriterionCreate = RESOLVED,
    judge_label: str = "no",
    reasons: tuple[str, ...] = ("low_confidence",),
    priority: int = 200,
    payload: dict[str, Any] | None = None,
    judge_name: str | None = None,
) -> tuple[int, str]:
    """A session with tool calls, judged ``judge_label`` and escalated: (queue item id, version).

    ``payload`` replaces the default session, ``judge_name`` the judge's name.
    """
    with db_session(engine) as db:
        [(stored_criterion, _)] = add_criteria(db, [criterion], actor="test")
        [(session, _)] = add_sessions(
            db,
            [SessionCreate.model_validate(payload or session_payload(external_id))],
            actor="test",
        )
        version, _ = register_judge_version(
            db,
            version=f"v-{criterion.name}-0001",
            name=judge_name or f"{criterion.name}-judge",
            criterion=stored_criterion,
            spec={"backend": "classifier"},
            actor="test",
        )
        assert session.id is not None and stored_criterion.id is not None
        judgment = Judgment(
            session_id=session.id,
            judge_version_id=version.id,
            criterion_id=stored_criterion.id,
            label=judge_label,
            raw_confidence=JUDGE_CONFIDENCE,
            calibrated_confidence=JUDGE_CONFIDENCE,
            rationale=JUDGE_RATIONALE,
        )
        db.add(judgment)
        db.flush()
        decision = Decision(
            session_id=session.id,
            criterion_id=stored_criterion.id,
            judge_version_id=version.id,
            judgment_id=judgment.id,
            outcome="escalate",
            label=judge_label,
            calibrated_confidence=JUDGE_CONFIDENCE,
            priority=priority,
            reasons=list(reasons),
            detail={"low_confidence": {"calibrated_confidence": JUDGE_CONFIDENCE}},
        )
        db.add(decision)
        db.commit()
        item = enqueue(
            db,
            decision,
            priority=priority,
            reasons=list(reasons),
            reviews_required=1,
            hard_timeout=timedelta(hours=4),
        )
        assert item.id is not None
        return item.id, version.id


def ui_key(engine: Engine, role: str, name: str, *, senior: bool = False) -> str:
    """A new key's plaintext."""
    with db_session(engine) as db:
        _row, plaintext = create_key(db, role=role, name=name, actor="test", senior=senior)
    return plaintext


def calibration_metrics() -> dict[str, Any]:
    """Stored metrics as `judgeloop calibrate` writes them, computed on made-up scores."""
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 120)
    agrees = rng.uniform(0, 1, 120) < confidence
    human = ["yes" if i % 2 else "no" for i in range(120)]
    flipped = {"yes": "no", "no": "yes"}
    predicted = [h if a else flipped[h] for h, a in zip(human, agrees, strict=True)]
    threshold = fixed_sequence_threshold(
        confidence, agrees, alpha=0.25, delta=0.2, min_count=10, candidates=[0.8, 0.7, 0.6]
    )
    auto = threshold.auto(confidence)
    result = CalibrationResult(
        judge="resolved-judge",
        version="v-resolved-0001",
        criterion="resolved",
        method="isotonic",
        alpha=0.25,
        delta=0.2,
        n_calibration=120,
        n_test=120,
        threshold=threshold,
        test=TestOutcome(
            n=120,
            errors=0,
            coverage=float(auto.mean()),
            agreement_auto=float(agrees[auto].mean()) if auto.any() else None,
            agreement_all=float(agrees.mean()),
        ),
        agreement=agreement_report(human, predicted, ["yes", "no"], "binary", n_resamples=100),
        ceiling=None,
        calibration_test=calibration_metrics_of(confidence, agrees),
        coverage_curve=[(0.9, 0.3, 0.95), (0.7, 0.6, 0.9), (0.5, 1.0, 0.75)],
        cost_per_session_usd=0.0,
        latency_p50_ms=1.0,
    )
    return result.model_dump(mode="json")


def calibrate(engine: Engine, version: str) -> None:
    """Store a calibration of ``version`` with full metrics."""
    with db_session(engine) as db:
        add_calibration(
            db,
            actor="test",
            judge_version_id=version,
            label_snapshot="snapshot",
            method="isotonic",
            alpha=0.1,
            delta=0.1,
            threshold=0.7,
            coverage=0.7,
            calibrator={},
            metrics=calibration_metrics(),
        )


DELETE_STATE: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": "Close my account for good, please. I am customer 42."},
        {
            "role": "assistant",
            "content": "I will delete the account.",
            "tool_calls": [
                {"id": "call-7", "name": "delete_customer", "arguments": {"customer_id": 42}}
            ],
        },
    ],
    "context": {"ticket": "T-77", "customer_tier": "gold"},
}


def queued_gate(
    engine: Engine,
    *,
    action_name: str = "delete_customer",
    arguments: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """A gate that no rule matches (red, fail closed) waiting in the queue: (gate id, item id)."""
    arguments = {"customer_id": 42} if arguments is None else arguments
    with db_session(engine) as db:
        gate = open_gate(
            db,
            action_name=action_name,
            arguments=arguments,
            state=DELETE_STATE if state is None else state,
            callback_url=None,
            evaluation=evaluate(action_name, arguments, GateRules()),
            actor="test",
        )
        assert gate.id is not None
        public = gate_public(db, gate)
        db.commit()
    assert public.queue_item_id is not None
    return gate.id, public.queue_item_id

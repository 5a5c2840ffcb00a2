"""Builders for queue tests: criteria, sessions, a judge's judgment and decision, queue items."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session as DbSession

from judgeloop.models import (
    ApiKey,
    Criterion,
    CriterionCreate,
    Decision,
    Judgment,
    QueueItem,
    SessionCreate,
)
from judgeloop.store import (
    add_criteria,
    add_sessions,
    create_key,
    db_session,
    enqueue,
    register_judge_version,
)
from tests.factories import RESOLVED

SAFE = CriterionCreate(
    name="safe", kind="binary", labels=["safe", "unsafe"], description="Is it safe?", safety=True
)
LEASE = timedelta(minutes=15)
HARD_TIMEOUT = timedelta(hours=4)


def session_create(external_id: str, user: str, assistant: str) -> SessionCreate:
    """A two-turn session saying ``user`` and ``assistant``."""
    return SessionCreate.model_validate(
        {
            "source": "queue-test",
            "external_id": external_id,
            "messages": [
                {"role": "user", "content": user},
                {"role": "assistant", "content": assistant},
            ],
        }
    )


def criterion(db: DbSession, spec: CriterionCreate = RESOLVED) -> Criterion:
    """The stored criterion ``spec`` (added when missing)."""
    [(row, _created)] = add_criteria(db, [spec], actor="test")
    return row


def escalated_item(
    db: DbSession,
    *,
    external_id: str = "s-1",
    spec: CriterionCreate = RESOLVED,
    judge_label: str | None = None,
    confidence: float = 0.55,
    reasons: tuple[str, ...] = ("low_confidence",),
    priority: int = 200,
    reviews_required: int = 1,
    hard_timeout: timedelta = HARD_TIMEOUT,
    user: str = "Where is my order?",
    assistant: str = "It shipped yesterday.",
) -> QueueItem:
    """A session, judged with ``judge_label`` and escalated: its queue item."""
    stored_criterion = criterion(db, spec)
    assert stored_criterion.id is not None
    [(session, _created)] = add_sessions(
        db, [session_create(external_id, user, assistant)], actor="test"
    )
    assert session.id is not None
    version, _ = register_judge_version(
        db,
        version=f"v-{spec.name}",
        name=f"{spec.name}-judge",
        criterion=stored_criterion,
        spec={"backend": "classifier"},
        actor="test",
    )
    judgment = Judgment(
        session_id=session.id,
        judge_version_id=version.id,
        criterion_id=stored_criterion.id,
        label=judge_label or spec.labels[0],
        raw_confidence=confidence,
        calibrated_confidence=confidence,
        rationale="The judge's secret reasoning.",
    )
    db.add(judgment)
    db.flush()
    decision = Decision(
        session_id=session.id,
        criterion_id=stored_criterion.id,
        judge_version_id=version.id,
        judgment_id=judgment.id,
        outcome="escalate",
        label=judgment.label,
        calibrated_confidence=confidence,
        priority=priority,
        reasons=list(reasons),
        detail={"low_confidence": {"calibrated_confidence": confidence, "threshold": 0.8}},
    )
    db.add(decision)
    db.commit()
    return enqueue(
        db,
        decision,
        priority=priority,
        reasons=list(reasons),
        reviews_required=reviews_required,
        hard_timeout=hard_timeout,
    )


def reviewer(
    engine: Engine, name: str, *, senior: bool = False, role: str = "reviewer"
) -> tuple[ApiKey, str]:
    """A reviewer key (the row, detached, and its plaintext)."""
    with db_session(engine) as db:
        row, plaintext = create_key(db, role=role, name=name, actor="test", senior=senior)
        db.expunge(row)
    return row, plaintext

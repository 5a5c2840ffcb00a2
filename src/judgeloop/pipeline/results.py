"""Decisions as the API returns them: with criterion names, raw confidence and queue item."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session as DbSession
from sqlmodel import col, select

from judgeloop.models import Criterion, Decision, DecisionPublic, Judgment, QueueItem
from judgeloop.store.decisions import decisions_of_sessions


def decision_views(db: DbSession, session_ids: Sequence[int]) -> dict[int, list[DecisionPublic]]:
    """Every decision on ``session_ids``, by session id (sessions without any map to [])."""
    decisions = decisions_of_sessions(db, session_ids)
    names = {c.id: c.name for c in db.exec(select(Criterion))}
    judgment_ids = [d.judgment_id for d in decisions if d.judgment_id is not None]
    raw = {
        j.id: j.raw_confidence
        for j in db.exec(select(Judgment).where(col(Judgment.id).in_(judgment_ids)))
    }
    decision_ids = [d.id for d in decisions]
    queued = {
        q.decision_id: q.id
        for q in db.exec(select(QueueItem).where(col(QueueItem.decision_id).in_(decision_ids)))
    }
    views: dict[int, list[DecisionPublic]] = {sid: [] for sid in session_ids}
    for decision in decisions:
        views.setdefault(decision.session_id, []).append(
            _view(decision, names, raw.get(decision.judgment_id), queued.get(decision.id))
        )
    return views


def _view(
    decision: Decision,
    names: dict[int | None, str],
    raw_confidence: float | None,
    queue_item_id: int | None,
) -> DecisionPublic:
    assert decision.id is not None
    return DecisionPublic(
        id=decision.id,
        session_id=decision.session_id,
        criterion=names.get(decision.criterion_id, ""),
        judge_version_id=decision.judge_version_id,
        outcome=decision.outcome,
        escalate=decision.outcome == "escalate",
        label=decision.label,
        confidence=raw_confidence,
        calibrated_confidence=decision.calibrated_confidence,
        reasons=list(decision.reasons),
        priority=decision.priority,
        queue_item_id=queue_item_id,
        created_at=decision.created_at,
    )

"""POST /v1/judge: one session, one judge version, a verdict and an escalate flag."""

from fastapi import APIRouter, Request
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from judgeloop.api.deps import PipelineKey, actor_of
from judgeloop.models import JudgeRequest, JudgeResponse, JudgeVersion
from judgeloop.pipeline.results import decision_views
from judgeloop.store import NotFoundError, add_sessions, db_session
from judgeloop.store.decisions import judgments_for

router = APIRouter(prefix="/v1/judge", tags=["judge"])


def resolve_version(db: DbSession, reference: str) -> JudgeVersion:
    """A version by id; else by judge name, its active version, else its newest."""
    row = db.get(JudgeVersion, reference)
    if row is not None:
        return row
    named = list(
        db.exec(
            select(JudgeVersion)
            .where(JudgeVersion.name == reference)
            .order_by(col(JudgeVersion.active).desc(), col(JudgeVersion.created_at).desc())
        )
    )
    if not named:
        raise NotFoundError(f"no judge version or judge named {reference!r} is registered")
    return named[0]


@router.post("", response_model=JudgeResponse)
def judge_one(request: Request, key: PipelineKey, payload: JudgeRequest) -> JudgeResponse:
    """Store the session (once), judge it with the named version, apply the escalation policy.

    An escalation is queued for reviewers like any other. Calling again with the same session
    and version returns the first verdict: judgments and decisions are stored exactly once.
    """
    engine = request.app.state.engine
    with db_session(engine) as db:
        version = resolve_version(db, payload.judge)
        row, _created = add_sessions(db, [payload.session], actor=actor_of(key))[0]
        assert row.id is not None
        session_id, version_id, name = row.id, version.id, version.name
    worker = request.app.state.worker
    worker.process([session_id], [worker.context_for(version_id)])
    with db_session(engine) as db:
        decision = next(
            d
            for d in decision_views(db, [session_id])[session_id]
            if d.judge_version_id == version_id
        )
        judgment = judgments_for(db, [session_id], version_id)[session_id]
    return JudgeResponse(
        session_id=session_id,
        judge=name,
        judge_version_id=version_id,
        label=decision.label,
        confidence=decision.confidence,
        calibrated_confidence=decision.calibrated_confidence,
        escalate=decision.escalate,
        reasons=decision.reasons,
        decision_id=decision.id,
        queue_item_id=decision.queue_item_id,
        rationale=judgment.rationale,
        error=judgment.error,
    )

"""Sessions: post one or a batch (stored once per source and external_id), read one."""

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status

from judgeloop.api.deps import PipelineKey, RowId, SessionDep, SettingsDep, actor_of
from judgeloop.models import (
    Session,
    SessionAccepted,
    SessionCreate,
    SessionPublic,
    SessionsAccepted,
)
from judgeloop.pipeline.results import decision_views
from judgeloop.store import add_sessions, db_session, get_session
from judgeloop.store.decisions import PENDING

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


def _accepted(row: Session, created: bool) -> SessionAccepted:
    assert row.id is not None
    return SessionAccepted(
        id=row.id, source=row.source, external_id=row.external_id, created=created
    )


@router.post(
    "",
    response_model=SessionAccepted | SessionsAccepted,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Already stored: the existing session is returned."}},
)
def post_sessions(
    request: Request,
    db: SessionDep,
    key: PipelineKey,
    settings: SettingsDep,
    response: Response,
    payload: Annotated[SessionCreate | list[SessionCreate], Body()],
    wait: bool = Query(
        default=False,
        description="Score with every active judge before answering; the answer then "
        "carries each decision (escalate or auto, with its reasons).",
    ),
) -> SessionAccepted | SessionsAccepted:
    """Accept one session or a batch; a (source, external_id) already stored is not re-stored.

    New sessions are durable at once and queued for the scoring worker. Answers 201 when
    anything new was stored, 200 when everything was already there.
    """
    batch = payload if isinstance(payload, list) else [payload]
    if len(batch) > settings.max_batch_size:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"batch of {len(batch)} sessions exceeds the limit of "
            f"{settings.max_batch_size} (JUDGELOOP_MAX_BATCH_SIZE)",
        )
    if not batch:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["body"], "msg": "empty batch", "type": "too_short"}],
        )
    results = add_sessions(db, batch, actor=actor_of(key), pipeline_status=PENDING)
    accepted = [_accepted(row, created) for row, created in results]
    if not wait:  # on PostgreSQL: jobs for the worker processes (a crash here is swept up)
        request.app.state.worker.enqueue([a.id for a in accepted if a.created])
    else:
        db.close()  # the pipeline opens its own sessions; this one must not hold a lock
        ids = [a.id for a in accepted]
        request.app.state.judging.process(ids)
        with db_session(request.app.state.engine) as fresh:
            views = decision_views(fresh, ids)
        for item in accepted:
            item.decisions = views.get(item.id, [])
    created_count = sum(a.created for a in accepted)
    if created_count == 0:
        response.status_code = status.HTTP_200_OK
    if isinstance(payload, list):
        return SessionsAccepted(data=accepted, count=len(accepted), created=created_count)
    return accepted[0]


@router.get("/{session_id}", response_model=SessionPublic)
def read_session(db: SessionDep, key: PipelineKey, session_id: RowId) -> SessionPublic:
    """Return one stored session with its messages and metadata."""
    row = get_session(db, session_id)
    assert row.id is not None
    return SessionPublic.model_validate(
        {
            "id": row.id,
            "source": row.source,
            "external_id": row.external_id,
            "messages": row.messages,
            "metadata": row.session_metadata,
            "content_hash": row.content_hash,
            "created_at": row.created_at,
        }
    )

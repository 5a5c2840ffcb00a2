"""Human labels: appended, checked against their criterion and session."""

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Response, status
from sqlmodel import Session as DbSession

from judgeloop.api.deps import EngineerKey, SessionDep, SettingsDep, actor_of
from judgeloop.models import (
    Criterion,
    HumanLabel,
    HumanLabelCreate,
    HumanLabelPublic,
    HumanLabelsPublic,
)
from judgeloop.store import add_labels

router = APIRouter(prefix="/v1/labels", tags=["labels"])


def _public(db: DbSession, row: HumanLabel, created: bool) -> HumanLabelPublic:
    criterion = db.get(Criterion, row.criterion_id)
    assert row.id is not None and criterion is not None
    return HumanLabelPublic(
        id=row.id,
        session_id=row.session_id,
        criterion=criterion.name,
        value=row.value,
        annotator=row.annotator,
        rationale=row.rationale,
        correction=row.correction,
        source=row.source,
        created_at=row.created_at,
        created=created,
    )


@router.post("", response_model=HumanLabelsPublic, status_code=status.HTTP_201_CREATED)
def post_labels(
    db: SessionDep,
    key: EngineerKey,
    settings: SettingsDep,
    response: Response,
    payload: Annotated[HumanLabelCreate | list[HumanLabelCreate], Body()],
) -> HumanLabelsPublic:
    """Append one label or a batch, all or none; 422 names unknown criteria and allowed values."""
    batch = payload if isinstance(payload, list) else [payload]
    if len(batch) > settings.max_batch_size:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"batch of {len(batch)} labels exceeds the limit of {settings.max_batch_size}",
        )
    results = add_labels(db, batch, actor=actor_of(key))
    data = [_public(db, row, created) for row, created in results]
    created_count = sum(item.created for item in data)
    if created_count == 0:
        response.status_code = status.HTTP_200_OK
    return HumanLabelsPublic(data=data, count=len(data), created=created_count)

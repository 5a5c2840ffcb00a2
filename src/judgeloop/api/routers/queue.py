"""The review queue for reviewers: list, claim (a lease), release, blind view, review."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import OperationalError
from sqlmodel import Session as DbSession

from judgeloop.api.deps import INT_MAX, INT_MIN, ReviewerKey, RowId, SessionDep, SettingsDep
from judgeloop.config import Settings
from judgeloop.models import QueueItem
from judgeloop.store import (
    QueueLoad,
    ReviewItemView,
    ReviewOutcome,
    claim_item,
    claim_next,
    expire_leases,
    item_for_reviewer,
    list_criteria,
    list_queue,
    queue_load,
    release_item,
    submit_review,
)

router = APIRouter(prefix="/v1/queue", tags=["queue"])


class QueueItemPublic(BaseModel):
    """A queue item as listed: why it is here, how urgent, who holds it."""

    id: int
    kind: str
    criterion: str | None
    session_id: int | None
    decision_id: int | None
    priority: int
    reasons: list[str]
    status: str
    reviews_required: int
    claimed_by: str | None
    claimed_at: datetime | None
    lease_expires_at: datetime | None
    due_at: datetime | None
    overdue_at: datetime | None
    senior_only: bool
    cluster: int | None
    created_at: datetime


class QueueItemsPublic(BaseModel):
    """A page of the queue, most urgent first."""

    data: list[QueueItemPublic]
    count: int


class QueueLoadsPublic(BaseModel):
    """Waiting items by criterion and reason."""

    data: list[QueueLoad]
    count: int


class ReviewCreate(BaseModel):
    """A reviewer's label for the item they hold."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=512, description="One of the criterion's labels.")
    rationale: str = Field(default="", max_length=20_000, description="Why this label.")
    correction: str | None = Field(
        default=None, max_length=20_000, description="A better answer, if the reviewer has one."
    )

    @field_validator("label", mode="before")
    @classmethod
    def _numbers_as_strings(cls, value: object) -> object:
        # Ordinal labels (tone 1-5) may arrive as JSON numbers; labels are strings.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


ItemFilters = Annotated[str | None, Query()]
ClusterQuery = Annotated[int | None, Query(ge=INT_MIN, le=INT_MAX)]
# Everything not done; adjudication items are senior-only, so others never see them anyway.
WAITING = ("open", "claimed", "adjudication")


def _lease(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.review_lease_minutes)


def _apply_timeouts(db: DbSession) -> None:
    """Expire leases and mark overdue items now, so timeouts need no scheduler."""
    try:
        expire_leases(db)
    except OperationalError:
        # Two requests expiring the same rows at once may deadlock on PostgreSQL; one of them
        # did the work, and claims ignore dead leases anyway.
        db.rollback()


def _criterion_names(db: DbSession) -> dict[int, str]:
    return {row.id: row.name for row in list_criteria(db) if row.id is not None}


def _public(item: QueueItem, criterion_names: dict[int, str]) -> QueueItemPublic:
    assert item.id is not None
    return QueueItemPublic(
        id=item.id,
        kind=item.kind,
        criterion=criterion_names.get(item.criterion_id or 0),
        session_id=item.session_id,
        decision_id=item.decision_id,
        priority=item.priority,
        reasons=list(item.reasons),
        status=item.status,
        reviews_required=item.reviews_required,
        claimed_by=item.claimed_by,
        claimed_at=item.claimed_at,
        lease_expires_at=item.lease_expires_at,
        due_at=item.due_at,
        overdue_at=item.overdue_at,
        senior_only=item.senior_only,
        cluster=item.cluster,
        created_at=item.created_at,
    )


@router.get("", response_model=QueueItemsPublic)
def read_queue(
    db: SessionDep,
    key: ReviewerKey,
    criterion: ItemFilters = None,
    reason: Annotated[
        str | None, Query(description="A reason or its prefix: safety matches safety:rule:x.")
    ] = None,
    cluster: ClusterQuery = None,
    status_: Annotated[
        list[str] | None,
        Query(
            alias="status",
            description="Any of open, claimed, adjudication, done; default: all but done.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> QueueItemsPublic:
    """Items this reviewer may work on, most urgent first; senior-only items for seniors."""
    _apply_timeouts(db)
    names = _criterion_names(db)
    items = list_queue(
        db,
        reviewer=key,
        criterion=criterion,
        reason=reason,
        cluster=cluster,
        status=tuple(status_) if status_ else WAITING,
        limit=limit,
    )
    data = [_public(item, names) for item in items]
    return QueueItemsPublic(data=data, count=len(data))


@router.get("/load", response_model=QueueLoadsPublic)
def read_queue_load(db: SessionDep, key: ReviewerKey) -> QueueLoadsPublic:
    """Items not yet done, by criterion and reason, with the oldest one's age."""
    _apply_timeouts(db)
    data = queue_load(db)
    return QueueLoadsPublic(data=data, count=len(data))


@router.post(
    "/claim",
    response_model=QueueItemPublic,
    responses={204: {"description": "Nothing this reviewer may claim."}},
)
def claim_next_item(
    db: SessionDep,
    key: ReviewerKey,
    settings: SettingsDep,
    criterion: ItemFilters = None,
    reason: ItemFilters = None,
    cluster: ClusterQuery = None,
) -> QueueItemPublic | Response:
    """Claim the most urgent item matching the filters (one already held comes first)."""
    _apply_timeouts(db)
    names = _criterion_names(db)
    item = claim_next(
        db, key, lease=_lease(settings), criterion=criterion, reason=reason, cluster=cluster
    )
    if item is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return _public(item, names)


@router.post("/{item_id}/claim", response_model=QueueItemPublic)
def claim_one_item(
    db: SessionDep, key: ReviewerKey, settings: SettingsDep, item_id: RowId
) -> QueueItemPublic:
    """Take a lease on one item; 409 says who holds it or why it is not yours to take."""
    _apply_timeouts(db)
    names = _criterion_names(db)
    return _public(claim_item(db, item_id, key, lease=_lease(settings)), names)


@router.post("/{item_id}/release", response_model=QueueItemPublic)
def release_one_item(db: SessionDep, key: ReviewerKey, item_id: RowId) -> QueueItemPublic:
    """Give a claimed item back to the pool."""
    names = _criterion_names(db)
    return _public(release_item(db, item_id, key), names)


@router.get("/{item_id}", response_model=ReviewItemView)
def read_item(db: SessionDep, key: ReviewerKey, item_id: RowId) -> ReviewItemView:
    """The session, rubric and reasons; the judge's verdict only after one's own review."""
    return item_for_reviewer(db, item_id, key)


@router.post("/{item_id}/reviews", response_model=ReviewOutcome, status_code=201)
def post_review(
    db: SessionDep, key: ReviewerKey, item_id: RowId, review: ReviewCreate
) -> ReviewOutcome:
    """Submit a label for the item one holds; the answer reveals the judge's verdict."""
    return submit_review(
        db,
        item_id,
        key,
        label=review.label,
        rationale=review.rationale,
        correction=review.correction,
    )

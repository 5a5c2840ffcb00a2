"""What reviewers and dashboards read from the queue: blind item views, load, verdicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from judgeloop.models import (
    ApiKey,
    Criterion,
    CriterionPublic,
    Decision,
    Judgment,
    QueueItem,
    Review,
    Session,
    SessionPublic,
)
from judgeloop.store.errors import NotFoundError
from judgeloop.types import utc_now


class JudgeVerdict(BaseModel):
    """What the judge said, revealed to a reviewer only after their own review."""

    judge_version_id: str | None
    label: str | None
    calibrated_confidence: float | None
    rationale: str = ""
    error: str | None = None


class ReviewPublic(BaseModel):
    """One review of an item, as shown to its reviewers afterwards and to the adjudicator."""

    id: int
    reviewer: str
    label: str | None
    rationale: str
    correction: str | None
    is_adjudication: bool
    created_at: datetime


class ReviewOutcome(BaseModel):
    """What submitting a review did, and the judge's verdict now that it may be shown."""

    item_id: int
    status: str = Field(description="The item's status now: open, adjudication or done.")
    review_id: int
    label_id: int = Field(description="The HumanLabel this review became.")
    label_source: str = Field(description="review, audit or adjudication.")
    is_adjudication: bool
    judge: JudgeVerdict | None
    agrees_with_judge: bool | None


class ReviewItemView(BaseModel):
    """An item as one reviewer may see it: blind to the judge until they have reviewed it."""

    id: int
    kind: str
    status: str
    priority: int
    reasons: list[str]
    reviews_required: int
    reviews_done: int
    senior_only: bool
    cluster: int | None
    claimed_by: str | None
    lease_expires_at: datetime | None
    due_at: datetime | None
    overdue_at: datetime | None
    created_at: datetime
    held_by_you: bool = Field(description="This reviewer holds a live lease on the item.")
    reviewed_by_you: bool
    adjudication: bool = Field(description="The next review settles a disagreement.")
    session: SessionPublic | None
    criterion: CriterionPublic | None
    judge: JudgeVerdict | None = Field(description="Only once this reviewer has reviewed it.")
    reason_detail: dict[str, Any] = Field(
        default_factory=dict, description="What each reason measured; only after reviewing."
    )
    reviews: list[ReviewPublic] = Field(
        default_factory=list,
        description="Earlier reviews: after one's own review, or for the adjudicator.",
    )


class QueueLoad(BaseModel):
    """Items not yet done, for one criterion and one reason."""

    criterion: str | None
    reason: str
    items: int
    claimed: int
    overdue: int
    oldest_created_at: datetime
    oldest_age_seconds: float


def reviewer_name(reviewer: ApiKey) -> str:
    """How a reviewer appears on claims, reviews and human labels."""
    return reviewer.name


def get_item(db: DbSession, item_id: int) -> QueueItem:
    """The item as stored now (not as this session last saw it), or NotFoundError."""
    item = db.get(QueueItem, item_id, populate_existing=True)
    if item is None:
        raise NotFoundError(f"queue item {item_id} does not exist")
    return item


def end_read(db: DbSession) -> None:
    """End the read transaction, keeping the loaded rows usable."""
    # On SQLite every transaction holds the write lock (BEGIN IMMEDIATE); a read must not keep
    # it while the caller renders a page. Commit, unlike rollback, leaves loaded rows usable.
    db.commit()


def judge_verdict(db: DbSession, item: QueueItem) -> JudgeVerdict | None:
    """The verdict behind an item: the decision's label and confidence, the judgment's why."""
    decision = db.get(Decision, item.decision_id) if item.decision_id else None
    if decision is None:
        return None
    judgment = db.get(Judgment, decision.judgment_id) if decision.judgment_id else None
    return JudgeVerdict(
        judge_version_id=decision.judge_version_id,
        label=decision.label if decision.label is not None else judgment and judgment.label,
        calibrated_confidence=(
            decision.calibrated_confidence
            if decision.calibrated_confidence is not None
            else judgment and judgment.calibrated_confidence
        ),
        rationale=judgment.rationale if judgment else "",
        error=judgment.error if judgment else None,
    )


def item_for_reviewer(db: DbSession, item_id: int, reviewer: ApiKey) -> ReviewItemView:
    """The item with its session and rubric; the judge's verdict only after one's own review.

    Earlier reviews are shown to those who have reviewed the item, and to the senior who is
    to adjudicate it, never to an independent second reviewer.
    """
    now = utc_now()
    name = reviewer_name(reviewer)
    item = get_item(db, item_id)
    reviews = list(
        db.exec(select(Review).where(Review.queue_item_id == item_id).order_by(col(Review.id)))
    )
    first_round = [review for review in reviews if not review.is_adjudication]
    reviewed_by_you = any(review.reviewer == name for review in reviews)
    adjudication = item.status != "done" and len(first_round) >= item.reviews_required
    session_row = db.get(Session, item.session_id) if item.session_id else None
    criterion_row = db.get(Criterion, item.criterion_id) if item.criterion_id else None
    decision = db.get(Decision, item.decision_id) if item.decision_id else None
    revealed = reviewed_by_you
    show_reviews = revealed or (adjudication and reviewer.senior)
    view = ReviewItemView(
        id=item_id,
        kind=item.kind,
        status=item.status,
        priority=item.priority,
        reasons=list(item.reasons),
        reviews_required=item.reviews_required,
        reviews_done=len(first_round),
        senior_only=item.senior_only,
        cluster=item.cluster,
        claimed_by=item.claimed_by,
        lease_expires_at=item.lease_expires_at,
        due_at=item.due_at,
        overdue_at=item.overdue_at,
        created_at=item.created_at,
        held_by_you=item.status == "claimed"
        and item.claimed_by == name
        and item.lease_expires_at is not None
        and item.lease_expires_at > now,
        reviewed_by_you=reviewed_by_you,
        adjudication=adjudication,
        session=session_public(session_row),
        criterion=(
            CriterionPublic.model_validate(criterion_row, from_attributes=True)
            if criterion_row
            else None
        ),
        judge=judge_verdict(db, item) if revealed else None,
        reason_detail=dict(decision.detail) if revealed and decision else {},
        reviews=[ReviewPublic.model_validate(review, from_attributes=True) for review in reviews]
        if show_reviews
        else [],
    )
    end_read(db)
    return view


def session_public(row: Session | None) -> SessionPublic | None:
    """A stored session in the shape the API returns."""
    if row is None:
        return None
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


def queue_load(db: DbSession) -> list[QueueLoad]:
    """Items not done, by criterion and reason (an item counts under each of its reasons)."""
    now = utc_now()
    rows = db.exec(
        select(QueueItem, Criterion.name)
        .join(Criterion, col(Criterion.id) == col(QueueItem.criterion_id), isouter=True)
        .where(col(QueueItem.status) != "done")
    ).all()
    groups: dict[tuple[str | None, str], list[QueueItem]] = {}
    for item, name in rows:
        for reason in item.reasons or ["(none)"]:
            groups.setdefault((name, reason), []).append(item)
    end_read(db)
    loads = []
    for (criterion, reason), items in sorted(
        groups.items(), key=lambda entry: (entry[0][0] or "", entry[0][1])
    ):
        oldest = min(item.created_at for item in items)
        loads.append(
            QueueLoad(
                criterion=criterion,
                reason=reason,
                items=len(items),
                claimed=sum(item.status == "claimed" for item in items),
                overdue=sum(item.overdue_at is not None for item in items),
                oldest_created_at=oldest,
                oldest_age_seconds=(now - oldest).total_seconds(),
            )
        )
    return loads

"""The review queue: escalated cases, claim leases, independent reviews and adjudication.

An item's life: ``open`` → ``claimed`` (a lease) → reviewed → ``done``; a safety item needs
two independent reviews (after the first it returns to ``open`` for someone else), and when
they disagree it goes to ``adjudication`` for a senior reviewer. A lease that runs out (soft
timeout) returns the item to the pool; an item not done by its ``due_at`` (hard timeout) is
marked overdue and routed to senior reviewers.

Claims are decided by the database, not by a prior read: one conditional UPDATE, and its
row count says whether this reviewer won. That holds across threads, processes and machines.

A reviewer is known by the name of their API key: keys that share a name count as one person,
so nobody reviews an item twice by switching keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from judgeloop.models import (
    ApiKey,
    Criterion,
    Decision,
    HumanLabelCreate,
    QueueItem,
    Review,
    Session,
    SessionRef,
)
from judgeloop.store.audit import record_event
from judgeloop.store.drift import observe_agreement
from judgeloop.store.errors import ConflictError, InvalidInputError, NotFoundError, Problem
from judgeloop.store.labels import add_labels
from judgeloop.store.queue_clusters import assign_clusters
from judgeloop.store.queue_views import (
    JudgeVerdict,
    QueueLoad,
    ReviewItemView,
    ReviewOutcome,
    ReviewPublic,
    end_read,
    get_item,
    item_for_reviewer,
    judge_verdict,
    queue_load,
    reviewer_name,
)
from judgeloop.store.upsert import insert_ignoring_conflicts
from judgeloop.types import utc_now

__all__ = [
    "QUEUE_STATUSES",
    "JudgeVerdict",
    "QueueLoad",
    "ReviewItemView",
    "ReviewOutcome",
    "ReviewPublic",
    "assign_clusters",
    "claim_item",
    "claim_next",
    "enqueue",
    "expire_leases",
    "item_for_reviewer",
    "list_queue",
    "queue_load",
    "release_item",
    "reviewer_name",
    "submit_review",
]

QUEUE_STATUSES = ("open", "claimed", "adjudication", "done")
# Candidates fetched per round by claim_next; losing them all to others triggers another round.
_CLAIM_NEXT_BATCH = 10
_CLAIM_NEXT_ROUNDS = 5


def _actor(reviewer: ApiKey) -> str:
    return f"key:{reviewer.id}:{reviewer.name}"


# --------------------------------------------------------------------------- conditions


def _reviewed_by(name: str) -> sa.ColumnElement[bool]:
    """The item (correlated) has a review by ``name``."""
    return (
        select(col(Review.id))
        .where(col(Review.queue_item_id) == col(QueueItem.id), col(Review.reviewer) == name)
        .exists()
    )


def _claimable(name: str, now: datetime) -> sa.ColumnElement[bool]:
    """Open for a claim by ``name``: waiting, or claimed with a dead lease, or ``name``'s own."""
    return sa.or_(
        col(QueueItem.status).in_(("open", "adjudication")),
        sa.and_(
            col(QueueItem.status) == "claimed",
            sa.or_(col(QueueItem.lease_expires_at) < now, col(QueueItem.claimed_by) == name),
        ),
    )


def _status_when_unclaimed() -> sa.ColumnElement[str]:
    """Where a released item goes back to: adjudication once its reviews are all in."""
    reviews_in = (
        select(sa.func.count(col(Review.id)))
        .where(
            col(Review.queue_item_id) == col(QueueItem.id),
            sa.not_(col(Review.is_adjudication)),
        )
        .scalar_subquery()
    )
    return sa.case((reviews_in >= col(QueueItem.reviews_required), "adjudication"), else_="open")


_UNCLAIMED: dict[str, Any] = {"claimed_by": None, "claimed_at": None, "lease_expires_at": None}


def _filters(
    db: DbSession, criterion: str | None, reason: str | None, cluster: int | None
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if criterion is not None:
        criterion_id = db.exec(select(Criterion.id).where(Criterion.name == criterion)).first()
        if criterion_id is None:
            known = ", ".join(db.exec(select(Criterion.name).order_by(Criterion.name)))
            raise InvalidInputError(
                [Problem(("criterion",), f"unknown criterion {criterion!r}; known: {known}")]
            )
        conditions.append(col(QueueItem.criterion_id) == criterion_id)
    if reason is not None:
        # Reasons are a JSON list of strings; "safety" also matches "safety:rule:payments".
        reasons_text = sa.cast(col(QueueItem.reasons), sa.Text)
        conditions.append(
            sa.or_(
                reasons_text.contains(f'"{reason}"', autoescape=True),
                reasons_text.contains(f'"{reason}:', autoescape=True),
            )
        )
    if cluster is not None:
        conditions.append(col(QueueItem.cluster) == cluster)
    return conditions


def _ordered() -> tuple[Any, ...]:
    return (
        col(QueueItem.priority).desc(),
        col(QueueItem.created_at).asc(),
        col(QueueItem.id).asc(),
    )


# --------------------------------------------------------------------------- writing


def enqueue(
    db: DbSession,
    decision: Decision,
    *,
    priority: int,
    reasons: list[str],
    reviews_required: int,
    hard_timeout: timedelta,
) -> QueueItem:
    """Queue an escalated decision for review, once: enqueuing it again returns the same item.

    The item is due ``hard_timeout`` from now; past that it is overdue and goes to seniors.
    """
    if decision.id is None:
        raise ValueError("store the decision before enqueuing it")
    if reviews_required < 1:
        raise ValueError(f"reviews_required must be at least 1, got {reviews_required}")
    now = utc_now()
    row = {
        "kind": "judgment",
        "session_id": decision.session_id,
        "criterion_id": decision.criterion_id,
        "decision_id": decision.id,
        "gate_id": None,
        "priority": priority,
        "reasons": list(reasons),
        "status": "open",
        "reviews_required": reviews_required,
        "claimed_by": None,
        "claimed_at": None,
        "lease_expires_at": None,
        "due_at": now + hard_timeout,
        "overdue_at": None,
        "senior_only": False,
        "cluster": None,
        "created_at": now,
    }
    created = insert_ignoring_conflicts(db, QueueItem, [row], ["decision_id"])
    if created:
        record_event(
            db,
            actor="pipeline",
            action="queue.enqueue",
            target_type="queue_item",
            target_id=str(next(iter(created))),
            detail={"decision_id": decision.id, "reasons": list(reasons), "priority": priority},
        )
    db.commit()
    item = db.exec(
        select(QueueItem)
        .where(QueueItem.decision_id == decision.id)
        .execution_options(populate_existing=True)
    ).one()
    return item


def claim_item(db: DbSession, item_id: int, reviewer: ApiKey, *, lease: timedelta) -> QueueItem:
    """Take a lease on one item; ConflictError says why when it cannot be had.

    Claiming an item one already holds renews the lease.
    """
    now = utc_now()
    name = reviewer_name(reviewer)
    conditions = [col(QueueItem.id) == item_id, _claimable(name, now), sa.not_(_reviewed_by(name))]
    if not reviewer.senior:
        conditions.append(sa.not_(col(QueueItem.senior_only)))
    statement = (
        sa.update(QueueItem)
        .where(*conditions)
        .values(status="claimed", claimed_by=name, claimed_at=now, lease_expires_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    # The database re-checks the conditions on the row it locks, so of many concurrent claims
    # exactly one changes a row; the others see the winner's lease and count zero.
    if db.exec(statement).rowcount != 1:
        db.rollback()
        raise _claim_refusal(db, item_id, reviewer, now)
    record_event(
        db,
        actor=_actor(reviewer),
        action="queue.claim",
        target_type="queue_item",
        target_id=str(item_id),
        detail={"lease_expires_at": (now + lease).isoformat()},
    )
    db.commit()
    return get_item(db, item_id)


def _claim_refusal(db: DbSession, item_id: int, reviewer: ApiKey, now: datetime) -> Exception:
    item = db.get(QueueItem, item_id, populate_existing=True)
    name = reviewer_name(reviewer)
    reviewed = db.exec(
        select(Review.id).where(Review.queue_item_id == item_id, Review.reviewer == name)
    ).first()
    db.rollback()
    if item is None:
        return NotFoundError(f"queue item {item_id} does not exist")
    if item.status == "done":
        return ConflictError(f"queue item {item_id} is already done")
    if reviewed is not None:
        return ConflictError(
            f"{name!r} already reviewed queue item {item_id}; its next review must come from "
            "a different reviewer"
        )
    if item.senior_only and not reviewer.senior:
        why = "overdue" if item.overdue_at is not None else "awaiting adjudication"
        return ConflictError(f"queue item {item_id} is {why}: senior reviewers only")
    if item.status == "claimed" and item.lease_expires_at and item.lease_expires_at >= now:
        return ConflictError(
            f"queue item {item_id} is claimed by {item.claimed_by!r} until "
            f"{item.lease_expires_at.isoformat(timespec='seconds')}"
        )
    return ConflictError(f"queue item {item_id} changed while claiming it; try again")


def claim_next(
    db: DbSession,
    reviewer: ApiKey,
    *,
    lease: timedelta,
    criterion: str | None = None,
    reason: str | None = None,
    cluster: int | None = None,
) -> QueueItem | None:
    """Claim the most urgent item this reviewer may take, or return None when there is none.

    An item the reviewer already holds comes first (its lease is renewed), so one person
    never collects a pile of leases.
    """
    name = reviewer_name(reviewer)
    for _round in range(_CLAIM_NEXT_ROUNDS):
        candidates = _claim_candidates(db, reviewer, name, criterion, reason, cluster)
        db.rollback()
        if not candidates:
            return None
        for item_id in candidates:
            try:
                return claim_item(db, item_id, reviewer, lease=lease)
            except (ConflictError, NotFoundError):
                continue  # someone else was quicker; try the next one
    return None


def _claim_candidates(
    db: DbSession,
    reviewer: ApiKey,
    name: str,
    criterion: str | None,
    reason: str | None,
    cluster: int | None,
) -> list[int]:
    """Up to ``_CLAIM_NEXT_BATCH`` item ids to try: the reviewer's own claim, then by urgency.

    One ordered query per status and routing (see ``_in_claim_order``), merged here: a single
    query ordered across several statuses would sort every waiting item on each claim.
    """
    now = utc_now()
    common = [sa.not_(_reviewed_by(name)), *_filters(db, criterion, reason, cluster)]
    own: list[tuple[int, datetime, int]] = []
    others: list[tuple[int, datetime, int]] = []
    for senior_only in (False, True) if reviewer.senior else (False,):
        mine = [col(QueueItem.claimed_by) == name, *common]
        own += _in_claim_order(db, "claimed", senior_only, mine, limit=1)
        for status, lease_ran_out in _takeable(now):
            others += _in_claim_order(db, status, senior_only, [*lease_ran_out, *common])
    first = [item_id for _priority, _created, item_id in sorted(own)[:1]]
    rest = [item_id for _priority, _created, item_id in sorted(others) if item_id not in first]
    return [*first, *rest][:_CLAIM_NEXT_BATCH]


def _in_claim_order(
    db: DbSession,
    status: str,
    senior_only: bool,
    conditions: list[sa.ColumnElement[bool]],
    limit: int = _CLAIM_NEXT_BATCH,
) -> list[tuple[int, datetime, int]]:
    """The most urgent items of one status and routing, as (-priority, created_at, id).

    Equal status and senior_only lead ix_queue_items_claim_order, whose entries under them are
    already in this order: the database reads the first ``limit`` entries and sorts nothing.
    """
    rows = db.exec(
        select(QueueItem.priority, QueueItem.created_at, QueueItem.id)
        .where(
            col(QueueItem.status) == status,
            col(QueueItem.senior_only) == (sa.true() if senior_only else sa.false()),
            *conditions,
        )
        .order_by(*_ordered())
        .limit(limit)
    )
    return [(-priority, created, item_id) for priority, created, item_id in rows if item_id]


def _takeable(now: datetime) -> list[tuple[str, list[sa.ColumnElement[bool]]]]:
    """Statuses anyone may claim, each with its extra condition: a claim's lease ran out."""
    return [
        ("open", []),
        ("adjudication", []),
        ("claimed", [col(QueueItem.lease_expires_at) < now]),
    ]


def release_item(db: DbSession, item_id: int, reviewer: ApiKey) -> QueueItem:
    """Give a claimed item back to the pool; only its holder can."""
    name = reviewer_name(reviewer)
    statement = (
        sa.update(QueueItem)
        .where(
            col(QueueItem.id) == item_id,
            col(QueueItem.status) == "claimed",
            col(QueueItem.claimed_by) == name,
        )
        .values(status=_status_when_unclaimed(), **_UNCLAIMED)
        .execution_options(synchronize_session=False)
    )
    if db.exec(statement).rowcount != 1:
        db.rollback()
        item = get_item(db, item_id)
        db.rollback()
        holder = f"it is claimed by {item.claimed_by!r}" if item.claimed_by else "it is unclaimed"
        raise ConflictError(f"{name!r} holds no claim on queue item {item_id}; {holder}")
    record_event(
        db,
        actor=_actor(reviewer),
        action="queue.release",
        target_type="queue_item",
        target_id=str(item_id),
    )
    db.commit()
    return get_item(db, item_id)


def expire_leases(db: DbSession, *, now: datetime | None = None) -> tuple[int, int]:
    """Apply both timeouts; return (leases released, items newly overdue).

    Soft: a claim whose lease ran out returns to the pool. Hard: an item not done by its
    ``due_at`` is marked overdue and from then on only senior reviewers may claim it (a
    live claim already held is left to finish). Cheap enough to call before every listing.
    """
    now = now or utc_now()
    released = db.exec(
        sa.update(QueueItem)
        .where(col(QueueItem.status) == "claimed", col(QueueItem.lease_expires_at) < now)
        .values(status=_status_when_unclaimed(), **_UNCLAIMED)
        .execution_options(synchronize_session=False)
    ).rowcount
    overdue = db.exec(
        sa.update(QueueItem)
        .where(
            # Unfinished spelled as a list of statuses: one range each of the overdue-check index.
            col(QueueItem.status).in_([state for state in QUEUE_STATUSES if state != "done"]),
            col(QueueItem.overdue_at).is_(None),
            col(QueueItem.due_at) < now,
        )
        .values(overdue_at=now, senior_only=True)
        .execution_options(synchronize_session=False)
    ).rowcount
    if released or overdue:
        record_event(
            db,
            actor="system",
            action="queue.expire",
            target_type="queue_item",
            detail={"released": released, "overdue": overdue},
        )
        db.commit()
    else:
        db.rollback()
    return released, overdue


def submit_review(
    db: DbSession,
    item_id: int,
    reviewer: ApiKey,
    *,
    label: str,
    rationale: str = "",
    correction: str | None = None,
) -> ReviewOutcome:
    """Record this reviewer's label for a claimed item: a Review and a HumanLabel, together.

    Needs the reviewer's live lease. The label's source is ``adjudication`` for a senior
    settling a disagreement, ``audit`` for items of the random audit sample, else ``review``.
    """
    now = utc_now()
    name = reviewer_name(reviewer)
    item = get_item(db, item_id)
    criterion = db.get(Criterion, item.criterion_id) if item.criterion_id else None
    session = db.get(Session, item.session_id) if item.session_id else None
    if criterion is None or session is None:
        db.rollback()
        raise InvalidInputError(
            [Problem(("item",), f"queue item {item_id} is a {item.kind}, not a judged session")]
        )
    if label not in criterion.labels:
        db.rollback()
        allowed = ", ".join(repr(value) for value in criterion.labels)
        raise InvalidInputError(
            [
                Problem(
                    ("label",),
                    f"{label!r} is not a label of criterion {criterion.name!r}; allowed: {allowed}",
                )
            ]
        )
    # Locks the row (PostgreSQL) while checking the lease in the same statement, so a claim
    # that took over an expired lease a moment ago cannot be overwritten by a late submit.
    locked = db.exec(
        sa.update(QueueItem)
        .where(
            col(QueueItem.id) == item_id,
            col(QueueItem.status) == "claimed",
            col(QueueItem.claimed_by) == name,
            col(QueueItem.lease_expires_at) > now,
        )
        .values(claimed_at=col(QueueItem.claimed_at))
        .execution_options(synchronize_session=False)
    ).rowcount
    if locked != 1:
        db.rollback()
        raise _submit_refusal(db, item_id, name)
    item = get_item(db, item_id)
    earlier = list(db.exec(select(Review).where(Review.queue_item_id == item_id)))
    first_round = [review for review in earlier if not review.is_adjudication]
    is_adjudication = len(first_round) >= item.reviews_required
    if is_adjudication and not reviewer.senior:
        db.rollback()
        raise ConflictError(f"queue item {item_id} awaits adjudication: senior reviewers only")
    review = Review(
        queue_item_id=item_id,
        reviewer=name,
        label=label,
        rationale=rationale,
        correction=correction,
        is_adjudication=is_adjudication,
        created_at=now,
    )
    db.add(review)
    db.flush()
    assert review.id is not None
    item.status = _status_after(item, [r.label for r in first_round], label, is_adjudication)
    if item.status == "adjudication":
        item.senior_only = True
    item.claimed_by = item.claimed_at = item.lease_expires_at = None
    db.add(item)
    source = "adjudication" if is_adjudication else "audit" if "audit" in item.reasons else "review"
    record_event(
        db,
        actor=_actor(reviewer),
        action="queue.review",
        target_type="queue_item",
        target_id=str(item_id),
        detail={"review_id": review.id, "label": label, "status": item.status, "source": source},
    )
    # add_labels commits: the review, the item's new state and the label land together.
    [(human_label, _created)] = add_labels(
        db,
        [
            HumanLabelCreate(
                session=SessionRef(source=session.source, external_id=session.external_id),
                criterion=criterion.name,
                value=label,
                annotator=name,
                rationale=rationale,
                correction=correction,
                source=source,
            )
        ],
        actor=_actor(reviewer),
    )
    assert human_label.id is not None
    judge = judge_verdict(db, item)
    agrees = None if judge is None or judge.label is None else judge.label == label
    if source == "audit" and agrees is not None and item.criterion_id is not None:
        # Audits are the unbiased sample of auto decisions: they feed the agreement drift
        # detectors (queue reviews, escalated for a reason, would not).
        observe_agreement(db, item.criterion_id, agrees)
    end_read(db)
    return ReviewOutcome(
        item_id=item_id,
        status=item.status,
        review_id=review.id,
        label_id=human_label.id,
        label_source=source,
        is_adjudication=is_adjudication,
        judge=judge,
        agrees_with_judge=agrees,
    )


def _status_after(
    item: QueueItem, first_round_labels: list[str | None], label: str, is_adjudication: bool
) -> str:
    if is_adjudication:
        return "done"
    labels = [*first_round_labels, label]
    if len(labels) < item.reviews_required:
        return "open"  # back to the pool for an independent second review
    return "done" if len(set(labels)) == 1 else "adjudication"


def _submit_refusal(db: DbSession, item_id: int, name: str) -> Exception:
    item = get_item(db, item_id)
    db.rollback()
    if item.status == "done":
        return ConflictError(f"queue item {item_id} is already done")
    if item.claimed_by == name and item.lease_expires_at is not None:
        return ConflictError(
            f"the claim of {name!r} on queue item {item_id} expired at "
            f"{item.lease_expires_at.isoformat(timespec='seconds')}; claim it again"
        )
    if item.claimed_by is not None:
        return ConflictError(f"queue item {item_id} is claimed by {item.claimed_by!r}")
    return ConflictError(f"claim queue item {item_id} before reviewing it")


# --------------------------------------------------------------------------- reading


def list_queue(
    db: DbSession,
    *,
    reviewer: ApiKey,
    criterion: str | None = None,
    reason: str | None = None,
    cluster: int | None = None,
    status: Sequence[str] = ("open", "claimed"),
    limit: int = 100,
) -> list[QueueItem]:
    """Items this reviewer may work on, most urgent first (priority, then oldest).

    Senior-only items are listed for senior reviewers only; items the reviewer has already
    reviewed are left out until done. ``reason`` matches a whole reason or its prefix
    (``safety`` matches ``safety:rule:payments``).
    """
    unknown = sorted(set(status) - set(QUEUE_STATUSES))
    if unknown:
        raise InvalidInputError(
            [
                Problem(
                    ("status",),
                    f"unknown status {', '.join(unknown)}; allowed: {', '.join(QUEUE_STATUSES)}",
                )
            ]
        )
    name = reviewer_name(reviewer)
    conditions = [
        col(QueueItem.status).in_(list(status)),
        sa.or_(col(QueueItem.status) == "done", sa.not_(_reviewed_by(name))),
        *_filters(db, criterion, reason, cluster),
    ]
    if not reviewer.senior:
        conditions.append(sa.not_(col(QueueItem.senior_only)))
    items = list(db.exec(select(QueueItem).where(*conditions).order_by(*_ordered()).limit(limit)))
    end_read(db)
    return items

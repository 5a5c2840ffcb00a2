"""Approval gates: open one per proposed agent action, decide it, expire it, count them.

A gate that the rules do not approve at once becomes a queue item of kind ``gate``; reviewers
claim it like any other item (``store.queue.claim_item``) and decide it while they hold the
lease. Deciding, expiring and the gate's status change commit together; callers (the API)
deliver callbacks after the commit.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from judgeloop.gates.rules import GateEvaluation
from judgeloop.models import ApiKey, AuditEvent, Gate, QueueItem, Review
from judgeloop.redaction import configured_redactor
from judgeloop.store.audit import record_event
from judgeloop.store.errors import ConflictError, InvalidInputError, NotFoundError, Problem
from judgeloop.store.queue_views import end_read, reviewer_name
from judgeloop.types import utc_now

__all__ = [
    "GATE_PRIORITY",
    "GateCount",
    "GatePublic",
    "RejectedGate",
    "decide_gate",
    "expire_due_gates",
    "expire_gates",
    "gate_counts",
    "gate_public",
    "get_gate",
    "list_gates",
    "open_gate",
    "rejected_gates",
]

# Red gates come before every judgment escalation (safety is 400); yellow ones after drift.
GATE_PRIORITY = {"red": 450, "yellow": 250, "green": 0}
SOFT_TIMEOUT_BUMP = 50
DEFAULT_HARD_TIMEOUT = timedelta(hours=4)
DEFAULT_SOFT_TIMEOUT = timedelta(minutes=15)
GateAction = Literal["approve", "reject", "modify"]
_DECIDED_STATUS = {"approve": "approved", "reject": "rejected", "modify": "modified"}


class GatePublic(BaseModel):
    """A gate as the agent and reviewers see it."""

    id: int
    status: str = Field(description="approved, pending, rejected, modified or expired.")
    tier: str
    rule: str | None = Field(description="The rule that set the tier; 'unmatched' if none.")
    reason: str | None = Field(description="Why it was decided so (a rejection's reason).")
    action_name: str
    arguments: dict[str, Any]
    modified_arguments: dict[str, Any] | None = Field(
        description="For status modified: the arguments the reviewer approved instead."
    )
    state: dict[str, Any]
    callback_url: str | None
    queue_item_id: int | None
    decided_at: datetime | None
    expires_at: datetime | None
    created_at: datetime


class GateCount(BaseModel):
    """Gate requests of one tier on one UTC day, and how many a person decided."""

    day: date
    tier: str
    requests: int
    human_decisions: int


class RejectedGate(BaseModel):
    """A rejected (or expired) action and why: an evaluation case."""

    gate_id: int
    action: str
    arguments: dict[str, Any]
    state: dict[str, Any]
    status: str
    reason: str | None
    reviewer: str | None
    decided_at: datetime | None


def _actor(reviewer: ApiKey) -> str:
    return f"key:{reviewer.id}:{reviewer.name}"


def _load(db: DbSession, gate_id: int) -> Gate:
    gate = db.get(Gate, gate_id, populate_existing=True)
    if gate is None:
        raise NotFoundError(f"gate {gate_id} does not exist")
    return gate


def _item_of(db: DbSession, gate_id: int) -> QueueItem | None:
    return db.exec(
        select(QueueItem)
        .where(QueueItem.gate_id == gate_id)
        .execution_options(populate_existing=True)
    ).first()


def _rule_of(db: DbSession, gate_id: int) -> str | None:
    # The Gate table has no rule column; the opening audit event records it.
    detail = db.exec(
        select(AuditEvent.detail).where(
            AuditEvent.target_type == "gate",
            AuditEvent.target_id == str(gate_id),
            AuditEvent.action == "gate.open",
        )
    ).first()
    return None if detail is None else detail.get("rule")


def gate_public(db: DbSession, gate: Gate) -> GatePublic:
    """``gate`` with its rule and queue item, as returned."""
    assert gate.id is not None
    item = _item_of(db, gate.id)
    rule = _rule_of(db, gate.id)
    end_read(db)  # a reader: do not hold SQLite's write lock while the caller goes on
    return GatePublic(
        id=gate.id,
        status=gate.status,
        tier=gate.tier,
        rule=rule,
        reason=gate.reason,
        action_name=gate.action_name,
        arguments=dict(gate.arguments),
        modified_arguments=gate.modified_arguments,
        state=dict(gate.state),
        callback_url=gate.callback_url,
        queue_item_id=item.id if item else None,
        decided_at=gate.decided_at,
        expires_at=gate.expires_at,
        created_at=gate.created_at,
    )


def open_gate(
    db: DbSession,
    *,
    action_name: str,
    arguments: dict[str, Any],
    state: dict[str, Any],
    callback_url: str | None,
    evaluation: GateEvaluation,
    actor: str,
    hard_timeout: timedelta | None = None,
) -> Gate:
    """Store a gate as ``evaluation`` says: approved at once, or pending with a queue item.

    A pending gate expires after the tier's hard timeout (``evaluation.hard_timeout_hours``),
    else ``hard_timeout``, else 4 hours. PII in ``state`` and secrets in ``arguments`` are
    redacted before storage (the rules saw the original: ``evaluation`` is made before).
    """
    now = utc_now()
    approved = evaluation.status == "approved"
    if evaluation.hard_timeout_hours is not None:
        timeout = timedelta(hours=evaluation.hard_timeout_hours)
    else:
        timeout = hard_timeout or DEFAULT_HARD_TIMEOUT
    redactor = configured_redactor()
    gate = Gate(
        action_name=action_name,
        # The reviewer approves exactly these arguments (a recipient, an amount, an account):
        # only secrets are redacted from them. The agent's state is context: all PII goes.
        arguments=redactor.only("secret").value(arguments),
        state=redactor.value(state),
        tier=evaluation.tier,
        status="approved" if approved else "pending",
        callback_url=callback_url,
        reason=evaluation.explanation if approved else None,
        decided_at=now if approved else None,
        expires_at=None if approved else now + timeout,
        created_at=now,
    )
    db.add(gate)
    db.flush()
    assert gate.id is not None
    item_id = None
    if not approved:
        item = QueueItem(
            kind="gate",
            gate_id=gate.id,
            priority=GATE_PRIORITY[evaluation.tier],
            reasons=[f"gate:{evaluation.tier}", f"gate:rule:{evaluation.rule}"],
            status="open",
            reviews_required=1,
            due_at=gate.expires_at,
            created_at=now,
        )
        db.add(item)
        db.flush()
        item_id = item.id
    record_event(
        db,
        actor=actor,
        action="gate.open",
        target_type="gate",
        target_id=str(gate.id),
        detail={
            "action_name": action_name,
            "tier": evaluation.tier,
            "rule": evaluation.rule,
            "status": gate.status,
            "explanation": evaluation.explanation,
            "on_expiry": evaluation.on_expiry,
            "queue_item_id": item_id,
        },
    )
    db.commit()
    return _load(db, gate.id)


def get_gate(db: DbSession, gate_id: int) -> Gate:
    """The gate as stored now, or NotFoundError."""
    gate = _load(db, gate_id)
    end_read(db)
    return gate


def list_gates(
    db: DbSession, *, status: str | None = None, tier: str | None = None, limit: int = 100
) -> list[Gate]:
    """Gates, newest first, optionally of one status and tier."""
    statement = select(Gate).order_by(col(Gate.created_at).desc(), col(Gate.id).desc())
    if status is not None:
        statement = statement.where(Gate.status == status)
    if tier is not None:
        statement = statement.where(Gate.tier == tier)
    gates = list(db.exec(statement.limit(limit)))
    end_read(db)
    return gates


def decide_gate(
    db: DbSession,
    gate_id: int,
    reviewer: ApiKey,
    *,
    action: GateAction,
    reason: str | None = None,
    modified_arguments: dict[str, Any] | None = None,
) -> Gate:
    """Approve, reject (with a reason) or approve modified arguments of a pending gate.

    The reviewer must hold a live lease on the gate's queue item (claim it first, as any
    item). Appends a Review; the gate and its item change in the same transaction.
    """
    problems = []
    if action not in _DECIDED_STATUS:
        problems.append(Problem(("action",), f"unknown action {action!r}"))
    if action == "reject" and not (reason or "").strip():
        problems.append(Problem(("reason",), "a rejection needs a reason (it goes to the agent)"))
    if action == "modify" and modified_arguments is None:
        problems.append(Problem(("modified_arguments",), "modify needs the new arguments"))
    if action != "modify" and modified_arguments is not None:
        problems.append(Problem(("modified_arguments",), "only modify takes arguments"))
    if problems:
        raise InvalidInputError(problems)
    now = utc_now()
    name = reviewer_name(reviewer)
    gate = _load(db, gate_id)
    item = _item_of(db, gate_id)
    if gate.status != "pending" or item is None:
        db.rollback()
        raise ConflictError(f"gate {gate_id} is already {gate.status}")
    assert item.id is not None
    item_id = item.id
    # The gate row first, then its item: the order expire_due_gates locks them in, so the
    # two never deadlock on PostgreSQL.
    status = _DECIDED_STATUS[action]
    changed = db.exec(
        sa.update(Gate)
        .where(col(Gate.id) == gate_id, col(Gate.status) == "pending")
        .values(
            status=status,
            reason=(reason or "").strip() or None,
            modified_arguments=modified_arguments,
            decided_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        db.rollback()
        raise ConflictError(f"gate {gate_id} was decided or expired meanwhile")
    # Then one conditional UPDATE checks the lease and locks the item, as submit_review does.
    locked = db.exec(
        sa.update(QueueItem)
        .where(
            col(QueueItem.id) == item_id,
            col(QueueItem.status) == "claimed",
            col(QueueItem.claimed_by) == name,
            col(QueueItem.lease_expires_at) > now,
        )
        .values(status="done", claimed_by=None, claimed_at=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if locked != 1:
        db.rollback()
        item = _item_of(db, gate_id)
        db.rollback()
        holder = item.claimed_by if item else None
        if holder and holder != name:
            raise ConflictError(f"gate {gate_id} is claimed by {holder!r}")
        raise ConflictError(
            f"claim gate {gate_id} (queue item {item_id}) before deciding it; "
            "a claim that ran out must be renewed"
        )
    review = Review(
        queue_item_id=item_id,
        reviewer=name,
        label=action,
        rationale=reason or "",
        correction=None if modified_arguments is None else json.dumps(modified_arguments),
        created_at=now,
    )
    db.add(review)
    db.flush()
    record_event(
        db,
        actor=_actor(reviewer),
        action="gate.decide",
        target_type="gate",
        target_id=str(gate_id),
        detail={"status": status, "review_id": review.id, "queue_item_id": item_id},
    )
    db.commit()
    return _load(db, gate_id)


def expire_due_gates(
    db: DbSession,
    *,
    now: datetime | None = None,
    soft_timeout: timedelta = DEFAULT_SOFT_TIMEOUT,
) -> list[Gate]:
    """Expire pending gates past their hard timeout; return those that changed.

    An expired gate's action is rejected (status ``expired``) unless its tier's rules say
    ``on_expiry: approve``. Gates pending past the soft timeout are raised in priority once
    (reason ``gate:soft_timeout``) so that reviewers see them first.
    """
    now = now or utc_now()
    due = list(
        db.exec(
            select(Gate)
            .order_by(col(Gate.id))
            .where(
                Gate.status == "pending",
                col(Gate.expires_at).is_not(None),
                col(Gate.expires_at) < now,
            )
        )
    )
    expired = []
    for gate in due:
        assert gate.id is not None and gate.expires_at is not None
        waited = _duration((gate.expires_at - gate.created_at).total_seconds())
        approve = _on_expiry(db, gate.id) == "approve"
        status = "approved" if approve else "expired"
        verb = "approved by its tier's rule" if approve else "rejected"
        reason = f"expired: no reviewer decided within {waited}; {verb}"
        changed = db.exec(
            sa.update(Gate)
            .where(col(Gate.id) == gate.id, col(Gate.status) == "pending")
            .values(status=status, reason=reason, decided_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            continue
        db.exec(
            sa.update(QueueItem)
            .where(col(QueueItem.gate_id) == gate.id, col(QueueItem.status) != "done")
            .values(status="done", claimed_by=None, claimed_at=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        record_event(
            db,
            actor="system",
            action="gate.expire",
            target_type="gate",
            target_id=str(gate.id),
            detail={"status": status, "reason": reason},
        )
        expired.append(gate.id)
    reminded = 0
    waiting = db.exec(
        select(QueueItem)
        .where(
            QueueItem.kind == "gate",
            QueueItem.status != "done",
            col(QueueItem.created_at) < now - soft_timeout,
        )
        .order_by(col(QueueItem.id))
    ).all()
    for item in waiting:
        if "gate:soft_timeout" in item.reasons:
            continue
        item.priority += SOFT_TIMEOUT_BUMP
        item.reasons = [*item.reasons, "gate:soft_timeout"]
        db.add(item)
        reminded += 1
    if expired or reminded:
        if reminded:
            record_event(
                db,
                actor="system",
                action="gate.soft_timeout",
                target_type="queue_item",
                detail={"reprioritised": reminded},
            )
        db.commit()
    else:
        db.rollback()
    return [_load(db, gate_id) for gate_id in expired]


def _duration(seconds: float) -> str:
    for unit, size in (("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{round(seconds / size, 2):g} {unit}"
    return f"{round(seconds, 1):g} seconds"


def _on_expiry(db: DbSession, gate_id: int) -> str:
    detail = db.exec(
        select(AuditEvent.detail).where(
            AuditEvent.target_type == "gate",
            AuditEvent.target_id == str(gate_id),
            AuditEvent.action == "gate.open",
        )
    ).first()
    return "reject" if detail is None else str(detail.get("on_expiry", "reject"))


def expire_gates(db: DbSession, now: datetime | None = None) -> int:
    """Expire pending gates past their hard timeout; return how many."""
    return len(expire_due_gates(db, now=now))


def gate_counts(db: DbSession, *, days: int = 7) -> list[GateCount]:
    """Gate requests per UTC day and tier over the last ``days`` days, and human decisions."""
    since = utc_now() - timedelta(days=days)
    reviewed = (
        select(col(Review.id))
        .join(QueueItem, col(QueueItem.id) == col(Review.queue_item_id))
        .where(col(QueueItem.gate_id) == col(Gate.id))
        .exists()
    )
    rows = db.exec(
        select(Gate.created_at, Gate.tier, reviewed).where(col(Gate.created_at) >= since)
    ).all()
    end_read(db)
    counts: dict[tuple[date, str], list[int]] = {}
    for created_at, tier, human in rows:
        entry = counts.setdefault((created_at.date(), tier), [0, 0])
        entry[0] += 1
        entry[1] += int(bool(human))
    return [
        GateCount(day=day, tier=tier, requests=requests, human_decisions=humans)
        for (day, tier), (requests, humans) in sorted(counts.items())
    ]


def rejected_gates(db: DbSession) -> list[RejectedGate]:
    """Rejected and expired gates, oldest first, with the reason and who rejected them."""
    gates = list(
        db.exec(
            select(Gate)
            .where(col(Gate.status).in_(("rejected", "expired")))
            .order_by(col(Gate.created_at), col(Gate.id))
        )
    )
    result = []
    for gate in gates:
        assert gate.id is not None
        reviewer = db.exec(
            select(Review.reviewer)
            .join(QueueItem, col(QueueItem.id) == col(Review.queue_item_id))
            .where(QueueItem.gate_id == gate.id)
        ).first()
        result.append(
            RejectedGate(
                gate_id=gate.id,
                action=gate.action_name,
                arguments=dict(gate.arguments),
                state=dict(gate.state),
                status=gate.status,
                reason=gate.reason,
                reviewer=reviewer,
                decided_at=gate.decided_at,
            )
        )
    end_read(db)
    return result

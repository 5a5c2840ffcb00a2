"""Decisions (one per session and judge version) and the pipeline status of sessions."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session as DbSession
from sqlmodel import col, func, select

from judgeloop.models import Decision, Judgment, Session
from judgeloop.store.audit import record_event
from judgeloop.store.upsert import insert_ignoring_conflicts
from judgeloop.types import utc_now

PENDING = "pending"
DONE = "done"


def add_decisions(db: DbSession, rows: Sequence[dict[str, Any]], *, actor: str) -> set[int]:
    """Store decisions; a (session, judge version) already decided keeps its first one.

    Returns the ids of the new rows, so only their escalations are queued (exactly once, also
    when two workers race on the same session).
    """
    if not rows:
        return set()
    now = utc_now()
    prepared = [{"created_at": now, "detail": {}, **row} for row in rows]
    created = insert_ignoring_conflicts(db, Decision, prepared, ["session_id", "judge_version_id"])
    if created:
        record_event(
            db,
            actor=actor,
            action="decisions.create",
            target_type="judge_version",
            target_id=str(prepared[0]["judge_version_id"]),
            detail={"count": len(created)},
        )
    db.commit()
    return {int(i) for i in created}


def decisions_for(db: DbSession, session_ids: Sequence[int], version: str) -> dict[int, Decision]:
    """The decisions of ``version`` on ``session_ids``, by session id."""
    if not session_ids:
        return {}
    statement = select(Decision).where(
        col(Decision.session_id).in_(list(session_ids)), Decision.judge_version_id == version
    )
    return {row.session_id: row for row in db.exec(statement)}


def decisions_of_sessions(db: DbSession, session_ids: Sequence[int]) -> list[Decision]:
    """Every decision on ``session_ids``, by session then id."""
    if not session_ids:
        return []
    statement = (
        select(Decision)
        .where(col(Decision.session_id).in_(list(session_ids)))
        .order_by(col(Decision.session_id), col(Decision.id))
    )
    return list(db.exec(statement))


def judgments_for(db: DbSession, session_ids: Sequence[int], version: str) -> dict[int, Judgment]:
    """The judgments of ``version`` on ``session_ids``, by session id."""
    if not session_ids:
        return {}
    statement = select(Judgment).where(
        col(Judgment.session_id).in_(list(session_ids)), Judgment.judge_version_id == version
    )
    return {row.session_id: row for row in db.exec(statement)}


def escalations_since(
    db: DbSession, criterion_id: int, since: datetime, *, below_priority: int
) -> int:
    """Escalations of a criterion since ``since`` with priority below ``below_priority``.

    The daily budget counts these: the low-priority escalations it may cap.
    """
    statement = select(func.count()).where(
        Decision.criterion_id == criterion_id,
        Decision.outcome == "escalate",
        col(Decision.created_at) >= since,
        col(Decision.priority) < below_priority,
    )
    return int(db.exec(statement).one())


def start_of_day(now: datetime | None = None) -> datetime:
    """Midnight UTC of ``now``'s day: budgets are per UTC day."""
    now = now or utc_now()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


_held: Counter[int] = Counter()
_held_lock = threading.Lock()


@contextmanager
def held_by_request(session_ids: Sequence[int]) -> Iterator[None]:
    """Mark ``session_ids`` as being judged by a request of this process until the block ends.

    They stay pending in the database (if the process dies, a worker still finds them), but
    this process's polling worker skips them instead of judging them a second time meanwhile.
    """
    with _held_lock:
        _held.update(session_ids)
    try:
        yield
    finally:
        with _held_lock:
            _held.subtract(session_ids)
            for session_id in session_ids:
                if _held[session_id] <= 0:
                    del _held[session_id]


def pending_session_ids(db: DbSession, limit: int, *, lock: bool = False) -> list[int]:
    """Oldest pending sessions; with ``lock`` (PostgreSQL) rows other workers hold are skipped.

    The lock lasts until ``db`` commits, so a worker that dies releases its sessions and
    another picks them up: accepted sessions are never lost. Sessions a request of this
    process is judging (``held_by_request``) are left to it.
    """
    with _held_lock:
        held = sorted(_held)
    statement = (
        select(Session.id)
        .where(Session.pipeline_status == PENDING)
        .order_by(col(Session.id))
        .limit(limit)
    )
    if held:
        statement = statement.where(col(Session.id).not_in(held))
    if lock:
        # NO KEY UPDATE, not UPDATE: judgments and decisions written meanwhile reference these
        # rows, and their foreign-key checks take KEY SHARE locks, which UPDATE would block.
        statement = statement.with_for_update(skip_locked=True, key_share=True)
    return [int(i) for i in db.exec(statement) if i is not None]


def mark_sessions(db: DbSession, session_ids: Sequence[int], status: str) -> None:
    """Set the pipeline status of ``session_ids`` (the caller commits)."""
    if session_ids:
        db.execute(
            sa.update(Session)
            .where(col(Session.id).in_(list(session_ids)))
            .values(pipeline_status=status)
        )


def count_pending(db: DbSession) -> int:
    """Sessions still waiting for the pipeline."""
    statement = select(func.count()).where(Session.pipeline_status == PENDING)
    return int(db.exec(statement).one())

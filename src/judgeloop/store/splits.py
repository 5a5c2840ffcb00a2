"""Partition assignments (derive / calibration / test) per criterion, recorded once."""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import Session as DbSession
from sqlmodel import select

from judgeloop.models import PARTITIONS, SplitAssignment
from judgeloop.store.audit import record_event
from judgeloop.store.errors import InvalidInputError, Problem
from judgeloop.store.upsert import insert_ignoring_conflicts
from judgeloop.types import utc_now


def get_splits(db: DbSession, criterion_id: int) -> dict[int, str]:
    """Return session id -> partition for one criterion."""
    statement = select(SplitAssignment).where(SplitAssignment.criterion_id == criterion_id)
    return {row.session_id: row.partition for row in db.exec(statement)}


def record_splits(
    db: DbSession, criterion_id: int, assignment: Mapping[int, str], *, seed: int, actor: str
) -> dict[int, str]:
    """Record partitions for sessions not yet assigned; return the full assignment.

    An assignment is never changed: a session shown to a judge as an example must never later
    be used to calibrate or test it, whatever seed a later derivation uses.
    """
    unknown = sorted({p for p in assignment.values() if p not in PARTITIONS})
    if unknown:
        raise InvalidInputError([Problem(("partition",), f"unknown partitions {unknown}")])
    now = utc_now()
    rows = [
        {
            "criterion_id": criterion_id,
            "session_id": session_id,
            "partition": partition,
            "seed": seed,
            "created_at": now,
        }
        for session_id, partition in sorted(assignment.items())
    ]
    created = insert_ignoring_conflicts(db, SplitAssignment, rows, ["criterion_id", "session_id"])
    if created:
        record_event(
            db,
            actor=actor,
            action="splits.record",
            target_type="criterion",
            target_id=str(criterion_id),
            detail={"count": len(created), "seed": seed},
        )
    db.commit()
    return get_splits(db, criterion_id)

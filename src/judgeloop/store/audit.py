"""The audit trail: every write adds an event inside the writer's transaction.

The table is append-only at the database (triggers refuse UPDATE and DELETE, migration 0004);
this module adds events, notes rule files that changed since they were last used, and reads
events back in id order for export.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session as DbSession
from sqlmodel import col

from judgeloop.models import AuditEvent

RULES_CHANGE = "rules.change"


def record_event(
    db: DbSession,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an AuditEvent; it commits together with the change it describes."""
    db.add(
        AuditEvent(
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=detail or {},
        )
    )


def rules_hash(rules: dict[str, Any]) -> str:
    """The SHA-256 of the rules' canonical JSON: equal rules, equal hash, however written."""
    canonical = json.dumps(rules, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_rules_in_effect(
    db: DbSession, *, actor: str, kind: str, path: Path | None, rules: dict[str, Any]
) -> bool:
    """Record ``rules.change`` when the ``kind`` rules in effect differ from the last recorded.

    Called whenever a process loads a rule file (the escalation policy, the gate rules), so
    the trail shows every policy that was ever applied and from when; an unchanged file adds
    nothing. The hash is of the validated rules (defaults filled in), not of the file's bytes:
    reformatting or a comment is no change, a missing file (built-in defaults) is one.

    Returns:
        Whether an event was recorded (and committed).
    """
    digest = rules_hash(rules)
    last = db.execute(
        sa.select(col(AuditEvent.detail))
        .where(
            col(AuditEvent.action) == RULES_CHANGE,
            col(AuditEvent.target_type) == "rules",
            col(AuditEvent.target_id) == kind,
        )
        .order_by(col(AuditEvent.id).desc())
        .limit(1)
    ).scalar_one_or_none()
    previous = last.get("hash") if last else None
    if previous == digest:
        db.rollback()  # ends the read: no lock held while the caller goes on
        return False
    record_event(
        db,
        actor=actor,
        action=RULES_CHANGE,
        target_type="rules",
        target_id=kind,
        detail={
            "path": str(path) if path is not None else None,
            "hash": digest,
            "previous_hash": previous,
            "rules": rules,
        },
    )
    db.commit()
    return True


@dataclass(frozen=True)
class EventFilter:
    """Which events to read: ``since`` inclusive, ``until`` exclusive, ``action`` exact.

    An ``action`` ending in ``*`` matches every action starting with what precedes it
    (``gate.*``).
    """

    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None


def iter_events(
    db: DbSession, where: EventFilter | None = None, *, batch_size: int = 1000
) -> Iterator[dict[str, Any]]:
    """The matching events in id order, one dict per event, fetched ``batch_size`` at a time.

    Rows stream from the database (a server-side cursor on PostgreSQL), so exporting a long
    trail holds one batch in memory, not the whole table.
    """
    where = where or EventFilter()
    statement = sa.select(
        col(AuditEvent.id),
        col(AuditEvent.created_at),
        col(AuditEvent.actor),
        col(AuditEvent.action),
        col(AuditEvent.target_type),
        col(AuditEvent.target_id),
        col(AuditEvent.detail),
    ).order_by(col(AuditEvent.id))
    if where.since is not None:
        statement = statement.where(col(AuditEvent.created_at) >= where.since)
    if where.until is not None:
        statement = statement.where(col(AuditEvent.created_at) < where.until)
    if where.action is not None:
        action = col(AuditEvent.action)
        if where.action.endswith("*"):
            statement = statement.where(action.startswith(where.action[:-1], autoescape=True))
        else:
            statement = statement.where(action == where.action)
    result = db.execute(statement.execution_options(yield_per=batch_size))
    for row in result:
        yield {
            "id": row.id,
            "at": row.created_at.isoformat(),
            "actor": row.actor,
            "action": row.action,
            "target_type": row.target_type,
            "target_id": row.target_id,
            "detail": row.detail,
        }

"""The audit trail: every write adds an event inside the writer's transaction."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session as DbSession

from judgeloop.models import AuditEvent


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

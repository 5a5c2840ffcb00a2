"""Judge versions (immutable, keyed by content hash) and their judgments (one per session)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session as DbSession
from sqlmodel import select

from judgeloop.models import Criterion, JudgeVersion, Judgment
from judgeloop.store.audit import record_event
from judgeloop.store.errors import NotFoundError
from judgeloop.store.upsert import insert_ignoring_conflicts
from judgeloop.types import utc_now


def register_judge_version(
    db: DbSession,
    *,
    version: str,
    name: str,
    criterion: Criterion,
    spec: dict[str, Any],
    actor: str,
) -> tuple[JudgeVersion, bool]:
    """Store a judge version once; the same version id always means the same content."""
    assert criterion.id is not None
    created = insert_ignoring_conflicts(
        db,
        JudgeVersion,
        [
            {
                "id": version,
                "name": name,
                "criterion_id": criterion.id,
                "spec": spec,
                "active": False,
                "created_at": utc_now(),
            }
        ],
        ["id"],
        id_column="id",
    )
    if created:
        record_event(
            db,
            actor=actor,
            action="judge_version.register",
            target_type="judge_version",
            target_id=version,
            detail={"name": name, "criterion": criterion.name},
        )
    db.commit()
    row = db.get(JudgeVersion, version)
    assert row is not None
    return row, bool(created)


def get_judge_version(db: DbSession, version: str) -> JudgeVersion:
    """Return one version, or raise NotFoundError."""
    row = db.get(JudgeVersion, version)
    if row is None:
        raise NotFoundError(f"judge version {version!r} is not registered")
    return row


def list_judge_versions(db: DbSession) -> list[JudgeVersion]:
    """Every registered version, newest first."""
    statement = select(JudgeVersion).order_by(JudgeVersion.created_at.desc())  # type: ignore[attr-defined]
    return list(db.exec(statement))


def add_judgments(db: DbSession, rows: Sequence[dict[str, Any]], *, actor: str) -> int:
    """Store judgments; a (judge version, session) already judged keeps its first judgment.

    Returns how many were new. Exactly-once per version and session is the database's
    unique constraint, so retried or concurrent scoring never duplicates.
    """
    now = utc_now()
    prepared = [{"created_at": now, "detail": {}, **row} for row in rows]
    created = insert_ignoring_conflicts(db, Judgment, prepared, ["judge_version_id", "session_id"])
    if created:
        record_event(
            db,
            actor=actor,
            action="judgments.create",
            target_type="judge_version",
            target_id=str(prepared[0]["judge_version_id"]),
            detail={"count": len(created)},
        )
    db.commit()
    return len(created)


def judged_session_ids(db: DbSession, version: str) -> set[int]:
    """Sessions that version ``version`` has already judged."""
    statement = select(Judgment.session_id).where(Judgment.judge_version_id == version)
    return set(db.exec(statement))


def judgments_for_version(db: DbSession, version: str) -> list[Judgment]:
    """Every judgment of one version, by session id."""
    statement = (
        select(Judgment).where(Judgment.judge_version_id == version).order_by(Judgment.session_id)  # type: ignore[arg-type]
    )
    return list(db.exec(statement))


def activate_judge_version(db: DbSession, version: str, *, actor: str) -> JudgeVersion:
    """Make ``version`` the one the pipeline uses for its criterion; others of it stand down."""
    row = get_judge_version(db, version)
    others = db.exec(
        select(JudgeVersion).where(
            JudgeVersion.criterion_id == row.criterion_id,
            JudgeVersion.id != version,
            JudgeVersion.active == True,  # noqa: E712 (SQL expression)
        )
    )
    replaced = []
    for other in others:
        other.active = False
        db.add(other)
        replaced.append(other.id)
    if not row.active:
        row.active = True
        db.add(row)
        record_event(
            db,
            actor=actor,
            action="judge_version.activate",
            target_type="judge_version",
            target_id=version,
            detail={"name": row.name, "replaced": replaced},
        )
    db.commit()
    db.refresh(row)
    return row


def active_judge_versions(db: DbSession) -> list[JudgeVersion]:
    """The active version of each criterion, by criterion id."""
    statement = (
        select(JudgeVersion)
        .where(JudgeVersion.active == True)  # noqa: E712 (SQL expression)
        .order_by(JudgeVersion.criterion_id)  # type: ignore[arg-type]
    )
    return list(db.exec(statement))

"""Calibrations: a judge version measured on a label snapshot (appended, newest wins)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session as DbSession
from sqlmodel import select

from judgeloop.models import Calibration
from judgeloop.store.audit import record_event
from judgeloop.store.errors import NotFoundError


def add_calibration(db: DbSession, *, actor: str, **values: Any) -> Calibration:
    """Store a calibration of a judge version."""
    row = Calibration(**values)
    db.add(row)
    db.flush()
    record_event(
        db,
        actor=actor,
        action="calibration.create",
        target_type="judge_version",
        target_id=row.judge_version_id,
        detail={
            "calibration_id": row.id,
            "method": row.method,
            "alpha": row.alpha,
            "delta": row.delta,
            "threshold": row.threshold,
            "coverage": row.coverage,
        },
    )
    db.commit()
    return row


def latest_calibration(db: DbSession, version: str) -> Calibration:
    """The newest calibration of ``version``, or NotFoundError."""
    statement = (
        select(Calibration)
        .where(Calibration.judge_version_id == version)
        .order_by(Calibration.id.desc())  # type: ignore[union-attr]
    )
    row = db.exec(statement).first()
    if row is None:
        raise NotFoundError(
            f"judge version {version!r} has no calibration yet; run judgeloop calibrate"
        )
    return row

"""Drift monitors: each criterion's stream detectors, their JSON state kept in ``DriftMonitor``.

Every observation locks its monitor row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
serialises writers with ``BEGIN IMMEDIATE``), so concurrent workers never lose an update.
An alarm latches: ``DriftMonitor.alarmed`` stays set until :func:`reset_drift`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar, Protocol

import sqlalchemy as sa
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from judgeloop.escalation.drift import AgreementWindow, JsonState, LabelPSI, PageHinkley
from judgeloop.models import DriftMonitor
from judgeloop.store.audit import record_event
from judgeloop.store.upsert import insert_ignoring_conflicts
from judgeloop.types import utc_now


class Detector(Protocol):
    """What the store needs of a detector."""

    name: ClassVar[str]

    def update(self, state: Mapping[str, Any] | None, x: Any) -> tuple[JsonState, bool]:
        """Add one observation; return the new state and whether it sees drift."""
        ...


def _locked_monitor(db: DbSession, criterion_id: int, detector: str) -> DriftMonitor:
    """The monitor row, created if missing, locked until ``db`` commits."""
    statement = (
        select(DriftMonitor)
        .where(DriftMonitor.criterion_id == criterion_id, DriftMonitor.detector == detector)
        .with_for_update()
        # Another worker may have changed the row since this session last loaded it.
        .execution_options(populate_existing=True)
    )
    monitor = db.exec(statement).first()
    if monitor is not None:
        return monitor
    # The database, not this check, decides who creates the row when workers race.
    insert_ignoring_conflicts(
        db,
        DriftMonitor,
        [
            {
                "criterion_id": criterion_id,
                "detector": detector,
                "state": {},
                "alarmed": False,
                "updated_at": utc_now(),
            }
        ],
        ["criterion_id", "detector"],
    )
    return db.exec(statement).one()


def _observe(db: DbSession, criterion_id: int, detectors: list[Detector], x: Any) -> list[str]:
    alarmed = []
    now = utc_now()
    for detector in detectors:
        monitor = _locked_monitor(db, criterion_id, detector.name)
        state, drifting = detector.update(monitor.state, x)
        monitor.state = state
        monitor.updated_at = now
        if drifting and not monitor.alarmed:
            monitor.alarmed = True
            monitor.alarmed_at = now
            record_event(
                db,
                actor="drift",
                action="drift.alarm",
                target_type="criterion",
                target_id=str(criterion_id),
                detail={"detector": detector.name, "state": _summary(state)},
            )
        db.add(monitor)
        if monitor.alarmed:
            alarmed.append(detector.name)
    db.commit()
    return alarmed


def _summary(state: Mapping[str, Any]) -> dict[str, Any]:
    """The state without its long lists, for the audit trail."""
    return {key: value for key, value in state.items() if not isinstance(value, list)}


def observe_agreement(
    db: DbSession,
    criterion_id: int,
    agreed: bool,
    *,
    detectors: list[Detector] | None = None,
) -> list[str]:
    """Feed one audited agreement (judge label == human label) to the agreement detectors.

    Returns the names of this stream's detectors that are alarmed (latched).
    """
    used: list[Detector] = [PageHinkley(), AgreementWindow()] if detectors is None else detectors
    return _observe(db, criterion_id, used, 1.0 if agreed else 0.0)


def observe_label(
    db: DbSession,
    criterion_id: int,
    label: str,
    reference_histogram: Mapping[str, float],
    *,
    detector: LabelPSI | None = None,
) -> list[str]:
    """Feed one judge label to the label-histogram PSI against ``reference_histogram``.

    ``reference_histogram`` is the judge's label histogram on the calibration partition
    (shares or counts); ``detector`` sets the window, minimum count and alarm threshold.
    Returns ``["label_psi"]`` when that detector is alarmed, else ``[]``.
    """
    used = replace(detector or LabelPSI(), reference=dict(reference_histogram))
    return _observe(db, criterion_id, [used], label)


def drift_alarms(db: DbSession, criterion_id: int) -> list[str]:
    """Names of the criterion's detectors that have alarmed since the last reset."""
    statement = (
        select(DriftMonitor.detector)
        .where(DriftMonitor.criterion_id == criterion_id, col(DriftMonitor.alarmed))
        .order_by(col(DriftMonitor.detector))
    )
    return list(db.exec(statement))


def drift_monitors(db: DbSession, criterion_id: int | None = None) -> list[DriftMonitor]:
    """Every monitor (of one criterion, or all), by criterion then detector."""
    statement = select(DriftMonitor).order_by(
        col(DriftMonitor.criterion_id), col(DriftMonitor.detector)
    )
    if criterion_id is not None:
        statement = statement.where(DriftMonitor.criterion_id == criterion_id)
    return list(db.exec(statement))


def reset_drift(db: DbSession, criterion_id: int, *, actor: str = "system") -> int:
    """Forget the criterion's detector state and alarms (e.g. after recalibrating).

    Returns how many monitors were removed; the next observation starts each afresh.
    """
    statement = sa.delete(DriftMonitor).where(col(DriftMonitor.criterion_id) == criterion_id)
    result = db.execute(statement)
    removed = int(getattr(result, "rowcount", 0) or 0)
    record_event(
        db,
        actor=actor,
        action="drift.reset",
        target_type="criterion",
        target_id=str(criterion_id),
        detail={"monitors": removed},
    )
    db.commit()
    return removed

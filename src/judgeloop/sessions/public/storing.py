"""Writing a converted public dataset to the store, in chunks; re-running adds nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from judgeloop.sessions.public.base import Converted
from judgeloop.store import add_criteria, add_labels, add_sessions, db_session

WRITE_CHUNK = 500
ProgressCallback = Callable[[int], None]


@dataclass
class StoreReport:
    """Rows created and rows already stored, per kind."""

    criteria_created: int = 0
    criteria_existing: int = 0
    sessions_created: int = 0
    sessions_existing: int = 0
    labels_created: int = 0
    labels_existing: int = 0


def store_converted(
    engine: Engine,
    converted: Converted,
    *,
    actor: str,
    chunk: int = WRITE_CHUNK,
    on_progress: ProgressCallback | None = None,
) -> StoreReport:
    """Store criteria, then sessions, then labels; ``on_progress`` gets rows written per chunk.

    Identical criteria, sessions (same source and external id) and labels already stored are
    kept as they are, so importing a dataset twice stores it once.
    """
    report = StoreReport()
    with db_session(engine) as db:
        for _criterion, created in add_criteria(db, converted.criteria, actor=actor):
            report.criteria_created += created
            report.criteria_existing += not created
        for start in range(0, len(converted.sessions), chunk):
            batch = converted.sessions[start : start + chunk]
            for _session, created in add_sessions(db, batch, actor=actor):
                report.sessions_created += created
                report.sessions_existing += not created
            if on_progress:
                on_progress(len(batch))
        for start in range(0, len(converted.labels), chunk):
            labels = converted.labels[start : start + chunk]
            for _label, created in add_labels(db, labels, actor=actor):
                report.labels_created += created
                report.labels_existing += not created
            if on_progress:
                on_progress(len(labels))
    return report

"""`judgeloop recalibrate`: refit a judge version with the labels that reviews brought in.

Review, audit and adjudication labels join the SME labels as the human reference. Partitions
are respected: a session keeps the partition it was recorded in; a newly labelled session
without one goes to calibration or test by a hash rule (never to derive), and the assignment
is recorded like any other; sessions the judge shows as examples are never assigned.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Engine

from judgeloop.calibration.calibrate import CalibrationResult, calibrate_judge
from judgeloop.judges.loading import session_keys_of
from judgeloop.judges.runner import example_keys
from judgeloop.judges.spec import JudgeSpec
from judgeloop.models import Calibration
from judgeloop.store import (
    NotFoundError,
    db_session,
    get_criterion,
    get_splits,
    labels_for_criterion,
    latest_calibration,
    record_splits,
    reset_drift,
)

REFERENCE_SOURCES: tuple[str, ...] = ("sme", "review", "audit", "adjudication")
FEEDBACK_SOURCES: tuple[str, ...] = ("review", "audit", "adjudication")


class CalibrationSummary(BaseModel):
    """The headline numbers of one stored calibration."""

    calibration_id: int | None
    label_snapshot: str
    threshold: float | None
    coverage: float | None
    agreement: float | None
    """Agreement with the human reference on the whole test partition."""
    agreement_auto: float | None
    """Agreement among the test sessions the threshold auto-decides."""
    n_calibration: int | None
    n_test: int | None


class Change(BaseModel):
    """One measure before and after recalibration."""

    measure: str
    before: float | None
    after: float | None


class RecalibrationResult(BaseModel):
    """What `judgeloop recalibrate` did and how the numbers moved."""

    judge: str
    version: str
    assigned: dict[str, int]
    """Newly labelled sessions recorded in each partition by this run."""
    previous: CalibrationSummary | None
    current: CalibrationSummary
    changes: list[Change]
    result: CalibrationResult


def feedback_partition(
    source: str, external_id: str, *, criterion: str, seed: int, calibration_share: float
) -> Literal["calibration", "test"]:
    """The partition a newly labelled session joins: a hash of its identity, never derive.

    The hash of (seed, criterion, source, external_id) read as a number in [0, 1) is compared
    with ``calibration_share``, so the rule gives the same answer on any database.
    """
    digest = hashlib.sha256(f"{seed}:{criterion}:{source}:{external_id}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return "calibration" if draw < calibration_share else "test"


def _derivation_rule(spec: JudgeSpec) -> tuple[int, float]:
    """The seed and calibration share (of calibration + test) of the judge's derivation."""
    if spec.derivation is None:
        return 0, 0.5
    sizes = spec.derivation.split_sizes
    calibration, test = sizes.get("calibration", 0.0), sizes.get("test", 0.0)
    share = calibration / (calibration + test) if calibration + test > 0 else 0.5
    return spec.derivation.seed, share


def assign_new_sessions(
    engine: Engine,
    spec: JudgeSpec,
    *,
    actor: str,
    sources: tuple[str, ...] = FEEDBACK_SOURCES,
) -> dict[int, str]:
    """Record calibration/test partitions for sessions newly labelled through ``sources``.

    Only sessions with no partition yet for the criterion are assigned; sessions the spec
    shows its judge (few-shot examples, classifier training) are left out. Returns the new
    assignments, session id -> partition.
    """
    seed, share = _derivation_rule(spec)
    shown = example_keys(spec)
    with db_session(engine) as db:
        criterion = get_criterion(db, spec.criterion.name)
        assert criterion.id is not None
        existing = get_splits(db, criterion.id)
        candidates = {
            row.session_id
            for row in labels_for_criterion(db, criterion.id)
            if row.source in sources and row.session_id not in existing
        }
        keys = session_keys_of(db, candidates)
        assignment: dict[int, str] = {
            session_id: feedback_partition(
                source, external_id, criterion=criterion.name, seed=seed, calibration_share=share
            )
            for session_id, (source, external_id) in keys.items()
            if (source, external_id) not in shown
        }
        if assignment:
            record_splits(db, criterion.id, assignment, seed=seed, actor=actor)
    return assignment


def summarize_calibration(row: Calibration) -> CalibrationSummary:
    """The headline numbers of a stored calibration (its metrics as calibrate stored them)."""
    metrics = row.metrics
    test = metrics.get("test") or {}
    agreement = ((metrics.get("agreement") or {}).get("agreement") or {}).get("estimate")
    return CalibrationSummary(
        calibration_id=row.id,
        label_snapshot=row.label_snapshot,
        threshold=row.threshold,
        coverage=row.coverage,
        agreement=agreement,
        agreement_auto=test.get("agreement_auto"),
        n_calibration=metrics.get("n_calibration"),
        n_test=metrics.get("n_test"),
    )


def _changes(previous: CalibrationSummary | None, current: CalibrationSummary) -> list[Change]:
    measures = (
        "threshold",
        "coverage",
        "agreement",
        "agreement_auto",
        "n_calibration",
        "n_test",
    )
    before: dict[str, Any] = previous.model_dump() if previous else {}
    after = current.model_dump()
    return [Change(measure=m, before=before.get(m), after=after[m]) for m in measures]


def recalibrate_judge(
    engine: Engine,
    spec: JudgeSpec,
    *,
    actor: str,
    alpha: float | None = None,
    delta: float | None = None,
    method: Literal["isotonic", "platt"] | None = None,
    min_count: int | None = None,
    sources: tuple[str, ...] = REFERENCE_SOURCES,
    judges_dir: Path | None = None,
    n_resamples: int = 2000,
) -> RecalibrationResult:
    """Assign newly labelled sessions, calibrate again with every source, compare with before.

    Options left as None are taken from the version's newest calibration (or calibrate's
    defaults when there is none).
    """
    unknown = sorted(set(sources) - set(REFERENCE_SOURCES))
    if unknown or not sources:
        raise ValueError(
            f"label sources must be among {', '.join(REFERENCE_SOURCES)}; got {', '.join(sources)}"
        )
    with db_session(engine) as db:
        try:
            before = latest_calibration(db, spec.version)
        except NotFoundError:
            before = None
    previous = summarize_calibration(before) if before else None
    threshold_before = (before.metrics.get("threshold") or {}) if before else {}
    assignment = assign_new_sessions(
        engine, spec, actor=actor, sources=tuple(s for s in sources if s != "sme")
    )
    result = calibrate_judge(
        engine,
        spec,
        alpha=alpha if alpha is not None else (before.alpha if before else 0.1),
        delta=delta if delta is not None else (before.delta if before else 0.1),
        method=method or (before.method if before else "isotonic"),  # type: ignore[arg-type]
        min_count=min_count or int(threshold_before.get("min_count", 30)),
        actor=actor,
        judges_dir=judges_dir,
        n_resamples=n_resamples,
        human_sources=sources,
    )
    with db_session(engine) as db:
        stored = db.get(Calibration, result.calibration_id)
        assert stored is not None
        current = summarize_calibration(stored)
        # The drift alarms asked for this recalibration; the new calibration is the reference.
        reset_drift(db, get_criterion(db, spec.criterion.name).id or 0, actor=actor)
    assigned = {"calibration": 0, "test": 0}
    for partition in assignment.values():
        assigned[partition] += 1
    return RecalibrationResult(
        judge=spec.name,
        version=spec.version,
        assigned=assigned,
        previous=previous,
        current=current,
        changes=_changes(previous, current),
        result=result,
    )

"""`judgeloop calibrate`: fit a calibrator and a guaranteed threshold, measure on test, store."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel
from sqlalchemy import Engine

from judgeloop.calibration.calibrators import CalibrationMetrics, Calibrator, calibration_metrics
from judgeloop.calibration.ceiling import HumanCeiling, human_ceiling
from judgeloop.calibration.evaluate import HUMAN_SOURCES, PartitionData, partition_data
from judgeloop.calibration.guarantee import Threshold, fixed_sequence_threshold
from judgeloop.calibration.metrics import AgreementReport, agreement_report
from judgeloop.judges.runner import score
from judgeloop.judges.spec import JudgeSpec
from judgeloop.store import add_calibration, db_session, get_criterion, get_splits


class TestOutcome(BaseModel):
    """What the threshold does on the untouched test partition."""

    n: int
    errors: int
    coverage: float
    agreement_auto: float | None
    agreement_all: float | None


class CalibrationResult(BaseModel):
    """Everything `judgeloop calibrate` measured, as stored in Calibration.metrics."""

    judge: str
    version: str
    criterion: str
    method: Literal["isotonic", "platt"]
    alpha: float
    delta: float
    n_calibration: int
    n_test: int
    threshold: Threshold
    test: TestOutcome
    agreement: AgreementReport | None
    ceiling: HumanCeiling | None
    calibration_test: CalibrationMetrics | None
    coverage_curve: list[tuple[float, float, float]]
    """(threshold, coverage, agreement among auto-decided) on the test partition."""
    cost_per_session_usd: float
    latency_p50_ms: float
    calibration_id: int | None = None
    human_sources: list[str] = list(HUMAN_SOURCES)
    """Label sources that formed the human reference."""


def partition_ids(engine: Engine, spec: JudgeSpec, partition: str) -> list[int]:
    """Sessions assigned to ``partition`` for the spec's criterion."""
    with db_session(engine) as db:
        criterion = get_criterion(db, spec.criterion.name)
        return sorted(s for s, p in get_splits(db, criterion.id or 0).items() if p == partition)


def _valid(data: PartitionData) -> np.ndarray[Any, np.dtype[np.bool_]]:
    valid: np.ndarray[Any, np.dtype[np.bool_]] = ~np.isnan(np.array(data.confidence, dtype=float))
    return valid


def _coverage_curve(
    calibrated: np.ndarray[Any, np.dtype[np.float64]],
    agrees: np.ndarray[Any, np.dtype[np.bool_]],
) -> list[tuple[float, float, float]]:
    points = []
    total = len(calibrated)
    for threshold in sorted(set(np.round(calibrated[~np.isnan(calibrated)], 4)), reverse=True):
        auto = calibrated >= threshold
        if auto.sum():
            points.append((float(threshold), float(auto.sum() / total), float(agrees[auto].mean())))
    return points


def calibrate_judge(
    engine: Engine,
    spec: JudgeSpec,
    *,
    alpha: float,
    delta: float,
    method: Literal["isotonic", "platt"] = "isotonic",
    min_count: int = 30,
    seed: int = 0,
    actor: str,
    judges_dir: Path | None = None,
    n_resamples: int = 2000,
    human_sources: tuple[str, ...] = HUMAN_SOURCES,
) -> CalibrationResult:
    """Score calibration and test, fit on calibration, report on test, store a Calibration.

    ``human_sources``: the label sources whose majority is the human reference.
    """
    for partition in ("calibration", "test"):
        ids = partition_ids(engine, spec, partition)
        if not ids:
            raise ValueError(
                f"criterion {spec.criterion.name!r} has no {partition} partition; run derive"
            )
        score(engine, spec, ids, actor=actor, judges_dir=judges_dir, forbid_examples=True)
    cal = partition_data(engine, spec, ("calibration",), sources=human_sources)
    test = partition_data(engine, spec, ("test",), sources=human_sources)
    cal_valid, test_valid = _valid(cal), _valid(test)
    if cal_valid.sum() < 2 or len(set(cal.agrees[cal_valid].tolist())) < 2:
        calibrator = None
    else:
        calibrator = Calibrator(method=method).fit(
            np.array(cal.confidence)[cal_valid], cal.agrees[cal_valid]
        )

    def calibrated(data: PartitionData) -> np.ndarray[Any, np.dtype[np.float64]]:
        raw = np.array(data.confidence, dtype=float)
        if calibrator is None:
            return raw
        out = np.full(raw.shape, np.nan)
        valid = ~np.isnan(raw)
        if valid.any():
            out[valid] = calibrator.predict(raw[valid])
        return out

    cal_scores, test_scores = calibrated(cal), calibrated(test)
    threshold = fixed_sequence_threshold(
        cal_scores, cal.agrees, alpha=alpha, delta=delta, min_count=min_count
    )
    auto = threshold.auto(test_scores)
    test_agrees = test.agrees
    outcome = TestOutcome(
        n=len(test.session_ids),
        errors=test.errors,
        coverage=float(auto.mean()) if len(auto) else 0.0,
        agreement_auto=float(test_agrees[auto].mean()) if auto.any() else None,
        agreement_all=float(test_agrees.mean()) if len(test_agrees) else None,
    )
    judged = [i for i, p in enumerate(test.predicted) if p is not None]
    labels = list(spec.criterion.labels)
    kind = spec.criterion.kind if spec.criterion.kind != "pairwise" else "categorical"
    report = None
    ceiling = None
    if judged:
        report = agreement_report(
            [test.human[i] for i in judged],
            [str(test.predicted[i]) for i in judged],
            labels,
            kind,
            n_resamples=n_resamples,
            seed=seed,
        )
        judge_labels: dict[Hashable, str] = {
            test.session_ids[i]: str(test.predicted[i]) for i in judged
        }
        if any(len(a) >= 2 for a in test.annotations.values()):
            annotations: dict[Hashable, dict[str, str]] = {
                key: value for key, value in test.annotations.items()
            }
            ceiling = human_ceiling(
                annotations,
                labels,
                kind,
                judge=judge_labels,
                n_resamples=n_resamples,
                seed=seed,
            )
    calibration_test = (
        calibration_metrics(
            test_scores[test_valid],
            test_agrees[test_valid],
            confidence=np.array(test.confidence)[test_valid],
        )
        if test_valid.sum()
        else None
    )
    result = CalibrationResult(
        judge=spec.name,
        version=spec.version,
        criterion=spec.criterion.name,
        method=method,
        alpha=alpha,
        delta=delta,
        n_calibration=len(cal.session_ids),
        n_test=outcome.n,
        threshold=threshold,
        test=outcome,
        agreement=report,
        ceiling=ceiling,
        calibration_test=calibration_test,
        coverage_curve=_coverage_curve(test_scores, test_agrees),
        cost_per_session_usd=float(np.mean(test.cost_usd)) if test.cost_usd else 0.0,
        latency_p50_ms=float(np.median(test.latency_ms)) if test.latency_ms else 0.0,
        human_sources=list(human_sources),
    )
    with db_session(engine) as db:
        row = add_calibration(
            db,
            actor=actor,
            judge_version_id=spec.version,
            label_snapshot=f"{cal.snapshot}:{test.snapshot}"[:64],
            method=method,
            alpha=alpha,
            delta=delta,
            threshold=threshold.lambda_,
            coverage=outcome.coverage,
            calibrator=calibrator.to_dict() if calibrator else {},
            metrics=result.model_dump(mode="json"),
        )
    result.calibration_id = row.id
    return result

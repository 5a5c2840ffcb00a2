"""Judge versions and their calibrations, for engineers."""

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, status
from sqlmodel import Session as DbSession

from judgeloop.api.deps import EngineDep, EngineerKey, SessionDep
from judgeloop.calibration.compare import Comparison, compare_judges
from judgeloop.judges.spec import JudgeSpec
from judgeloop.models import (
    CalibrationPublic,
    Criterion,
    JudgeVersion,
    JudgeVersionPublic,
    JudgeVersionsPublic,
)
from judgeloop.store import (
    NotFoundError,
    db_session,
    get_judge_version,
    latest_calibration,
    list_judge_versions,
)

router = APIRouter(prefix="/v1/judges", tags=["judges"])


def _public(db: DbSession, row: JudgeVersion) -> JudgeVersionPublic:
    criterion = db.get(Criterion, row.criterion_id)
    return JudgeVersionPublic(
        id=row.id,
        name=row.name,
        criterion=criterion.name if criterion else "",
        backend="cascade" if row.spec.get("tiers") else str(row.spec.get("backend", "")),
        model=row.spec.get("model"),
        created_at=row.created_at,
    )


@router.get("", response_model=JudgeVersionsPublic)
def read_judge_versions(db: SessionDep, key: EngineerKey) -> JudgeVersionsPublic:
    """Every registered judge version, newest first."""
    data = [_public(db, row) for row in list_judge_versions(db)]
    return JudgeVersionsPublic(data=data, count=len(data))


@router.get("/compare", response_model=Comparison)
def compare_versions(
    engine: EngineDep,
    key: EngineerKey,
    first: str = Query(description="Baseline judge version id."),
    second: str = Query(description="Candidate judge version id."),
    partition: Literal["calibration", "test"] = "test",
) -> Comparison:
    """Two judge versions on the held-out sessions both have judged: differences, McNemar, verdict.

    Compares stored judgments only; score both versions first (`judgeloop compare` does).
    """
    # A short session of its own: compare_judges opens more, and on SQLite an open
    # request session would hold the write lock they wait for.
    with db_session(engine) as db:
        specs = [JudgeSpec.model_validate(get_judge_version(db, v).spec) for v in (first, second)]
    try:
        return compare_judges(engine, specs[0], specs[1], partition=partition)
    except ValueError as error:  # different criteria, or no session judged by both
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(error)) from None


@router.get("/{name}/versions/{version}/calibration", response_model=CalibrationPublic)
def read_calibration(
    db: SessionDep, key: EngineerKey, name: str, version: str
) -> CalibrationPublic:
    """The newest calibration of one judge version: threshold, coverage, agreement with CIs."""
    judge_version = get_judge_version(db, version)
    if judge_version.name != name:
        raise NotFoundError(
            f"judge version {version!r} belongs to {judge_version.name!r}, not {name!r}"
        )
    row = latest_calibration(db, version)
    assert row.id is not None
    return CalibrationPublic(
        id=row.id,
        judge_version_id=row.judge_version_id,
        judge_name=judge_version.name,
        label_snapshot=row.label_snapshot,
        method=row.method,
        alpha=row.alpha,
        delta=row.delta,
        threshold=row.threshold,
        coverage=row.coverage,
        calibrator=row.calibrator,
        metrics=row.metrics,
        created_at=row.created_at,
    )

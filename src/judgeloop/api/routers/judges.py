"""Judge versions and their calibrations, for engineers."""

from fastapi import APIRouter
from sqlmodel import Session as DbSession

from judgeloop.api.deps import EngineerKey, SessionDep
from judgeloop.models import (
    CalibrationPublic,
    Criterion,
    JudgeVersion,
    JudgeVersionPublic,
    JudgeVersionsPublic,
)
from judgeloop.store import (
    NotFoundError,
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

"""Engineer pages: judges, calibration reports, comparisons, drift, agreement and load.

Plots are inline SVG drawn on the server.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from judgeloop.api.deps import EngineDep
from judgeloop.calibration.calibrate import CalibrationResult
from judgeloop.calibration.compare import compare_judges
from judgeloop.calibration.report import calibration_figures, calibration_html, summary_rows
from judgeloop.judges.spec import JudgeSpec
from judgeloop.models import Calibration, Criterion, DriftMonitor, JudgeVersion
from judgeloop.store import (
    NotFoundError,
    db_session,
    drift_alarms,
    get_judge_version,
    latest_calibration,
    list_criteria,
    list_judge_versions,
    queue_load,
)
from judgeloop.web.auth import EngineerUser, WebUser
from judgeloop.web.plots import SeriesPoint, agreement_series_svg, bars_svg
from judgeloop.web.rendering import SECURITY_HEADERS, page, svg

router = APIRouter()

VersionQuery = Annotated[str | None, Query(max_length=64)]


def _version_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every judge version with its criterion and newest calibration, newest first."""
    with db_session(engine) as db:
        criteria = {row.id: row.name for row in list_criteria(db)}
        rows = []
        for version in list_judge_versions(db):
            try:
                calibration: Calibration | None = latest_calibration(db, version.id)
            except NotFoundError:
                calibration = None
            row = _version_row(version, criteria.get(version.criterion_id, ""), calibration)
            if version.active:
                row["recalibrate"] = _recalibration_reasons(db, version)
            rows.append(row)
        db.rollback()
    return rows


def _recalibration_reasons(db: DbSession, version: JudgeVersion) -> list[str]:
    """Why an active judge should be recalibrated: drift alarms, audited agreement too low."""
    from judgeloop.calibration.online import online_agreement

    reasons = [f"drift alarm: {name}" for name in drift_alarms(db, version.criterion_id)]
    online = online_agreement(db, version.id)
    if online.below_target:
        reasons.append(f"audited agreement below target: {online.message}")
    return reasons


def _version_row(
    version: JudgeVersion, criterion: str, calibration: Calibration | None
) -> dict[str, Any]:
    metrics = calibration.metrics if calibration else {}
    agreement = metrics.get("agreement") or {}
    ceiling = metrics.get("ceiling") or {}
    spec = version.spec
    return {
        "id": version.id,
        "name": version.name,
        "criterion": criterion,
        "active": version.active,
        "backend": "cascade" if spec.get("tiers") else str(spec.get("backend", "")),
        "model": spec.get("model"),
        "created_at": version.created_at,
        "calibration": None
        if calibration is None
        else {
            "id": calibration.id,
            "created_at": calibration.created_at,
            "alpha": calibration.alpha,
            "delta": calibration.delta,
            "threshold": calibration.threshold,
            "coverage": calibration.coverage,
            "agreement": agreement.get("agreement"),
            "kappa": agreement.get("cohen_kappa"),
            "ceiling_alpha": ceiling.get("krippendorff_alpha"),
            "n_test": metrics.get("n_test"),
        },
    }


@router.get("/ui/judges", response_class=HTMLResponse)
def judges_page(request: Request, engine: EngineDep, user: EngineerUser) -> Response:
    """Judge versions by criterion with their newest calibration."""
    by_criterion: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _version_rows(engine):
        by_criterion[row["criterion"]].append(row)
    return page(
        request,
        "judges.html",
        {"title": "Judges", "criteria": sorted(by_criterion.items())},
        user=user,
    )


def _report_result(engine: Engine, version: str) -> tuple[JudgeVersion, Calibration | None]:
    with db_session(engine) as db:
        row = get_judge_version(db, version)
        try:
            calibration: Calibration | None = latest_calibration(db, version)
        except NotFoundError:
            calibration = None
        db.commit()  # ends the read; unlike rollback, keeps the rows loaded
    return row, calibration


def _parse_result(calibration: Calibration | None) -> CalibrationResult | None:
    if calibration is None:
        return None
    try:
        return CalibrationResult.model_validate(calibration.metrics)
    except ValidationError:
        return None  # written by an older judgeloop: the page shows the stored columns only


@router.get("/ui/judges/{version}", response_class=HTMLResponse)
def report_page(request: Request, version: str, engine: EngineDep, user: EngineerUser) -> Response:
    """The calibration report of one judge version with its plots."""
    try:
        judge, calibration = _report_result(engine, version)
    except NotFoundError as missing:
        return _missing(request, user, str(missing))
    result = _parse_result(calibration)
    per_label: list[tuple[str, Any, Any, int]] = []
    if result and result.agreement:
        per_label = [
            (label, scores.precision, scores.recall, scores.support)
            for label, scores in result.agreement.per_label.items()
        ]
    return page(
        request,
        "report.html",
        {
            "title": f"Calibration of {judge.name}",
            "judge": judge,
            "calibration": calibration,
            "result": result,
            "summary": summary_rows(result) if result else [],
            "figures": [svg(figure) for figure in calibration_figures(result)] if result else [],
            "per_label": per_label,
        },
        user=user,
    )


@router.get("/ui/judges/{version}/report.html")
def report_download(version: str, engine: EngineDep, user: EngineerUser) -> Response:
    """The same report as one self-contained HTML file (what `judgeloop calibrate` writes)."""
    _judge, calibration = _report_result(engine, version)
    result = _parse_result(calibration)
    if result is None:
        raise NotFoundError(f"judge version {version!r} has no readable calibration")
    headers = {
        **SECURITY_HEADERS,
        # The file carries its own <style>; as a download it never runs in this origin.
        "Content-Disposition": f'attachment; filename="calibration-{version[:12]}.html"',
    }
    return Response(calibration_html(result), media_type="text/html", headers=headers)


def _missing(request: Request, user: WebUser, message: str) -> Response:
    return page(
        request,
        "error.html",
        {"title": "Not found", "heading": "Not found", "message": message},
        user=user,
        status_code=404,
    )


@router.get("/ui/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    engine: EngineDep,
    user: EngineerUser,
    first: VersionQuery = None,
    second: VersionQuery = None,
    partition: Literal["calibration", "test"] = "test",
) -> Response:
    """Two judge versions of one criterion on the same held-out sessions, with a verdict."""
    versions = _version_rows(engine)
    comparison, error = None, None
    if first and second:
        try:
            with db_session(engine) as db:
                specs = [
                    JudgeSpec.model_validate(get_judge_version(db, v).spec) for v in (first, second)
                ]
                db.rollback()
            comparison = compare_judges(engine, specs[0], specs[1], partition=partition)
        except ValidationError as invalid:
            error = f"a stored judge spec no longer loads ({invalid.error_count()} problems)"
        except (NotFoundError, ValueError) as problem:  # different criteria, nothing in common
            error = str(problem)
    return page(
        request,
        "compare.html",
        {
            "title": "Compare judge versions",
            "versions": versions,
            "first": first or "",
            "second": second or "",
            "partition": partition,
            "comparison": comparison,
            "error": error,
        },
        user=user,
        status_code=422 if error else 200,
    )


@router.get("/ui/drift", response_class=HTMLResponse)
def drift_page(request: Request, engine: EngineDep, user: EngineerUser) -> Response:
    """Each criterion's drift detectors: alarmed or not, and since when."""
    with db_session(engine) as db:
        criteria = list_criteria(db)
        monitors = list(
            db.exec(
                select(DriftMonitor).order_by(
                    col(DriftMonitor.criterion_id), col(DriftMonitor.detector)
                )
            )
        )
        db.commit()
    by_criterion: dict[int | None, list[DriftMonitor]] = defaultdict(list)
    for monitor in monitors:
        by_criterion[monitor.criterion_id].append(monitor)
    rows = [(criterion, by_criterion.get(criterion.id, [])) for criterion in criteria]
    return page(
        request,
        "drift.html",
        {
            "title": "Drift",
            "rows": rows,
            "alarmed": sum(monitor.alarmed for monitor in monitors),
        },
        user=user,
    )


def _online_agreement() -> Callable[..., Any] | None:
    """``judgeloop.calibration.online.online_agreement`` when this install has it."""
    try:
        from judgeloop.calibration.online import online_agreement
    except ImportError:
        return None
    return online_agreement


@router.get("/ui/agreement", response_class=HTMLResponse)
def agreement_page(
    request: Request,
    engine: EngineDep,
    user: EngineerUser,
    by: Literal["day", "week"] = "day",
) -> Response:
    """Online agreement with the audit sample, per active judge version, over time."""
    measure = _online_agreement()
    judges: list[dict[str, Any]] = []
    if measure is not None:
        with db_session(engine) as db:
            versions = [v for v in list_judge_versions(db) if v.active]
            names = {c.id: c.name for c in db.exec(select(Criterion))}
            for version in versions:
                result = measure(db, version.id, by=by)
                points = [
                    SeriesPoint(
                        label=point.period.isoformat(),
                        estimate=point.agreement.estimate,
                        low=point.agreement.low,
                        high=point.agreement.high,
                        n=point.n,
                    )
                    for point in result.series
                ]
                judges.append(
                    {
                        "version": version,
                        "criterion": names.get(version.criterion_id, ""),
                        "result": result,
                        "plot": svg(
                            agreement_series_svg(
                                points, target=result.target, title=f"{version.name} by {by}"
                            )
                        )
                        if points
                        else None,
                    }
                )
            db.commit()  # ends the read; unlike rollback, keeps the rows loaded
    return page(
        request,
        "agreement.html",
        {
            "title": "Online agreement",
            "available": measure is not None,
            "judges": judges,
            "by": by,
            "labelled": sum(judge["result"].n for judge in judges),
        },
        user=user,
    )


@router.get("/ui/load", response_class=HTMLResponse)
def load_page(request: Request, engine: EngineDep, user: EngineerUser) -> Response:
    """Items waiting for review by reason and criterion, and how old the oldest is."""
    with db_session(engine) as db:
        loads = queue_load(db)
    by_reason: dict[str, int] = defaultdict(int)
    for load in loads:
        by_reason[load.reason] += load.items
    ordered = sorted(by_reason.items(), key=lambda entry: (-entry[1], entry[0]))
    plots = [svg(bars_svg([(k, float(v)) for k, v in ordered], title="Items by reason"))]
    return page(
        request,
        "load.html",
        {"title": "Queue load", "loads": loads, "plots": plots if loads else []},
        user=user,
    )

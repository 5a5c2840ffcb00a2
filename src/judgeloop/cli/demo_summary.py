"""What the demo measured after streaming: agreement, coverage, escalations, queue, drift."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import func, select

from judgeloop.calibration.bootstrap import Interval
from judgeloop.calibration.calibrate import CalibrationResult
from judgeloop.calibration.metrics import agreement_report
from judgeloop.judges.votes import collect_votes, majority_labels
from judgeloop.models import QueueItem
from judgeloop.store import db_session, get_criterion, get_splits, labels_for_criterion
from judgeloop.store.decisions import decisions_of_sessions


class StreamOutcome(BaseModel):
    """One judge on one group of streamed sessions, against the SME majority."""

    sessions: int
    auto: int
    coverage: float | None
    agreement_auto: Interval | None


class CriterionSummary(BaseModel):
    """One criterion's judge: held-out agreement beside the human ceiling, and the stream."""

    judge: str
    version: str
    target_agreement: float
    agreement_test: Interval | None
    sme_vs_smes: Interval | None
    judge_vs_smes: Interval | None
    threshold: float | None
    test_stream: StreamOutcome
    later_stream: StreamOutcome


class DemoSummary(BaseModel):
    """The demo's figures, printed as a table and (with --json) as one JSON line."""

    alpha: float
    delta: float
    sessions_streamed: int
    criteria: dict[str, CriterionSummary]
    escalated_sessions: int
    escalations_by_reason: dict[str, int]
    queue_open: int
    injection_sessions: int
    injection_escalated: int
    drift_escalations_main: int
    drift_escalations_later: int
    seconds_until_serving: float = 0.0


def _stream_outcome(
    engine: Engine, criterion: str, version: str, session_ids: set[int]
) -> StreamOutcome:
    with db_session(engine) as db:
        row = get_criterion(db, criterion)
        majority = majority_labels(row, collect_votes(labels_for_criterion(db, row.id or 0)))
        decisions = [
            d
            for d in decisions_of_sessions(db, sorted(session_ids))
            if d.judge_version_id == version
        ]
        labels, kind = list(row.labels), row.kind
    auto = [d for d in decisions if d.outcome == "auto" and d.session_id in majority]
    interval = None
    if auto:
        report = agreement_report(
            [majority[d.session_id] for d in auto],
            [str(d.label) for d in auto],
            labels,
            "categorical" if kind == "pairwise" else kind,  # type: ignore[arg-type]
            n_resamples=500,
        )
        interval = report.agreement
    return StreamOutcome(
        sessions=len(decisions),
        auto=sum(d.outcome == "auto" for d in decisions),
        coverage=(sum(d.outcome == "auto" for d in decisions) / len(decisions))
        if decisions
        else None,
        agreement_auto=interval,
    )


def summarize(
    engine: Engine,
    results: list[CalibrationResult],
    *,
    main_ids: set[int],
    later_ids: set[int],
    injection_ids: set[int],
    alpha: float,
    delta: float,
) -> DemoSummary:
    """Measure the streamed decisions of each calibrated judge."""
    criteria: dict[str, CriterionSummary] = {}
    for result in results:
        with db_session(engine) as db:
            criterion = get_criterion(db, result.criterion)
            splits = get_splits(db, criterion.id or 0)
        test_ids = {sid for sid, p in splits.items() if p == "test"} & main_ids
        ceiling = result.ceiling
        criteria[result.criterion] = CriterionSummary(
            judge=result.judge,
            version=result.version,
            target_agreement=1 - result.alpha,
            agreement_test=result.agreement.agreement if result.agreement else None,
            sme_vs_smes=ceiling.leave_one_out_sme if ceiling else None,
            judge_vs_smes=ceiling.leave_one_out_judge if ceiling else None,
            threshold=result.threshold.lambda_,
            test_stream=_stream_outcome(engine, result.criterion, result.version, test_ids),
            later_stream=_stream_outcome(engine, result.criterion, result.version, later_ids),
        )
    with db_session(engine) as db:
        decisions = decisions_of_sessions(db, sorted(main_ids | later_ids))
        queue_open = db.exec(
            select(func.count()).select_from(QueueItem).where(QueueItem.status != "done")
        ).one()
    escalated = [d for d in decisions if d.outcome == "escalate"]
    reasons = Counter(reason for d in escalated for reason in d.reasons)

    def drift_count(ids: set[int]) -> int:
        return sum(
            1
            for d in escalated
            if d.session_id in ids and any(r.startswith("drift") for r in d.reasons)
        )

    return DemoSummary(
        alpha=alpha,
        delta=delta,
        sessions_streamed=len(main_ids | later_ids),
        criteria=criteria,
        escalated_sessions=len({d.session_id for d in escalated}),
        escalations_by_reason=dict(reasons.most_common()),
        queue_open=int(queue_open),
        injection_sessions=len(injection_ids),
        injection_escalated=len(
            {
                d.session_id
                for d in escalated
                if d.session_id in injection_ids and "injection" in d.reasons
            }
        ),
        drift_escalations_main=drift_count(main_ids),
        drift_escalations_later=drift_count(later_ids),
    )


def injection_external_ids(demo_dir: Path) -> set[str]:
    """The demo sessions that carry a prompt injection (from the generator's ground truth)."""
    path = demo_dir / "drift_truth.jsonl"
    rows: list[dict[str, Any]] = [json.loads(line) for line in path.open(encoding="utf-8")]
    return {str(row["external_id"]) for row in rows if row.get("injection")}

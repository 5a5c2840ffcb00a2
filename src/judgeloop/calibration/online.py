"""Online agreement: how often the judge's automatic verdicts match the audit sample's labels.

Only the random audit sample estimates this honestly: queue-reviewed cases were chosen
because the judge looked unsure, unsafe or drifted. The statistics (:func:`summarize_audits`)
are pure; :func:`audited_decisions` reads the pairs from the store, and
:func:`online_agreement` puts the two together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlmodel import Session as DbSession
from sqlmodel import select

from judgeloop.calibration.binomial import binomial_upper_bound
from judgeloop.calibration.bootstrap import Interval
from judgeloop.judges.votes import collect_votes
from judgeloop.models import Criterion, Decision, HumanLabel
from judgeloop.store import NotFoundError, get_judge_version, latest_calibration

Period = Literal["day", "week"]
Status = Literal["too_few_labels", "no_target", "below_target", "on_target"]

CONFIDENCE = 0.95
MIN_LABELS = 10
"""Fewer audit labels than this and the estimate is reported but never judged against the target."""


@dataclass(frozen=True)
class AuditedDecision:
    """One automatic verdict next to the audit label its session later received."""

    decided_at: datetime
    judge_label: str | None
    human_label: str


class AgreementPoint(BaseModel):
    """Online agreement of the decisions made in one day or week."""

    period: date
    """First day of the period (a Monday for weeks), UTC."""
    n: int
    agreed: int
    agreement: Interval


class OnlineAgreement(BaseModel):
    """A judge version's agreement with the audit sample, overall and over time."""

    judge_version_id: str
    criterion: str
    by: Period
    n: int
    agreed: int
    agreement: Interval
    """Exact (Clopper-Pearson) 95% interval; estimate None when there are no audit labels."""
    within_one: Interval | None
    """Ordinal criteria: share of verdicts at most one level away from the audit label."""
    target: float | None
    """1 - alpha of the newest calibration; None without a calibration."""
    calibration_id: int | None
    min_labels: int
    below_target: bool
    """The whole interval lies below the target (never with fewer than ``min_labels``)."""
    status: Status
    message: str
    series: list[AgreementPoint]


def clopper_pearson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """The exact two-sided binomial interval for ``successes`` of ``n``; undefined for n = 0."""
    if n == 0:
        return Interval(estimate=None, low=None, high=None, confidence=confidence)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, {n}], got {successes}")
    tail = (1 - confidence) / 2
    high = binomial_upper_bound(successes, n, tail)
    low = 1.0 - binomial_upper_bound(n - successes, n, tail)
    return Interval(estimate=successes / n, low=max(0.0, low), high=high, confidence=confidence)


def period_start(moment: datetime, by: Period) -> date:
    """The UTC day of ``moment``, or the Monday of its ISO week."""
    day = (moment if moment.tzinfo is None else moment.astimezone(UTC)).date()
    return day - timedelta(days=day.weekday()) if by == "week" else day


def summarize_audits(
    audits: Sequence[AuditedDecision],
    *,
    judge_version_id: str,
    criterion: str,
    labels: Sequence[str] = (),
    ordinal: bool = False,
    target: float | None = None,
    calibration_id: int | None = None,
    by: Period = "day",
    min_labels: int = MIN_LABELS,
) -> OnlineAgreement:
    """Agreement of ``audits`` with its interval, the series per period and the target check."""
    agreed = sum(a.judge_label == a.human_label for a in audits)
    interval = clopper_pearson(agreed, len(audits))
    within_one = None
    if ordinal and labels:
        rank = {label: index for index, label in enumerate(labels)}
        close = sum(
            a.judge_label in rank
            and a.human_label in rank
            and abs(rank[a.judge_label] - rank[a.human_label]) <= 1
            for a in audits
        )
        within_one = clopper_pearson(close, len(audits))
    by_period: dict[date, list[bool]] = defaultdict(list)
    for audit in audits:
        by_period[period_start(audit.decided_at, by)].append(audit.judge_label == audit.human_label)
    series = [
        AgreementPoint(
            period=period,
            n=len(outcomes),
            agreed=sum(outcomes),
            agreement=clopper_pearson(sum(outcomes), len(outcomes)),
        )
        for period, outcomes in sorted(by_period.items())
    ]
    status, message = _status(len(audits), interval, target, min_labels)
    return OnlineAgreement(
        judge_version_id=judge_version_id,
        criterion=criterion,
        by=by,
        n=len(audits),
        agreed=agreed,
        agreement=interval,
        within_one=within_one,
        target=target,
        calibration_id=calibration_id,
        min_labels=min_labels,
        below_target=status == "below_target",
        status=status,
        message=message,
        series=series,
    )


def _status(
    n: int, interval: Interval, target: float | None, min_labels: int
) -> tuple[Status, str]:
    if n < min_labels:
        return "too_few_labels", (
            f"{n} audit label(s), fewer than {min_labels}: too few to compare with the target"
        )
    if target is None:
        return "no_target", "no calibration yet, so no target to compare with"
    assert interval.high is not None
    if interval.high < target:
        return "below_target", (
            f"below target: the 95% interval's upper bound {interval.high:.3f} is under "
            f"{target:.3f}; raise the audit rate and recalibrate"
        )
    return "on_target", f"consistent with the target {target:.3f}"


def audited_decisions(
    db: DbSession, judge_version_id: str
) -> tuple[Criterion, list[AuditedDecision]]:
    """The version's automatic decisions whose session later received an audit label.

    A decision counts as automatic when its outcome is ``auto``, or when the policy escalated
    it for the audit sample alone (reasons ``["audit"]``): that is the sample of what the
    judge decides on its own. The human label is the newest adjudication label of the session
    if there is one (the audit's reviewers disagreed), else the majority of its audit labels.
    Only labels created at or after the decision count.
    """
    version = get_judge_version(db, judge_version_id)
    criterion = db.get(Criterion, version.criterion_id)
    if criterion is None:
        raise NotFoundError(f"criterion {version.criterion_id} of {judge_version_id!r} is gone")
    statement = (
        select(Decision, HumanLabel)
        .join(
            HumanLabel,
            (HumanLabel.session_id == Decision.session_id)  # type: ignore[arg-type]
            & (HumanLabel.criterion_id == Decision.criterion_id),
        )
        .where(Decision.judge_version_id == judge_version_id)
        .where(HumanLabel.source.in_(("audit", "adjudication")))  # type: ignore[attr-defined]
        .order_by(Decision.id, HumanLabel.id)  # type: ignore[arg-type]
    )
    decisions: dict[int, Decision] = {}
    labels: dict[int, list[HumanLabel]] = defaultdict(list)
    for decision, label in db.exec(statement):
        if not _automatic(decision) or label.created_at < decision.created_at:
            continue
        assert decision.id is not None
        decisions[decision.id] = decision
        labels[decision.id].append(label)
    audits = []
    ordinal = criterion.kind == "ordinal"
    for decision_id, decision in decisions.items():
        human = _audit_label(labels[decision_id], list(criterion.labels), ordinal)
        if human is not None:
            audits.append(AuditedDecision(decision.created_at, decision.label, human))
    return criterion, audits


def _automatic(decision: Decision) -> bool:
    return decision.outcome == "auto" or (
        decision.outcome == "escalate" and list(decision.reasons) == ["audit"]
    )


def _audit_label(rows: list[HumanLabel], labels: list[str], ordinal: bool) -> str | None:
    audit = [row for row in rows if row.source == "audit"]
    if not audit:
        return None
    adjudications = [row for row in rows if row.source == "adjudication"]
    if adjudications:
        return max(adjudications, key=lambda row: (row.created_at, row.id or 0)).value
    votes = collect_votes(audit)
    return next(iter(votes.values())).majority(labels, ordinal)


def online_agreement(
    db: DbSession,
    judge_version_id: str,
    *,
    by: Period = "day",
    min_labels: int = MIN_LABELS,
) -> OnlineAgreement:
    """Online agreement of one judge version against the audit sample, with target check."""
    if by not in ("day", "week"):
        raise ValueError(f"by must be day or week, not {by!r}")
    criterion, audits = audited_decisions(db, judge_version_id)
    try:
        calibration = latest_calibration(db, judge_version_id)
    except NotFoundError:
        calibration = None
    return summarize_audits(
        audits,
        judge_version_id=judge_version_id,
        criterion=criterion.name,
        labels=list(criterion.labels),
        ordinal=criterion.kind == "ordinal",
        target=None if calibration is None else 1 - calibration.alpha,
        calibration_id=None if calibration is None else calibration.id,
        by=by,
        min_labels=min_labels,
    )

"""Online agreement: exact intervals, the target check, and the audited decisions in the store."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import Engine

from judgeloop.calibration.online import (
    AuditedDecision,
    clopper_pearson,
    online_agreement,
    period_start,
    summarize_audits,
)
from judgeloop.models import Decision, HumanLabelCreate, SessionCreate, SessionRef
from judgeloop.store import (
    add_calibration,
    add_criteria,
    add_labels,
    add_sessions,
    db_session,
    get_criterion,
    register_judge_version,
)
from tests.factories import RESOLVED, TONE, session_payload

MONDAY = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _audits(agreed: int, disagreed: int, at: datetime = MONDAY) -> list[AuditedDecision]:
    return [AuditedDecision(at, "yes", "yes")] * agreed + [AuditedDecision(at, "yes", "no")] * (
        disagreed
    )


def _summary(audits: list[AuditedDecision], **kwargs: object):  # type: ignore[no-untyped-def]
    return summarize_audits(audits, judge_version_id="v", criterion="resolved", **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- pure computation


def test_clopper_pearson_matches_the_beta_quantiles() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 10), (3, 10), (10, 10), (45, 50), (170, 200), (1, 1)]:
        interval = clopper_pearson(k, n)
        low = 0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1)
        high = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
        assert interval.estimate == pytest.approx(k / n)
        assert interval.low == pytest.approx(low, abs=1e-9)
        assert interval.high == pytest.approx(high, abs=1e-9)


def test_clopper_pearson_without_data_is_undefined_and_checks_its_input() -> None:
    empty = clopper_pearson(0, 0)
    assert empty.estimate is None and empty.low is None and empty.high is None
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson(4, 3)


@pytest.mark.parametrize("p", [0.5, 0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("n", [12, 40, 150])
def test_interval_covers_the_true_agreement_at_least_95_percent(p: float, n: int) -> None:
    # Exact coverage: the probability of every count k times whether its interval covers p.
    coverage = 0.0
    for k in range(n + 1):
        interval = clopper_pearson(k, n)
        assert interval.low is not None and interval.high is not None
        if interval.low <= p <= interval.high:
            coverage += math.comb(n, k) * p**k * (1 - p) ** (n - k)
    assert coverage >= 0.95 - 1e-9
    # and it is not absurdly wide: a simulated mean width below that of the trivial [0, 1]
    draws = np.random.default_rng(0).binomial(n, p, size=200)
    widths = [clopper_pearson(int(k), n).high - clopper_pearson(int(k), n).low for k in draws]  # type: ignore[operator]
    assert float(np.mean(widths)) < 0.6


def test_below_target_only_when_the_whole_interval_is_below() -> None:
    clearly_below = _summary(_audits(70, 30), target=0.9)
    assert clearly_below.below_target and clearly_below.status == "below_target"
    assert clearly_below.agreement.high is not None and clearly_below.agreement.high < 0.9
    assert "recalibrate" in clearly_below.message

    # 86% observed, but the interval still reaches 90%: not below target
    undecided = _summary(_audits(86, 14), target=0.9)
    assert undecided.agreement.high is not None and undecided.agreement.high >= 0.9
    assert not undecided.below_target and undecided.status == "on_target"


def test_too_few_labels_is_never_below_target_and_says_so() -> None:
    few = _summary(_audits(0, 6), target=0.9, min_labels=10)
    assert few.agreement.high is not None and few.agreement.high < 0.9
    assert not few.below_target and few.status == "too_few_labels"
    assert "6 audit label(s), fewer than 10" in few.message
    none = _summary([], target=0.9)
    assert none.n == 0 and none.agreement.estimate is None and none.series == []
    assert not none.below_target and none.status == "too_few_labels"


def test_without_calibration_there_is_no_target() -> None:
    result = _summary(_audits(10, 40))
    assert result.target is None and not result.below_target and result.status == "no_target"


def test_series_by_day_and_week_each_with_its_interval() -> None:
    audits = (
        _audits(9, 1, MONDAY)
        + _audits(4, 4, MONDAY + timedelta(days=1, hours=10))
        + _audits(5, 0, MONDAY + timedelta(days=7))
    )
    daily = _summary(audits, by="day")
    assert [p.period.isoformat() for p in daily.series] == [
        "2026-03-02",
        "2026-03-03",
        "2026-03-09",
    ]
    assert [(p.n, p.agreed) for p in daily.series] == [(10, 9), (8, 4), (5, 5)]
    for point in daily.series:
        assert point.agreement.low is not None and point.agreement.high is not None
        assert point.agreement.low <= point.agreed / point.n <= point.agreement.high
    weekly = _summary(audits, by="week")
    assert [(p.period.isoformat(), p.n) for p in weekly.series] == [
        ("2026-03-02", 18),
        ("2026-03-09", 5),
    ]
    assert daily.n == weekly.n == 23 and daily.agreed == 18
    # a Sunday evening in UTC-5 is Monday in UTC
    late = datetime(2026, 3, 8, 21, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert period_start(late, "week").isoformat() == "2026-03-09"


def test_ordinal_criteria_report_within_one() -> None:
    audits = [
        AuditedDecision(MONDAY, "4", "4"),
        AuditedDecision(MONDAY, "4", "5"),
        AuditedDecision(MONDAY, "2", "4"),
        AuditedDecision(MONDAY, None, "3"),
    ]
    labels = ["1", "2", "3", "4", "5"]
    result = _summary(audits, labels=labels, ordinal=True)
    assert result.agreed == 1
    assert result.within_one is not None and result.within_one.estimate == pytest.approx(0.5)
    assert _summary(audits).within_one is None


# --------------------------------------------------------------------------- from the store


def _setup(engine: Engine, count: int) -> tuple[list[int], str, str]:
    """Criteria, ``count`` sessions, and two registered judge versions of resolved."""
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED, TONE], actor="test")
        rows = add_sessions(
            db,
            [SessionCreate.model_validate(session_payload(f"s-{i}")) for i in range(count)],
            actor="test",
        )
        criterion = get_criterion(db, "resolved")
        for version in ("judge-a", "judge-b"):
            register_judge_version(
                db, version=version, name=version, criterion=criterion, spec={}, actor="test"
            )
    return [row.id or 0 for row, _created in rows], "judge-a", "judge-b"


def _decide(
    engine: Engine,
    session_id: int,
    version: str,
    *,
    label: str = "yes",
    outcome: str = "auto",
    reasons: list[str] | None = None,
    at: datetime,
) -> None:
    with db_session(engine) as db:
        criterion = get_criterion(db, "resolved")
        db.add(
            Decision(
                session_id=session_id,
                criterion_id=criterion.id or 0,
                judge_version_id=version,
                outcome=outcome,
                label=label,
                reasons=reasons or [],
                created_at=at,
            )
        )
        db.commit()


def _label(engine: Engine, index: int, value: str, source: str, annotator: str = "r1") -> None:
    with db_session(engine) as db:
        add_labels(
            db,
            [
                HumanLabelCreate(
                    session=SessionRef(source="test-app", external_id=f"s-{index}"),
                    criterion="resolved",
                    value=value,
                    annotator=annotator,
                    source=source,  # type: ignore[arg-type]
                )
            ],
            actor="test",
        )


def test_online_agreement_from_decisions_and_audit_labels(engine: Engine) -> None:
    ids, version, other = _setup(engine, 16)
    day1 = datetime.now(UTC) - timedelta(days=3)
    day2 = day1 + timedelta(days=1)
    # 0-5: auto decisions, audited; 0-3 agree, 4-5 disagree
    for i in range(6):
        _decide(engine, ids[i], version, at=day1 if i < 3 else day2)
        _label(engine, i, "yes" if i < 4 else "no", "audit")
    # 6: escalated only for the audit sample: counts; agrees
    _decide(engine, ids[6], version, outcome="escalate", reasons=["audit"], at=day2)
    _label(engine, 6, "yes", "audit")
    # 7: escalated for low confidence, then reviewed: a biased sample, never counted
    _decide(engine, ids[7], version, outcome="escalate", reasons=["low_confidence"], at=day2)
    _label(engine, 7, "no", "review")
    # 8: auto but only a review label (not the audit sample): not counted
    _decide(engine, ids[8], version, at=day2)
    _label(engine, 8, "no", "review")
    # 9: audit label older than the decision: not counted
    _label(engine, 9, "no", "audit")
    _decide(engine, ids[9], version, at=datetime.now(UTC) + timedelta(days=1))
    # 10: two auditors disagree, an adjudicator settles it: the adjudication counts (agrees)
    _decide(engine, ids[10], version, at=day2)
    _label(engine, 10, "no", "audit", annotator="r1")
    _label(engine, 10, "yes", "audit", annotator="r2")
    _label(engine, 10, "yes", "adjudication", annotator="senior")
    # 11: adjudication without an audit label (a safety review): not counted
    _decide(engine, ids[11], version, at=day2)
    _label(engine, 11, "no", "adjudication", annotator="senior")
    # 12: another judge version's decision on an audited session: not this version's
    _decide(engine, ids[12], other, at=day2)
    _label(engine, 12, "no", "audit")

    with db_session(engine) as db:
        result = online_agreement(db, version, min_labels=5)
    assert (result.n, result.agreed) == (8, 6)
    assert result.criterion == "resolved" and result.within_one is None
    assert result.status == "no_target" and result.target is None
    assert [(p.n, p.agreed) for p in result.series] == [(3, 3), (5, 3)]

    with db_session(engine) as db:
        add_calibration(
            db,
            actor="test",
            judge_version_id=version,
            label_snapshot="x",
            alpha=0.05,
            delta=0.1,
            threshold=0.8,
            coverage=0.5,
        )
        result = online_agreement(db, version, by="week", min_labels=5)
        other_result = online_agreement(db, other, min_labels=5)
    assert result.target == pytest.approx(0.95) and result.calibration_id is not None
    assert result.agreement.high is not None
    assert result.below_target == (result.agreement.high < 0.95)
    assert sum(p.n for p in result.series) == 8
    assert (other_result.n, other_result.agreed, other_result.status) == (1, 0, "too_few_labels")


def test_online_agreement_flags_a_judge_below_target(engine: Engine) -> None:
    ids, version, _other = _setup(engine, 30)
    at = datetime.now(UTC) - timedelta(hours=2)
    for i in range(30):
        _decide(engine, ids[i], version, at=at)
        _label(engine, i, "yes" if i < 18 else "no", "audit")
    with db_session(engine) as db:
        add_calibration(
            db,
            actor="test",
            judge_version_id=version,
            label_snapshot="x",
            alpha=0.1,
            delta=0.1,
        )
        result = online_agreement(db, version)
    assert (result.n, result.agreed) == (30, 18)
    assert result.below_target and result.status == "below_target"
    assert len(result.series) == 1


def test_online_agreement_errors(engine: Engine) -> None:
    from judgeloop.store import NotFoundError

    _setup(engine, 1)
    with db_session(engine) as db:
        with pytest.raises(NotFoundError, match="not registered"):
            online_agreement(db, "nope")
        with pytest.raises(ValueError, match="day or week"):
            online_agreement(db, "judge-a", by="month")  # type: ignore[arg-type]

"""Comparing two judge versions of one criterion on the same held-out sessions."""

from __future__ import annotations

from pydantic import BaseModel, computed_field
from sqlalchemy import Engine

from judgeloop.calibration.bootstrap import (
    Interval,
    McNemarResult,
    mcnemar_exact,
    paired_bootstrap_difference,
)
from judgeloop.calibration.evaluate import partition_data
from judgeloop.calibration.metrics import agreement_report, agreement_statistic
from judgeloop.calibration.verdict import difference_verdict
from judgeloop.judges.spec import JudgeSpec
from judgeloop.store import NotFoundError, db_session, latest_calibration


class JudgeSummary(BaseModel):
    """One side of a comparison."""

    judge: str
    version: str
    agreement: Interval
    cohen_kappa: Interval
    coverage: float | None
    cost_per_session_usd: float
    latency_mean_ms: float


class Comparison(BaseModel):
    """Two judges on the same items: each, the paired differences, McNemar's exact test."""

    criterion: str
    partition: str
    n: int
    first: JudgeSummary
    second: JudgeSummary
    agreement_difference: Interval
    kappa_difference: Interval
    mcnemar: McNemarResult

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> str:
        """Whether the two differ, in one sentence (see :func:`difference_verdict`)."""
        return difference_verdict(
            self.first.judge, self.second.judge, self.agreement_difference, self.mcnemar
        )


def _coverage(engine: Engine, spec: JudgeSpec) -> float | None:
    """Test coverage at the target agreement, from the version's newest calibration."""
    with db_session(engine) as db:
        try:
            return latest_calibration(db, spec.version).coverage
        except NotFoundError:
            return None


def compare_judges(
    engine: Engine, first: JudgeSpec, second: JudgeSpec, *, partition: str = "test", seed: int = 0
) -> Comparison:
    """Compare on the sessions of ``partition`` that both versions judged without error."""
    if first.criterion.name != second.criterion.name:
        raise ValueError(
            f"{first.name} judges {first.criterion.name!r}, {second.name} judges "
            f"{second.criterion.name!r}: only judges of one criterion can be compared"
        )
    a = partition_data(engine, first, (partition,))
    b = partition_data(engine, second, (partition,))
    by_session_b = dict(zip(b.session_ids, range(len(b.session_ids)), strict=True))
    pairs = [
        (i, by_session_b[sid])
        for i, sid in enumerate(a.session_ids)
        if sid in by_session_b and a.predicted[i] is not None and b.predicted[by_session_b[sid]]
    ]
    if not pairs:
        raise ValueError(
            f"no {partition} session was judged by both versions; run judgeloop calibrate or "
            "score on each first"
        )
    human = [a.human[i] for i, _ in pairs]
    pred_a = [str(a.predicted[i]) for i, _ in pairs]
    pred_b = [str(b.predicted[j]) for _, j in pairs]
    labels = list(first.criterion.labels)
    kind = first.criterion.kind if first.criterion.kind != "pairwise" else "categorical"
    reports = [agreement_report(human, p, labels, kind, seed=seed) for p in (pred_a, pred_b)]

    def summary(
        spec: JudgeSpec, index: int, data_cost: list[float], latency: list[float]
    ) -> JudgeSummary:
        return JudgeSummary(
            judge=spec.name,
            version=spec.version,
            agreement=reports[index].agreement,
            cohen_kappa=reports[index].cohen_kappa,
            coverage=_coverage(engine, spec),
            cost_per_session_usd=sum(data_cost) / max(len(data_cost), 1),
            latency_mean_ms=sum(latency) / max(len(latency), 1),
        )

    return Comparison(
        criterion=first.criterion.name,
        partition=partition,
        n=len(pairs),
        first=summary(first, 0, a.cost_usd, a.latency_ms),
        second=summary(second, 1, b.cost_usd, b.latency_ms),
        agreement_difference=paired_bootstrap_difference(
            agreement_statistic("agreement", labels, kind), pred_a, pred_b, human, seed=seed
        ),
        kappa_difference=paired_bootstrap_difference(
            agreement_statistic("cohen_kappa", labels, kind), pred_a, pred_b, human, seed=seed
        ),
        mcnemar=mcnemar_exact(pred_a, pred_b, human),
    )

"""Comparing two judges recorded in a replay file, on the items both judged.

The replay format is the one of ``judgeloop bench guarantee`` (see ``calibration.replay``):
one JSON object a line, ``{"id", "human": [label, ...], "judges": {NAME: output}}``.

What is compared, and on which items:

- an item counts when both judges gave a verdict on it and its human labels have a strict
  majority (one label given more often than any other; a single annotator's label always is).
  Items whose most frequent labels are tied (e.g. three annotators saying "1", "2", "tie") are
  **dropped** and counted in ``n_tied``: every tie-break rule would credit one judge
  arbitrarily, so such items say nothing about which judge is better. (``bench guarantee``
  instead breaks ties towards the label that sorts first; the counts here make the difference
  visible.) Items lacking either judge's verdict are counted in ``n_missing``;
- each judge: raw agreement and Cohen's kappa (unweighted: replay labels are nominal strings)
  with the human majority, 95% percentile bootstrap intervals over items;
- the differences **second minus first** (candidate minus baseline) in agreement and kappa, with
  paired bootstrap intervals (both judges on the same item resamples), and McNemar's exact test
  on the items exactly one of them got right;
- with a target (α, δ): coverage at the target agreement. The compared items are split at
  random (seeded) into a calibration half and a test half, the same split for both judges. On
  the calibration half fixed-sequence testing picks each judge's threshold λ on its recorded
  confidence (agreement >= 1-α with probability >= 1-δ); reported are λ and, on the test half,
  the share of items with confidence >= λ (coverage) and their agreement. One split only: a
  point estimate, not a benchmark; ``judgeloop bench guarantee`` repeats it over many splits.

``gate_reasons`` turns a comparison into the reasons a CI gate fails: the candidate (second)
below an agreement or kappa floor, or, with ``fail_if_worse``, significantly worse than the
baseline (the 95% paired bootstrap interval of the agreement difference lies below zero).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, computed_field

from judgeloop.calibration._arrays import BoolArray, FloatArray, IntArray
from judgeloop.calibration.bootstrap import (
    Interval,
    McNemarResult,
    mcnemar_exact,
    paired_bootstrap_difference,
)
from judgeloop.calibration.guarantee import DEFAULT_MIN_COUNT, fixed_sequence_threshold
from judgeloop.calibration.metrics import MetricName, agreement_report, agreement_statistic
from judgeloop.calibration.replay import Replay, ReplayError, load_replay
from judgeloop.calibration.verdict import difference_verdict
from judgeloop.models import CriterionKind


class CoverageAtTarget(BaseModel):
    """One judge's threshold from the calibration half and what it decides on the test half."""

    lambda_: float | None
    n_cal: int
    n_test: int
    coverage: float
    n_auto: int
    agreement: float | None


class ReplayJudgeSummary(BaseModel):
    """One side of a replay comparison, on the compared items."""

    judge: str
    n_judged: int
    agreement: Interval
    cohen_kappa: Interval
    coverage: CoverageAtTarget | None = None


class ReplayComparison(BaseModel):
    """Two recorded judges on the same items: each, paired differences (second - first), McNemar.

    ``n_items`` lines in the file; ``n_tied`` of them dropped for a tied human majority and
    ``n_missing`` (of the rest) for lacking a verdict of either judge; ``n`` compared.
    """

    replay: str
    labels: list[str]
    kind: CriterionKind
    n_items: int
    n_tied: int
    n_missing: int
    n: int
    first: ReplayJudgeSummary
    second: ReplayJudgeSummary
    agreement_difference: Interval
    kappa_difference: Interval
    mcnemar: McNemarResult
    alpha: float | None = None
    delta: float | None = None
    min_count: int = DEFAULT_MIN_COUNT
    n_resamples: int
    seed: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> str:
        """Whether the two differ, in one sentence (see :func:`difference_verdict`)."""
        return difference_verdict(
            self.first.judge, self.second.judge, self.agreement_difference, self.mcnemar
        )


def majority_is_tied(human: Sequence[str]) -> bool:
    """Whether the most frequent labels of ``human`` are tied (no strict majority)."""
    counts = Counter(human).most_common()
    return len(counts) > 1 and counts[0][1] == counts[1][1]


def read_ties(path: Path) -> BoolArray:
    """For each item of a replay file (in file order), whether its human majority is tied.

    Call after ``load_replay`` succeeded on ``path``: the lines are then known to be valid.
    """
    ties = [
        majority_is_tied(json.loads(line)["human"])
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return np.array(ties, dtype=bool)


def _kind(labels: Sequence[str]) -> CriterionKind:
    return "binary" if len(labels) == 2 else "categorical"


def _coverage_at_target(
    confidence: FloatArray,
    agrees: BoolArray,
    cal: IntArray,
    test: IntArray,
    *,
    alpha: float,
    delta: float,
    min_count: int,
) -> CoverageAtTarget:
    threshold = fixed_sequence_threshold(
        confidence[cal], agrees[cal], alpha=alpha, delta=delta, min_count=min_count
    )
    auto = threshold.auto(confidence[test])
    n_auto = int(auto.sum())
    return CoverageAtTarget(
        lambda_=threshold.lambda_,
        n_cal=int(cal.size),
        n_test=int(test.size),
        coverage=n_auto / test.size if test.size else 0.0,
        n_auto=n_auto,
        agreement=float(agrees[test][auto].mean()) if n_auto else None,
    )


def compare_replay(
    replay: Replay,
    first: str,
    second: str,
    *,
    tied: BoolArray | None = None,
    alpha: float | None = None,
    delta: float | None = None,
    min_count: int = DEFAULT_MIN_COUNT,
    n_resamples: int = 2000,
    seed: int = 0,
    source: str = "",
) -> ReplayComparison:
    """Compare judges ``first`` (baseline) and ``second`` (candidate) of a loaded replay.

    ``tied`` marks items whose human majority is tied (see ``read_ties``); they are dropped.
    Coverage at the target is computed when ``alpha`` or ``delta`` is given (the other then
    defaults to 0.1). Raises ``ReplayError`` for unknown judges or when no item is left.
    """
    rows = replay.select([first, second])
    n_items = len(replay.ids)
    ties = np.zeros(n_items, dtype=bool) if tied is None else np.asarray(tied, dtype=bool)
    if ties.shape != (n_items,):
        raise ValueError(f"tied has {ties.size} entries for {n_items} items")
    judged = rows.predicted >= 0
    both = judged.all(axis=0)
    keep = both & ~ties
    index = np.flatnonzero(keep)
    if index.size == 0:
        raise ReplayError(
            f"{source or 'replay'}: no item was judged by both {first!r} and {second!r} "
            "with a human majority"
        )
    labels = replay.labels
    kind = _kind(labels)
    human = [labels[code] for code in replay.human[index]]
    predicted = [[labels[code] for code in rows.predicted[j, index]] for j in range(2)]
    reports = [
        agreement_report(human, p, labels, kind, n_resamples=n_resamples, seed=seed)
        for p in predicted
    ]

    coverages: list[CoverageAtTarget | None] = [None, None]
    if alpha is not None or delta is not None:
        alpha = 0.1 if alpha is None else alpha
        delta = 0.1 if delta is None else delta
        order = np.random.default_rng(seed).permutation(index.size)
        cal, test = order[: index.size // 2], order[index.size // 2 :]
        agrees = rows.agrees()[:, index]
        coverages = [
            _coverage_at_target(
                rows.confidence[j, index],
                agrees[j],
                cal,
                test,
                alpha=alpha,
                delta=delta,
                min_count=min_count,
            )
            for j in range(2)
        ]

    def summary(j: int, name: str) -> ReplayJudgeSummary:
        return ReplayJudgeSummary(
            judge=name,
            n_judged=int(judged[j].sum()),
            agreement=reports[j].agreement,
            cohen_kappa=reports[j].cohen_kappa,
            coverage=coverages[j],
        )

    def difference(metric: MetricName) -> Interval:
        statistic = agreement_statistic(metric, labels, kind)
        return paired_bootstrap_difference(
            statistic, predicted[1], predicted[0], human, n_resamples=n_resamples, seed=seed
        )

    mcnemar = mcnemar_exact(predicted[0], predicted[1], human)
    return ReplayComparison(
        replay=source,
        labels=list(labels),
        kind=kind,
        n_items=n_items,
        n_tied=int(ties.sum()),
        n_missing=int((~both & ~ties).sum()),
        n=int(index.size),
        first=summary(0, first),
        second=summary(1, second),
        agreement_difference=difference("agreement"),
        kappa_difference=difference("cohen_kappa"),
        mcnemar=mcnemar,
        alpha=alpha,
        delta=delta,
        min_count=min_count,
        n_resamples=n_resamples,
        seed=seed,
    )


def compare_replay_file(
    path: Path,
    first: str,
    second: str,
    *,
    alpha: float | None = None,
    delta: float | None = None,
    min_count: int = DEFAULT_MIN_COUNT,
    n_resamples: int = 2000,
    seed: int = 0,
) -> ReplayComparison:
    """Read a replay file (errors name file:line) and compare two of its judges."""
    replay = load_replay(path)
    return compare_replay(
        replay,
        first,
        second,
        tied=read_ties(path),
        alpha=alpha,
        delta=delta,
        min_count=min_count,
        n_resamples=n_resamples,
        seed=seed,
        source=str(path),
    )


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def gate_reasons(
    comparison: ReplayComparison, floors: Mapping[str, float], *, fail_if_worse: bool
) -> list[str]:
    """Why a CI gate on the candidate (``second``) fails; empty when it passes.

    ``floors`` maps ``agreement`` and/or ``kappa`` to the least acceptable point estimate
    (an undefined kappa fails its floor). With ``fail_if_worse`` the candidate fails when
    the 95% paired bootstrap interval of its agreement minus the baseline's lies below 0.
    """
    candidate = comparison.second
    measured = {
        "agreement": candidate.agreement.estimate,
        "kappa": candidate.cohen_kappa.estimate,
    }
    reasons = []
    for name, floor in floors.items():
        if name not in measured:
            raise ValueError(f"unknown floor {name!r}; use agreement or kappa")
        value = measured[name]
        if value is None or value < floor:
            reasons.append(f"{candidate.judge} {name} {_fmt(value)} is below {floor:g}")
    difference = comparison.agreement_difference
    if fail_if_worse and difference.high is not None and difference.high < 0:
        reasons.append(
            f"{candidate.judge} agrees with the human majority less than "
            f"{comparison.first.judge}: difference {_fmt(difference.estimate)} "
            f"[{_fmt(difference.low)}, {_fmt(difference.high)}], "
            f"McNemar p = {comparison.mcnemar.p_value:.2g} (n = {comparison.n})"
        )
    return reasons

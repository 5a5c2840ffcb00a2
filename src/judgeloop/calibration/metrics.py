"""Agreement between a judge's labels and the human majority, with bootstrap intervals.

Every metric here is a function of the confusion matrix (rows: human, columns: judge), computed
on arrays of shape ``(..., L, L)``. A bootstrap resample of the items is thus fully described
by its L*L (human, judge) pair counts, drawn directly for 2,000 resamples at once (see
``bootstrap.grouped_bootstrap_intervals``), and every metric is evaluated on all of them at
once. Undefined values (a kappa when every label is the same, a
correlation of a constant) are NaN in arrays and ``None`` in reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel

from judgeloop.calibration._arrays import FloatArray, IntArray
from judgeloop.calibration.bootstrap import (
    Interval,
    WeightedStatistic,
    grouped_bootstrap_intervals,
)
from judgeloop.models import CriterionKind

KappaWeighting = Literal["none", "linear", "quadratic"]
AlphaLevel = Literal["nominal", "ordinal"]
ConfusionMetric = Callable[[FloatArray], FloatArray]
MetricName = Literal["agreement", "cohen_kappa", "krippendorff_alpha", "mcc", "spearman"]


def encode_labels(values: Sequence[str], labels: Sequence[str]) -> IntArray:
    """Each value's position in ``labels``; unknown values raise ``ValueError``."""
    index = {label: position for position, label in enumerate(labels)}
    try:
        return np.array([index[value] for value in values], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"label {error.args[0]!r} is not one of {list(labels)}") from None


def weighted_confusions(
    human: IntArray, predicted: IntArray, n_labels: int, weights: FloatArray | None = None
) -> FloatArray:
    """Confusion matrices ``(B, L, L)`` for item weights ``(B, n)`` (one unweighted if None)."""
    cells = human * n_labels + predicted
    if weights is None:
        counts = np.bincount(cells, minlength=n_labels**2).astype(np.float64)
        return counts.reshape(1, n_labels, n_labels)
    pairs = np.zeros((len(human), n_labels * n_labels))
    pairs[np.arange(len(human)), cells] = 1.0
    counts = np.atleast_2d(weights) @ pairs
    return counts.reshape(-1, n_labels, n_labels)


def confusion_matrix(
    human: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> IntArray:
    """Counts of (human label, judge label) pairs: rows human, columns judge."""
    matrix = weighted_confusions(
        encode_labels(human, labels), encode_labels(predicted, labels), len(labels)
    )
    counts: IntArray = matrix[0].astype(np.int64)
    return counts


def _divide(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


def raw_agreement(confusion: FloatArray) -> FloatArray:
    """Share of items on which the judge gives the human majority's label."""
    return _divide(np.trace(confusion, axis1=-2, axis2=-1), confusion.sum(axis=(-2, -1)))


def _disagreement_weights(n_labels: int, weighting: KappaWeighting) -> FloatArray:
    distance = np.abs(np.subtract.outer(np.arange(n_labels), np.arange(n_labels))).astype(float)
    if weighting == "quadratic":
        return distance**2
    if weighting == "linear":
        return distance
    return (distance > 0).astype(float)


def cohen_kappa(confusion: FloatArray, weighting: KappaWeighting = "none") -> FloatArray:
    """Cohen's kappa, 1 - (weighted observed disagreement) / (weighted chance disagreement)."""
    total = confusion.sum(axis=(-2, -1))[..., None, None]
    expected = _divide(
        confusion.sum(axis=-1)[..., :, None] * confusion.sum(axis=-2)[..., None, :], total
    )
    weights = _disagreement_weights(confusion.shape[-1], weighting)
    observed_disagreement = (weights * confusion).sum(axis=(-2, -1))
    chance_disagreement = (weights * expected).sum(axis=(-2, -1))
    return 1.0 - _divide(observed_disagreement, chance_disagreement)


def matthews_corrcoef(confusion: FloatArray) -> FloatArray:
    """Matthews correlation (the multiclass R_K form; for two labels the usual MCC)."""
    total = confusion.sum(axis=(-2, -1))
    correct = np.trace(confusion, axis1=-2, axis2=-1)
    human = confusion.sum(axis=-1)
    judge = confusion.sum(axis=-2)
    covariance = correct * total - (human * judge).sum(axis=-1)
    human_spread = total**2 - (human * human).sum(axis=-1)
    judge_spread = total**2 - (judge * judge).sum(axis=-1)
    return _divide(covariance, np.sqrt(human_spread * judge_spread))


def _mid_ranks(counts: FloatArray) -> FloatArray:
    """Average 1-based rank of each category given its counts (ties share their mean rank)."""
    return np.cumsum(counts, axis=-1) - (counts - 1.0) / 2.0


def spearman_rho(confusion: FloatArray) -> FloatArray:
    """Spearman's rank correlation of ordinal labels, ties given their average rank."""
    total = confusion.sum(axis=(-2, -1))
    human_counts = confusion.sum(axis=-1)
    judge_counts = confusion.sum(axis=-2)
    mean_rank = ((total + 1.0) / 2.0)[..., None]
    human_rank = _mid_ranks(human_counts) - mean_rank
    judge_rank = _mid_ranks(judge_counts) - mean_rank
    covariance = np.einsum("...i,...ij,...j->...", human_rank, confusion, judge_rank)
    human_var = (human_counts * human_rank**2).sum(axis=-1)
    judge_var = (judge_counts * judge_rank**2).sum(axis=-1)
    return _divide(covariance, np.sqrt(human_var * judge_var))


def _squared_distances(marginals: FloatArray, level: AlphaLevel) -> FloatArray:
    n_labels = marginals.shape[-1]
    if level == "nominal":
        return np.broadcast_to(1.0 - np.eye(n_labels), (*marginals.shape[:-1], n_labels, n_labels))
    # Ordinal: (sum of n_g for g from c to k, minus (n_c + n_k) / 2) squared.
    cumulative = np.cumsum(marginals, axis=-1)
    between = (
        cumulative[..., None, :]
        - cumulative[..., :, None]
        + (marginals[..., :, None] - marginals[..., None, :]) / 2.0
    )
    return between**2


def alpha_from_coincidences(coincidences: FloatArray, level: AlphaLevel) -> FloatArray:
    """Krippendorff's alpha, 1 - D_o / D_e, from coincidence matrices ``(..., L, L)``."""
    marginals = coincidences.sum(axis=-1)
    total = marginals.sum(axis=-1)
    distances = _squared_distances(marginals, level)
    observed = (coincidences * distances).sum(axis=(-2, -1))
    expected = _divide(
        (marginals[..., :, None] * marginals[..., None, :] * distances).sum(axis=(-2, -1)),
        total - 1.0,
    )
    return 1.0 - _divide(observed, expected)


def unit_coincidences(value_counts: FloatArray) -> FloatArray:
    """Each unit's contribution ``(U, L*L)`` to the coincidence matrix.

    A unit with m >= 2 values adds its ordered pairs of values from different coders, each
    weighted 1/(m-1); units with fewer than two values are not pairable and add nothing.
    """
    coded = value_counts.sum(axis=1)
    pairs = value_counts[:, :, None] * value_counts[:, None, :]
    pairs -= value_counts[:, :, None] * np.eye(value_counts.shape[1])[None, :, :]
    scale = _divide(np.ones_like(coded), coded - 1.0)
    scale = np.where(coded >= 2, scale, 0.0)
    return (pairs * scale[:, None, None]).reshape(len(value_counts), -1)


def value_counts(units: Sequence[Sequence[str | None]], labels: Sequence[str]) -> FloatArray:
    """How often each label was given in each unit ``(U, L)``; ``None`` is a missing value."""
    index = {label: position for position, label in enumerate(labels)}
    counts = np.zeros((len(units), len(labels)))
    for row, values in enumerate(units):
        for value in values:
            if value is None:
                continue
            if value not in index:
                raise ValueError(f"label {value!r} is not one of {list(labels)}")
            counts[row, index[value]] += 1
    return counts


def krippendorff_alpha(
    units: Sequence[Sequence[str | None]], labels: Sequence[str], level: AlphaLevel = "nominal"
) -> float | None:
    """Krippendorff's alpha for units x coders data with missing values (``None``).

    Computed from the coincidence matrix (Krippendorff, "Computing Krippendorff's
    Alpha-Reliability", 2011); ``labels`` gives the order of the values for the ordinal level.
    None when no unit has two values or every pairable value is the same.
    """
    contributions = unit_coincidences(value_counts(units, labels))
    coincidences = contributions.sum(axis=0).reshape(len(labels), len(labels))
    return _finite(float(alpha_from_coincidences(coincidences, level)))


def pair_alpha(confusion: FloatArray, level: AlphaLevel) -> FloatArray:
    """Krippendorff's alpha with two coders (human majority, judge) and no missing values."""
    return alpha_from_coincidences(confusion + np.swapaxes(confusion, -1, -2), level)


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


class LabelScores(BaseModel):
    """Precision and recall of one label (None when undefined) and its human support."""

    precision: float | None
    recall: float | None
    support: int


class AgreementReport(BaseModel):
    """A judge's agreement with the human majority on one partition, with 95% intervals.

    ``confusion`` has one row per human label and one column per judge label, in the order of
    ``labels``. Metrics that do not apply to the criterion kind are None.
    """

    kind: CriterionKind
    labels: list[str]
    n: int
    agreement: Interval
    cohen_kappa: Interval
    kappa_weighting: KappaWeighting
    krippendorff_alpha: Interval
    alpha_level: AlphaLevel
    mcc: Interval | None
    spearman: Interval | None
    per_label: dict[str, LabelScores]
    confusion: list[list[int]]
    n_resamples: int
    seed: int


def kappa_weighting_for(kind: CriterionKind) -> KappaWeighting:
    """Quadratic weights for ordinal criteria, none otherwise."""
    return "quadratic" if kind == "ordinal" else "none"


def alpha_level_for(kind: CriterionKind) -> AlphaLevel:
    """The ordinal level for ordinal criteria, nominal otherwise."""
    return "ordinal" if kind == "ordinal" else "nominal"


def confusion_metrics(kind: CriterionKind, n_labels: int) -> dict[MetricName, ConfusionMetric]:
    """The metrics that apply to a criterion kind, as functions of confusion matrices."""
    weighting = kappa_weighting_for(kind)
    level = alpha_level_for(kind)
    metrics: dict[MetricName, ConfusionMetric] = {
        "agreement": raw_agreement,
        "cohen_kappa": lambda confusion: cohen_kappa(confusion, weighting),
        "krippendorff_alpha": lambda confusion: pair_alpha(confusion, level),
    }
    if n_labels == 2:
        metrics["mcc"] = matthews_corrcoef
    if kind == "ordinal":
        metrics["spearman"] = spearman_rho
    return metrics


def agreement_statistic(
    metric: MetricName, labels: Sequence[str], kind: CriterionKind
) -> Callable[[Sequence[str], Sequence[str]], WeightedStatistic]:
    """``metric`` as ``(predicted, human) -> statistic of item weights``, for the bootstrap."""
    metrics = confusion_metrics(kind, len(labels))
    if metric not in metrics:
        raise ValueError(f"{metric} does not apply to a {kind} criterion with {len(labels)} labels")
    confusion_metric = metrics[metric]

    def bind(predicted: Sequence[str], human: Sequence[str]) -> WeightedStatistic:
        human_codes = encode_labels(human, labels)
        predicted_codes = encode_labels(predicted, labels)

        def statistic(weights: FloatArray) -> FloatArray:
            return confusion_metric(
                weighted_confusions(human_codes, predicted_codes, len(labels), weights)
            )

        return statistic

    return bind


def _per_label(confusion: FloatArray, labels: Sequence[str]) -> dict[str, LabelScores]:
    correct = np.diag(confusion)
    precision = _divide(correct, confusion.sum(axis=0))
    recall = _divide(correct, confusion.sum(axis=1))
    return {
        label: LabelScores(
            precision=_finite(float(precision[i])),
            recall=_finite(float(recall[i])),
            support=int(confusion[i].sum()),
        )
        for i, label in enumerate(labels)
    }


def agreement_report(
    human: Sequence[str],
    predicted: Sequence[str],
    labels: Sequence[str],
    kind: CriterionKind,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AgreementReport:
    """Agreement of ``predicted`` with ``human`` (the majority label per item), item by item.

    Intervals are percentile bootstrap intervals over items (sessions), all metrics computed
    on the same resamples.
    """
    if len(human) != len(predicted):
        raise ValueError(f"{len(human)} human labels but {len(predicted)} judge labels")
    if not human:
        raise ValueError("no items to compare")
    human_codes = encode_labels(human, labels)
    predicted_codes = encode_labels(predicted, labels)
    metrics = confusion_metrics(kind, len(labels))
    n_labels = len(labels)
    # Only the count of each (human, judge) pair matters: resample those L*L counts.
    pair_counts = np.bincount(human_codes * n_labels + predicted_codes, minlength=n_labels**2)

    def bound(metric: ConfusionMetric) -> WeightedStatistic:
        return lambda counts: metric(counts.reshape(-1, n_labels, n_labels))

    intervals = grouped_bootstrap_intervals(
        {name: bound(metric) for name, metric in metrics.items()},
        pair_counts,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
    confusion = pair_counts.reshape(n_labels, n_labels).astype(np.float64)
    return AgreementReport(
        kind=kind,
        labels=list(labels),
        n=len(human),
        agreement=intervals["agreement"],
        cohen_kappa=intervals["cohen_kappa"],
        kappa_weighting=kappa_weighting_for(kind),
        krippendorff_alpha=intervals["krippendorff_alpha"],
        alpha_level=alpha_level_for(kind),
        mcc=intervals.get("mcc"),
        spearman=intervals.get("spearman"),
        per_label=_per_label(confusion, labels),
        confusion=confusion.astype(int).tolist(),
        n_resamples=n_resamples,
        seed=seed,
    )

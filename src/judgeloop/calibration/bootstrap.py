"""Percentile bootstrap intervals over items (sessions), paired differences, McNemar's test.

A statistic is written as a function of item weights: given a ``(B, n)`` array whose row b
counts how often each of the n items was drawn in resample b, it returns the B values. With a
row of ones it gives the point estimate. Statistics that are sums over items (confusion
matrices, coincidence matrices, agreement counts) thus take all resamples in one matrix
product.

When a statistic depends on the items only through totals over groups of interchangeable
items (a confusion matrix only through the count of each (human, judge) label pair), a
resample is fully described by how many of its n draws fell in each group, which is
Multinomial(n, group sizes / n). ``grouped_bootstrap_intervals`` draws those K counts
directly: the same bootstrap distribution at O(resamples x K) cost instead of
O(resamples x n).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from judgeloop.calibration._arrays import FloatArray
from judgeloop.calibration.binomial import mcnemar_p_value

WeightedStatistic = Callable[[FloatArray], FloatArray]
PairedMetric = Callable[[Sequence[str], Sequence[str]], WeightedStatistic]
"""``(predicted, human) -> statistic``; see ``metrics.agreement_statistic``."""

# Resample counts are drawn in blocks of at most this many cells to bound memory.
_BLOCK_CELLS = 2_000_000


class Interval(BaseModel):
    """A point estimate with its percentile bootstrap interval (None when undefined)."""

    estimate: float | None
    low: float | None
    high: float | None
    confidence: float = 0.95


class McNemarResult(BaseModel):
    """McNemar's exact test of two judges on the same items against the same human labels."""

    only_first_correct: int
    only_second_correct: int
    p_value: float


def resample_counts(n_items: int, n_resamples: int, rng: np.random.Generator) -> FloatArray:
    """``(n_resamples, n_items)`` counts of each item in resamples of size ``n_items``."""
    draws = rng.integers(0, n_items, size=(n_resamples, n_items))
    flat = (draws + n_items * np.arange(n_resamples)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n_resamples * n_items)
    return counts.reshape(n_resamples, n_items).astype(np.float64)


def percentile_interval(estimate: float, samples: FloatArray, confidence: float = 0.95) -> Interval:
    """The percentile interval of the finite ``samples`` around ``estimate``.

    Resamples where the statistic is undefined (NaN) are left out.
    """
    finite = samples[np.isfinite(samples)]
    if not np.isfinite(estimate) or finite.size == 0:
        return Interval(estimate=None, low=None, high=None, confidence=confidence)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return Interval(
        estimate=float(estimate), low=float(low), high=float(high), confidence=confidence
    )


def _intervals(
    statistics: Mapping[str, WeightedStatistic],
    point: FloatArray,
    draw: Callable[[int], FloatArray],
    n_resamples: int,
    confidence: float,
) -> dict[str, Interval]:
    """Intervals from ``draw(b)``, which returns b resamples' ``(b, units)`` weights."""
    samples: dict[str, list[FloatArray]] = {name: [] for name in statistics}
    block = max(1, _BLOCK_CELLS // point.shape[1])
    for start in range(0, n_resamples, block):
        weights = draw(min(block, n_resamples - start))
        for name, statistic in statistics.items():
            samples[name].append(statistic(weights))
    return {
        name: percentile_interval(
            float(statistic(point)[0]), np.concatenate(samples[name]), confidence
        )
        for name, statistic in statistics.items()
    }


def bootstrap_intervals(
    statistics: Mapping[str, WeightedStatistic],
    n_items: int,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> dict[str, Interval]:
    """Percentile intervals of several statistics computed on the same item resamples."""
    if n_items < 1:
        raise ValueError("the bootstrap needs at least one item")
    rng = np.random.default_rng(seed)
    return _intervals(
        statistics,
        np.ones((1, n_items)),
        lambda size: resample_counts(n_items, size, rng),
        n_resamples,
        confidence,
    )


def grouped_bootstrap_intervals(
    statistics: Mapping[str, WeightedStatistic],
    group_sizes: npt.ArrayLike,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> dict[str, Interval]:
    """Item-bootstrap intervals of statistics of group totals, from ``(B, K)`` group counts.

    ``group_sizes[k]`` is how many items fall in group k; each statistic receives, per
    resample, how many of the resample's draws fell in each group (the sizes themselves give
    the point estimate). The intervals are those of ``bootstrap_intervals`` over the items
    for any statistic that sees the items only through such totals; only the random stream
    differs.
    """
    sizes = np.asarray(group_sizes, dtype=np.int64)
    if sizes.ndim != 1 or np.any(sizes < 0):
        raise ValueError("group_sizes must be a 1-d array of non-negative counts")
    n_items = int(sizes.sum())
    if n_items < 1:
        raise ValueError("the bootstrap needs at least one item")
    rng = np.random.default_rng(seed)
    shares = sizes / n_items

    def draw(size: int) -> FloatArray:
        counts: FloatArray = rng.multinomial(n_items, shares, size=size).astype(np.float64)
        return counts

    return _intervals(statistics, sizes[None, :].astype(np.float64), draw, n_resamples, confidence)


def bootstrap_interval(
    statistic: WeightedStatistic,
    n_items: int,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> Interval:
    """The percentile bootstrap interval of one statistic of item weights."""
    return bootstrap_intervals(
        {"value": statistic},
        n_items,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )["value"]


def paired_bootstrap_difference(
    metric: PairedMetric,
    a: Sequence[str],
    b: Sequence[str],
    human: Sequence[str],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> Interval:
    """metric(a) - metric(b) against the same human labels, both on each item resample.

    Resampling the items jointly keeps the correlation between the two judges, so the
    interval is much narrower than one from two independent intervals. Items with the same
    (a, b, human) labels are interchangeable, so ``metric``'s statistic (a sum over items,
    as every confusion-matrix metric is) is evaluated on one item per label triple, weighted
    by how often the resample drew that triple.
    """
    if not len(a) == len(b) == len(human):
        raise ValueError("a, b and human must label the same items")
    if not human:
        raise ValueError("the bootstrap needs at least one item")
    groups: dict[tuple[str, str, str], int] = {}
    for triple in zip(a, b, human, strict=True):
        groups[triple] = groups.get(triple, 0) + 1
    first = metric([t[0] for t in groups], [t[2] for t in groups])
    second = metric([t[1] for t in groups], [t[2] for t in groups])
    return grouped_bootstrap_intervals(
        {"value": lambda weights: first(weights) - second(weights)},
        list(groups.values()),
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )["value"]


def mcnemar_exact(a: Sequence[str], b: Sequence[str], human: Sequence[str]) -> McNemarResult:
    """McNemar's exact test: do judges a and b agree with the humans equally often?

    Only the items where exactly one judge agrees matter; under the null each is equally
    likely to favour either judge, so the two-sided p-value is a binomial tail at 1/2.
    """
    if not len(a) == len(b) == len(human):
        raise ValueError("a, b and human must label the same items")
    first = np.array([x == h for x, h in zip(a, human, strict=True)], dtype=bool)
    second = np.array([x == h for x, h in zip(b, human, strict=True)], dtype=bool)
    only_first = int(np.sum(first & ~second))
    only_second = int(np.sum(second & ~first))
    return McNemarResult(
        only_first_correct=only_first,
        only_second_correct=only_second,
        p_value=mcnemar_p_value(only_first, only_second),
    )

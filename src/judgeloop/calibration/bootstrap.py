"""Percentile bootstrap intervals over items (sessions), paired differences, McNemar's test.

A statistic is written as a function of item weights: given a ``(B, n)`` array whose row b
counts how often each of the n items was drawn in resample b, it returns the B values. With a
row of ones it gives the point estimate. Statistics that are sums over items (confusion
matrices, coincidence matrices, agreement counts) thus take all resamples in one matrix
product.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
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
    ones = np.ones((1, n_items))
    samples: dict[str, list[FloatArray]] = {name: [] for name in statistics}
    block = max(1, _BLOCK_CELLS // n_items)
    for start in range(0, n_resamples, block):
        weights = resample_counts(n_items, min(block, n_resamples - start), rng)
        for name, statistic in statistics.items():
            samples[name].append(statistic(weights))
    return {
        name: percentile_interval(
            float(statistic(ones)[0]), np.concatenate(samples[name]), confidence
        )
        for name, statistic in statistics.items()
    }


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
    interval is much narrower than one from two independent intervals.
    """
    if not len(a) == len(b) == len(human):
        raise ValueError("a, b and human must label the same items")
    first = metric(a, human)
    second = metric(b, human)
    return bootstrap_interval(
        lambda weights: first(weights) - second(weights),
        len(human),
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )


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

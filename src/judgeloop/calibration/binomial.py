"""Exact binomial tails: the test behind the threshold guarantee and McNemar's exact test.

scipy is not needed: the tails are sums of probability masses computed from log-factorials,
with relative errors below 1e-11, which the tests check against ``scipy.stats``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from judgeloop.calibration._arrays import FloatArray, IntArray

_BISECTION_STEPS = 60
_TABLE_CELLS = 4_000_000


@lru_cache(maxsize=4)
def _log_factorials_cached(size: int) -> FloatArray:
    return np.array([math.lgamma(i + 1.0) for i in range(size + 1)], dtype=np.float64)


def _log_factorials(n_max: int) -> FloatArray:
    # Rounded up to a power of two so that growing samples reuse one table.
    size = 1 << max(10, math.ceil(math.log2(n_max + 1)))
    return _log_factorials_cached(size)


def _cdf_row(n: int, p: float) -> FloatArray:
    """P(Bin(n, p) <= k) for k = 0..n."""
    if p <= 0.0:
        return np.ones(n + 1)
    if p >= 1.0:
        row = np.zeros(n + 1)
        row[n] = 1.0
        return row
    log_fact = _log_factorials(n)
    k = np.arange(n + 1)
    log_pmf = (
        log_fact[n] - log_fact[k] - log_fact[n - k] + k * math.log(p) + (n - k) * math.log1p(-p)
    )
    cdf: FloatArray = np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)
    return cdf


def binomial_cdf(k: npt.ArrayLike, n: npt.ArrayLike, p: float) -> FloatArray:
    """P(Bin(n, p) <= k), elementwise over broadcast ``k`` and ``n``; 0 for k < 0, 1 for k >= n."""
    k_values, n_values = np.broadcast_arrays(np.asarray(k, np.int64), np.asarray(n, np.int64))
    result = np.empty(k_values.shape, dtype=np.float64)
    for n_value in np.unique(n_values):
        where = n_values == n_value
        row = _cdf_row(int(n_value), p)
        result[where] = row[np.clip(k_values[where], 0, int(n_value))]
        result[where & (k_values < 0)] = 0.0
    return result


def binomial_upper_bound(k: int, n: int, delta: float) -> float:
    """The exact one-sided (Clopper-Pearson) 1-δ upper confidence bound on p given k of n.

    The bound is the p at which P(Bin(n, p) <= k) = δ; 1 when k = n or n = 0.
    """
    if n == 0 or k >= n:
        return 1.0
    low, high = k / n, 1.0
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2
        if _cdf_row(n, middle)[k] > delta:
            low = middle
        else:
            high = middle
    return high


def _critical_counts(n: IntArray, alpha: float, delta: float) -> IntArray:
    """For each n, the largest k with P(Bin(n, α) <= k) <= δ, or -1 (see ``rejection_counts``).

    Each row's sums depend only on its own n, so any subset of rows gives the same counts.
    """
    log_fact = _log_factorials(int(n.max()) if n.size else 0)
    sd = np.sqrt(n * alpha * (1 - alpha))
    # The largest rejecting count lies below n*alpha (the binomial median); mass more than
    # 12 standard deviations below the mean (< 1e-30) is left out of the lower-tail sums.
    first = np.maximum(0, np.floor(n * alpha - 12 * sd - 5)).astype(np.int64)
    last = np.minimum(n, np.ceil(n * alpha) + 2).astype(np.int64)
    width = int(np.max(last - first)) + 1 if n.size else 1
    offsets = np.arange(width)
    log_alpha, log_rest = math.log(alpha), math.log1p(-alpha)
    counts = np.empty(n.size, dtype=np.int64)
    rows_per_chunk = max(1, _TABLE_CELLS // width)
    for start in range(0, n.size, rows_per_chunk):
        rows = slice(start, min(n.size, start + rows_per_chunk))
        n_rows = n[rows, None]
        j = first[rows, None] + offsets[None, :]
        valid = j <= last[rows, None]
        j = np.where(valid, j, 0)
        log_pmf = (
            log_fact[n_rows]
            - log_fact[j]
            - log_fact[n_rows - j]
            + j * log_alpha
            + (n_rows - j) * log_rest
        )
        cdf = np.cumsum(np.exp(np.where(valid, log_pmf, -np.inf)), axis=1)
        counts[rows] = first[rows] + np.sum((cdf <= delta) & valid, axis=1) - 1
    return counts


@lru_cache(maxsize=32)
def _rejection_counts(size: int, alpha: float, delta: float) -> IntArray:
    return _critical_counts(np.arange(size + 1), alpha, delta)


def _check_levels(alpha: float, delta: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if not 0.0 < delta < 0.5:
        raise ValueError(f"delta must lie in (0, 0.5), got {delta}")


def rejection_counts(n_max: int, alpha: float, delta: float) -> IntArray:
    """For n = 0..n_max, the most disagreements among n items that still reject "risk > α".

    Entry n is the largest k with P(Bin(n, α) <= k) <= δ, or -1 when no count rejects. Observing
    at most that many disagreements among n auto-decided items is the same as the exact
    (Clopper-Pearson) 1-δ upper bound on the disagreement rate being at most α.
    """
    _check_levels(alpha, delta)
    size = 1 << max(6, math.ceil(math.log2(n_max + 1)))
    return _rejection_counts(size, alpha, delta)[: n_max + 1]


def rejection_counts_at(n_values: npt.ArrayLike, alpha: float, delta: float) -> IntArray:
    """``rejection_counts`` at the given n only (equal to ``rejection_counts(max n)[n_values]``).

    The whole table costs O(n_max^1.5) and is cached; when a few n are asked of a large table
    (a fixed sequence that stops early, few distinct confidences), computing just those rows
    is much cheaper.
    """
    _check_levels(alpha, delta)
    n = np.asarray(n_values, dtype=np.int64)
    if n.size and int(n.min()) < 0:
        raise ValueError(f"n must be non-negative, got {int(n.min())}")
    n_max = int(n.max()) if n.size else 0
    # Asked for a good share of the table: build (or reuse) the cached whole table.
    if 4 * n.size >= n_max + 1:
        return rejection_counts(n_max, alpha, delta)[n]
    return _critical_counts(n, alpha, delta)


def mcnemar_p_value(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against 1/2."""
    discordant = only_first + only_second
    if discordant == 0:
        return 1.0
    tail = float(binomial_cdf(min(only_first, only_second), discordant, 0.5))
    return min(1.0, 2.0 * tail)

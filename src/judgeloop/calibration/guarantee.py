"""The escalation threshold λ with a guarantee, for one judge and per tier of a cascade.

Fixed-sequence testing as in "Trust or Escalate" (Jung et al., ICLR 2025): walk candidate
thresholds from high to low; at each λ, among the n calibration items with confidence >= λ,
count the k disagreements with the human majority and test H0 "the disagreement rate above λ
exceeds α" with the exact binomial tail, P(Bin(n, α) <= k) <= δ (equivalently: the exact
Clopper-Pearson 1-δ upper bound on the rate is at most α). Keep lowering λ while H0 is
rejected and n >= ``min_count``; λ is the last rejected candidate. When the first candidate
already fails there is no threshold: escalate everything.

The guarantee, with R(λ) = P(disagree | confidence >= λ) for a new item drawn like the
calibration items: P(R(λ) > α) <= δ over the draw of the calibration sample.

- With a grid fixed before seeing the sample (``candidates``) this holds with no assumption
  on the judge: given n, the disagreements above a fixed λ are Binomial(n, R(λ)), so each test
  is exact at level δ, and a wrong λ can only be returned after the test at the first
  candidate (in the fixed order) with R(λ) > α rejected, which happens with probability <= δ.
- The default grid is the calibration confidences themselves, from the ``min_count``-th
  highest down (as in the paper). The grid and where it starts then depend on the calibration
  confidences, though never on agreement. The guarantee still holds when reliability does not
  fall as confidence rises (P(disagree | confidence = s) non-increasing in s): the item on
  which a candidate sits is then at least as likely to disagree as the items above it, which
  only makes each test more conservative. Without that assumption the default grid is an
  approximation; ``tests/test_calibration_guarantee.py`` and ``judgeloop bench guarantee``
  measure how often it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from judgeloop.calibration._arrays import BoolArray, FloatArray, IntArray, bool_array, float_array
from judgeloop.calibration.binomial import binomial_upper_bound, rejection_counts_at

DEFAULT_MIN_COUNT = 30


class Threshold(BaseModel):
    """A fitted escalation threshold: auto-decide when confidence >= ``lambda_``.

    ``lambda_`` is None when no candidate passed: every item is escalated. The calibration
    figures describe the items at or above ``lambda_``; ``upper_bound`` is the exact 1-δ upper
    confidence bound on their disagreement rate (at most α by construction).
    """

    lambda_: float | None
    alpha: float
    delta: float
    min_count: int
    grid: Literal["calibration", "fixed"]
    n_cal: int
    n_auto_cal: int
    disagreements_cal: int
    coverage_cal: float
    upper_bound: float | None
    tested: int

    @property
    def found(self) -> bool:
        """A threshold exists (some items may be auto-decided)."""
        return self.lambda_ is not None

    def auto(self, confidence: npt.ArrayLike) -> BoolArray:
        """Which items are auto-decided (missing confidences, NaN, never are)."""
        values = float_array(confidence)
        if self.lambda_ is None:
            return np.zeros(values.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            return values >= self.lambda_


def _check_targets(alpha: float, delta: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if not 0.0 < delta < 0.5:
        raise ValueError(f"delta must lie in (0, 0.5), got {delta}")


def last_accepted(
    n_above: IntArray, errors_above: IntArray, critical: IntArray, min_count: int
) -> int:
    """Position of the last candidate the fixed sequence accepts; -1 when the first fails.

    ``critical[i]`` is the most disagreements among ``n_above[i]`` items that still reject (see
    ``binomial.rejection_counts``); candidates come in testing order.
    """
    passed = (n_above >= min_count) & (errors_above <= critical)
    failures = np.flatnonzero(~passed)
    return int(failures[0] if failures.size else passed.size) - 1


def sequence_stop(
    n_above: IntArray, errors_above: IntArray, *, alpha: float, delta: float, min_count: int
) -> int:
    """``last_accepted``, computing critical counts only for the candidates it reaches.

    The sequence stops at its first failure, so candidates are tested in blocks that double
    in size: the binomial tails cost at most about twice those of the candidates tested.
    """
    start, block = 0, 256
    while start < n_above.size:
        part = slice(start, min(n_above.size, start + block))
        critical = rejection_counts_at(n_above[part], alpha, delta)
        last = last_accepted(n_above[part], errors_above[part], critical, min_count)
        if last < part.stop - start - 1:
            return start + last
        start, block = part.stop, 2 * block
    return n_above.size - 1


def calibration_candidates(
    confidence: FloatArray, disagrees: BoolArray, min_count: int
) -> tuple[FloatArray, IntArray, IntArray]:
    """The default grid: (λ, items >= λ, disagreements among them), from high to low λ.

    One candidate per distinct calibration confidence, so ties are never split, starting
    at the first one with at least ``min_count`` items at or above it.
    """
    known = ~np.isnan(confidence)
    order = np.argsort(-confidence[known], kind="stable")
    scores = confidence[known][order]
    cumulative_errors = np.cumsum(disagrees[known][order]).astype(np.int64)
    ends = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])
    n_above = (ends + 1).astype(np.int64)
    keep = n_above >= min_count
    return scores[ends[keep]], n_above[keep], cumulative_errors[ends[keep]]


def fixed_candidates(
    confidence: FloatArray, disagrees: BoolArray, candidates: Sequence[float]
) -> tuple[FloatArray, IntArray, IntArray]:
    """A fixed grid with its counts, from high to low λ (see ``calibration_candidates``)."""
    grid = np.unique(float_array(candidates))[::-1]
    known = ~np.isnan(confidence)
    ascending = np.argsort(confidence[known], kind="stable")
    scores = confidence[known][ascending]
    errors_below = np.r_[0, np.cumsum(disagrees[known][ascending])]
    first_at_or_above = np.searchsorted(scores, grid, side="left")
    n_above = scores.size - first_at_or_above
    errors_above = errors_below[-1] - errors_below[first_at_or_above]
    return grid, n_above.astype(np.int64), errors_above.astype(np.int64)


class SequenceOutcome(NamedTuple):
    """What fixed-sequence testing found, without the reporting extras of ``Threshold``."""

    lambda_: float | None
    n_cal: int
    n_auto: int
    disagreements: int
    tested: int


def run_fixed_sequence(
    confidence: FloatArray,
    disagrees: BoolArray,
    *,
    alpha: float,
    delta: float,
    min_count: int = DEFAULT_MIN_COUNT,
    candidates: Sequence[float] | None = None,
) -> SequenceOutcome:
    """Fixed-sequence testing on arrays; ``fixed_sequence_threshold`` is the checked front."""
    if candidates is None:
        grid, n_above, errors_above = calibration_candidates(confidence, disagrees, min_count)
    else:
        grid, n_above, errors_above = fixed_candidates(confidence, disagrees, candidates)
    last = sequence_stop(n_above, errors_above, alpha=alpha, delta=delta, min_count=min_count)
    tested = min(last + 2, grid.size)
    if last < 0:
        return SequenceOutcome(None, confidence.size, 0, 0, tested)
    return SequenceOutcome(
        float(grid[last]), confidence.size, int(n_above[last]), int(errors_above[last]), tested
    )


def _threshold(
    outcome: SequenceOutcome, alpha: float, delta: float, min_count: int, fixed_grid: bool
) -> Threshold:
    return Threshold(
        lambda_=outcome.lambda_,
        alpha=alpha,
        delta=delta,
        min_count=min_count,
        grid="fixed" if fixed_grid else "calibration",
        n_cal=outcome.n_cal,
        n_auto_cal=outcome.n_auto,
        disagreements_cal=outcome.disagreements,
        coverage_cal=outcome.n_auto / outcome.n_cal if outcome.n_cal else 0.0,
        upper_bound=(
            binomial_upper_bound(outcome.disagreements, outcome.n_auto, delta)
            if outcome.lambda_ is not None
            else None
        ),
        tested=outcome.tested,
    )


def fixed_sequence_threshold(
    confidence: npt.ArrayLike,
    agrees: npt.ArrayLike,
    *,
    alpha: float,
    delta: float,
    min_count: int = DEFAULT_MIN_COUNT,
    candidates: Sequence[float] | None = None,
) -> Threshold:
    """The lowest λ whose auto-decided set agrees with humans >= 1-α with probability >= 1-δ.

    ``confidence`` is each calibration item's raw (or calibrated: only the order matters)
    confidence, NaN for a judge error; ``agrees`` says whether the judge's label matched the
    human majority. ``candidates`` fixes the grid in advance (see the module docstring for
    what that buys); a fixed grid's first candidate is tested even if few items clear it,
    and a candidate with fewer than ``min_count`` items above it fails.
    """
    _check_targets(alpha, delta)
    scores = float_array(confidence)
    disagrees = ~bool_array(agrees)
    if scores.shape != disagrees.shape or scores.ndim != 1:
        raise ValueError("confidence and agrees must be 1-d arrays of equal length")
    outcome = run_fixed_sequence(
        scores, disagrees, alpha=alpha, delta=delta, min_count=min_count, candidates=candidates
    )
    return _threshold(outcome, alpha, delta, min_count, candidates is not None)


class CascadeThresholds(BaseModel):
    """One threshold per tier; an item goes to the first tier whose confidence clears it.

    Each tier was fitted at level δ / (number of tiers) on the calibration items that reach it.
    """

    alpha: float
    delta: float
    tiers: list[Threshold]

    def route(self, confidences: npt.ArrayLike) -> IntArray:
        """For ``(tiers, items)`` confidences, the deciding tier of each item, -1 to escalate."""
        values = float_array(confidences)
        deciding = np.full(values.shape[1], -1, dtype=np.int64)
        for tier, threshold in enumerate(self.tiers):
            clears = threshold.auto(values[tier]) & (deciding < 0)
            deciding[clears] = tier
        return deciding


def run_cascade(
    confidences: FloatArray,
    agrees: BoolArray,
    *,
    alpha: float,
    delta: float,
    min_count: int = DEFAULT_MIN_COUNT,
) -> list[SequenceOutcome]:
    """Per-tier fixed-sequence testing on ``(tiers, items)`` arrays, δ split evenly."""
    tier_delta = delta / confidences.shape[0]
    undecided = np.ones(confidences.shape[1], dtype=bool)
    outcomes: list[SequenceOutcome] = []
    for scores, agreed in zip(confidences, agrees, strict=True):
        outcome = run_fixed_sequence(
            scores[undecided],
            ~agreed[undecided],
            alpha=alpha,
            delta=tier_delta,
            min_count=min_count,
        )
        outcomes.append(outcome)
        if outcome.lambda_ is not None:
            with np.errstate(invalid="ignore"):
                undecided &= ~(scores >= outcome.lambda_)
    return outcomes


def cascade_thresholds(
    confidences: npt.ArrayLike,
    agrees: npt.ArrayLike,
    *,
    alpha: float,
    delta: float,
    min_count: int = DEFAULT_MIN_COUNT,
) -> CascadeThresholds:
    """Per-tier thresholds for a cascade, from ``(tiers, items)`` confidences and agreements.

    Tier t is fitted, at level δ/T, on the calibration items that no earlier tier decided,
    using tier t's own confidence and agreement. The claim: with probability >= 1-δ, every
    tier's auto-decided set (among the items that reach that tier) agrees with humans at
    rate >= 1-α, hence so does their union, the cascade's auto-decided set, since its
    disagreement rate is a mixture of the tiers' rates. The union bound over tiers is what
    the δ/T split pays for. Each tier's test would be exact on a fresh sample of the items
    reaching it. Here the sample is shared: which items reach tier t depends on the earlier
    thresholds, and an earlier threshold saw those items only through the few between it and
    its first failing candidate (the ones that made that test fail). That reuse is a small
    approximation on top of the single-judge one, measured by the tests.
    """
    _check_targets(alpha, delta)
    values = float_array(confidences)
    agreed = bool_array(agrees)
    if values.ndim != 2 or values.shape != agreed.shape:
        raise ValueError("confidences and agrees must both have shape (tiers, items)")
    outcomes = run_cascade(values, agreed, alpha=alpha, delta=delta, min_count=min_count)
    tier_delta = delta / values.shape[0]
    return CascadeThresholds(
        alpha=alpha,
        delta=delta,
        tiers=[_threshold(outcome, alpha, tier_delta, min_count, False) for outcome in outcomes],
    )

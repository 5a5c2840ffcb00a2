"""Thresholds with a guarantee: exact binomial tails, fixed-sequence testing, and simulations
from known confidence -> agreement models showing the guarantee holds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from judgeloop.calibration import (
    LearnedEscalation,
    cascade_thresholds,
    fixed_sequence_threshold,
)
from judgeloop.calibration.binomial import (
    binomial_cdf,
    binomial_upper_bound,
    rejection_counts,
    rejection_counts_at,
)

ALPHA, DELTA = 0.1, 0.1


def monte_carlo_slack(draws: int, delta: float = DELTA) -> float:
    """Three standard errors of a success share estimated from ``draws`` draws."""
    return 3 * math.sqrt(delta * (1 - delta) / draws)


# --------------------------------------------------------------------------- exact tails


@pytest.mark.parametrize("n", [0, 1, 7, 60, 500, 3000])
@pytest.mark.parametrize("p", [0.02, 0.1, 0.5, 0.9])
def test_binomial_cdf_matches_scipy(n: int, p: float) -> None:
    k = np.arange(-1, n + 2)
    assert np.allclose(binomial_cdf(k, n, p), stats.binom.cdf(k, n, p), rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1, 0.25])
@pytest.mark.parametrize("delta", [0.01, 0.05, 0.1, 0.2])
def test_rejection_counts_are_the_largest_rejecting_counts(alpha: float, delta: float) -> None:
    n = np.arange(2001)
    critical = rejection_counts(2000, alpha, delta)
    rejects = stats.binom.cdf(critical, n, alpha) <= delta
    assert np.all(rejects | (critical == -1))
    assert np.all(stats.binom.cdf(critical + 1, n, alpha) > delta)


def test_rejection_counts_at_a_few_n_equal_the_whole_table() -> None:
    # Few n out of a large range take the row-by-row path, many take the cached table.
    few = np.array([0, 1, 29, 30, 777, 4096, 9_999, 10_000, 5])
    whole = rejection_counts(10_000, ALPHA, DELTA)
    assert np.array_equal(rejection_counts_at(few, ALPHA, DELTA), whole[few])
    many = np.arange(0, 10_001, 3)
    assert np.array_equal(rejection_counts_at(many, ALPHA, DELTA), whole[many])
    with pytest.raises(ValueError, match="non-negative"):
        rejection_counts_at([-1], ALPHA, DELTA)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (0, 30), (3, 50), (12, 200), (49, 50), (0, 0)])
def test_upper_bound_is_clopper_pearson(k: int, n: int) -> None:
    expected = 1.0 if n == 0 or k == n else stats.beta.ppf(1 - DELTA, k + 1, n - k)
    assert binomial_upper_bound(k, n, DELTA) == pytest.approx(expected, abs=1e-9)


# --------------------------------------------------------------------------- the procedure


def reference_threshold(
    confidence: np.ndarray, agrees: np.ndarray, min_count: int, grid: list[float] | None = None
) -> float | None:
    """A plain loop over candidates with scipy's binomial tail."""
    known = ~np.isnan(confidence)
    candidates = sorted(set(confidence[known]) if grid is None else set(grid), reverse=True)
    accepted = None
    for candidate in candidates:
        above = known & (confidence >= candidate)
        n, k = int(above.sum()), int((above & ~agrees).sum())
        if grid is None and n < min_count:
            continue
        if n < min_count or stats.binom.cdf(k, n, ALPHA) > DELTA:
            break
        accepted = candidate
    return accepted


@pytest.mark.parametrize("seed", range(30))
def test_fixed_sequence_matches_a_plain_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 400))
    confidence = np.round(rng.uniform(0.5, 1.0, n), int(rng.integers(1, 4)))  # ties
    confidence[rng.random(n) < 0.05] = np.nan
    agrees = rng.random(n) < confidence * float(rng.uniform(0.9, 1.1))
    threshold = fixed_sequence_threshold(confidence, agrees, alpha=ALPHA, delta=DELTA)
    assert threshold.lambda_ == reference_threshold(confidence, agrees, 30)
    grid = [0.99, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5]
    fixed = fixed_sequence_threshold(
        confidence, agrees, alpha=ALPHA, delta=DELTA, min_count=10, candidates=grid
    )
    assert fixed.lambda_ == reference_threshold(confidence, agrees, 10, grid)
    if threshold.lambda_ is not None:
        auto = threshold.auto(confidence)
        assert threshold.n_auto_cal == auto.sum()
        assert threshold.disagreements_cal == (auto & ~agrees).sum()
        assert threshold.upper_bound is not None and threshold.upper_bound <= ALPHA


@pytest.mark.parametrize("failing_from", [300, 1500, None])
def test_fixed_sequence_over_thousands_of_candidates_matches_the_reference(
    failing_from: int | None,
) -> None:
    # 3,000 distinct confidences: candidates are tested in blocks of 256, 512, 1,024, ...;
    # the first failure falls in the second block, the third, or never.
    n = 3000
    confidence = np.linspace(1.0, 0.4, n)
    agrees = np.random.default_rng(3).random(n) < 0.97
    agrees[:100] = True  # so that the first candidates pass
    if failing_from is not None:
        agrees[failing_from:] = False
    threshold = fixed_sequence_threshold(confidence, agrees, alpha=ALPHA, delta=DELTA)
    expected = reference_threshold(confidence, agrees, 30)
    assert expected is not None and threshold.lambda_ == expected


def test_no_threshold_escalates_everything() -> None:
    confidence = np.linspace(1.0, 0.5, 100)
    agrees = np.arange(100) % 3 != 0  # one in three disagree, at every confidence
    threshold = fixed_sequence_threshold(confidence, agrees, alpha=ALPHA, delta=DELTA)
    assert threshold.lambda_ is None and not threshold.found
    assert threshold.coverage_cal == 0.0 and threshold.tested == 1
    assert not threshold.auto(confidence).any()


def test_threshold_rests_on_min_count_items() -> None:
    confidence = np.linspace(1.0, 0.5, 200)
    agrees = np.ones(200, dtype=bool)
    assert (
        fixed_sequence_threshold(
            confidence, agrees, alpha=ALPHA, delta=DELTA, min_count=250
        ).lambda_
        is None
    )
    everything = fixed_sequence_threshold(confidence, agrees, alpha=ALPHA, delta=DELTA)
    assert everything.lambda_ == 0.5 and everything.coverage_cal == 1.0
    assert everything.auto([np.nan, 0.49, 0.5]).tolist() == [False, False, True]


# --------------------------------------------------------------------------- simulations


def test_baseline_meets_the_guarantee_on_synthetic_data_of_known_agreement() -> None:
    # Confidence ~ U(0.5, 1) and P(agree | c) = c, so the disagreement rate above λ is
    # R(λ) = (1 - λ) / 2: the best threshold for α = 0.1 is 0.8 (coverage 0.4).
    rng = np.random.default_rng(11)
    draws, n_cal, n_test = 1000, 1000, 4000
    successes, population_ok, coverage = 0, 0, []
    for _ in range(draws):
        confidence = rng.uniform(0.5, 1.0, n_cal)
        threshold = fixed_sequence_threshold(
            confidence, rng.random(n_cal) < confidence, alpha=ALPHA, delta=DELTA
        )
        test = rng.uniform(0.5, 1.0, n_test)
        auto = threshold.auto(test)
        agreed = (rng.random(n_test) < test)[auto]
        successes += not auto.any() or agreed.mean() >= 1 - ALPHA
        population_ok += threshold.lambda_ is None or (1 - threshold.lambda_) / 2 <= ALPHA
        coverage.append(auto.mean())
    assert successes / draws >= 1 - DELTA - monte_carlo_slack(draws)
    assert population_ok / draws >= 1 - DELTA
    assert 0.1 < np.mean(coverage) < 0.4


def judge_panel(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Four noisy judges of a binary label with shared item difficulty: (items, judges, 2)."""
    truth = rng.integers(0, 2, n)
    easiness = 3.0 * (0.8 - rng.uniform(0, 1, n))
    skill = np.array([1.0, 0.9, 0.8, 0.7])
    logits = skill[None, :] * easiness[:, None] + rng.normal(0, 1, (n, 4))
    p_truth = 1 / (1 + np.exp(-logits))
    distributions = np.empty((n, 4, 2))
    distributions[np.arange(n), :, truth] = p_truth
    distributions[np.arange(n), :, 1 - truth] = 1 - p_truth
    return distributions, truth


def test_learned_confidence_keeps_the_guarantee_and_covers_more() -> None:
    rng = np.random.default_rng(12)
    test_x, test_truth = judge_panel(rng, 20_000)
    best_judge_right = test_x[:, 0].argmax(axis=1) == test_truth
    draws, n_cal = 150, 400
    learned_ok = baseline_ok = 0
    learned_coverage, baseline_coverage = [], []
    for draw in range(draws):
        x, truth = judge_panel(rng, n_cal)
        method = LearnedEscalation(alpha=ALPHA, delta=DELTA, seed=draw).fit(x, truth)
        labels, _, auto = method.predict(test_x)
        learned_ok += not auto.any() or (labels == test_truth)[auto].mean() >= 1 - ALPHA
        learned_coverage.append(auto.mean())
        assert method.fit_index_.size + method.test_index_.size == n_cal
        assert not set(method.fit_index_) & set(method.test_index_)
        assert method.threshold_.grid == "fixed" and method.threshold_.n_cal == n_cal // 2

        single = fixed_sequence_threshold(
            x[:, 0].max(axis=1), x[:, 0].argmax(axis=1) == truth, alpha=ALPHA, delta=DELTA
        )
        single_auto = single.auto(test_x[:, 0].max(axis=1))
        baseline_ok += not single_auto.any() or best_judge_right[single_auto].mean() >= 0.9
        baseline_coverage.append(single_auto.mean())
    assert learned_ok / draws >= 1 - DELTA - monte_carlo_slack(draws)
    assert baseline_ok / draws >= 1 - DELTA - monte_carlo_slack(draws)
    assert np.mean(learned_coverage) > 2 * np.mean(baseline_coverage)


def test_cascade_meets_the_guarantee_and_routes_cheap_tier_first() -> None:
    # Tier 0 is cheap and weaker (P(agree | c) = c - 0.05), tier 1 is calibrated.
    rng = np.random.default_rng(13)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        confidence = rng.uniform(0.5, 1.0, (2, n))
        agrees = rng.random((2, n)) < confidence - np.array([[0.05], [0.0]])
        return confidence, agrees

    test_confidence, test_agrees = draw(4000)
    draws, successes, coverage = 600, 0, []
    for _ in range(draws):
        fitted = cascade_thresholds(*draw(800), alpha=ALPHA, delta=DELTA)
        assert [tier.delta for tier in fitted.tiers] == [DELTA / 2, DELTA / 2]
        tier = fitted.route(test_confidence)
        auto = tier >= 0
        agreed = test_agrees[np.clip(tier, 0, 1), np.arange(tier.size)]
        successes += not auto.any() or agreed[auto].mean() >= 1 - ALPHA
        coverage.append(auto.mean())
    assert successes / draws >= 1 - DELTA - monte_carlo_slack(draws)
    assert np.mean(coverage) > 0.1


def test_cascade_route_uses_the_first_tier_that_clears() -> None:
    confidence = np.r_[np.linspace(1.0, 0.5, 300)]
    tiers = np.vstack([confidence, confidence[::-1]])
    agrees = np.ones_like(tiers, dtype=bool)
    fitted = cascade_thresholds(tiers, agrees, alpha=ALPHA, delta=DELTA)
    route = fitted.route(np.array([[0.95, 0.1, np.nan], [0.1, 0.95, 0.95]]))
    assert fitted.tiers[0].lambda_ == 0.5
    assert route.tolist() == [0, -1, -1]

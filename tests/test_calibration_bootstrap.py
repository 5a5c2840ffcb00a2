"""Bootstrap intervals: nominal coverage on data of known agreement, pairing, McNemar."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from judgeloop.calibration import (
    agreement_report,
    agreement_statistic,
    bootstrap_interval,
    mcnemar_exact,
    paired_bootstrap_difference,
)
from judgeloop.calibration.bootstrap import grouped_bootstrap_intervals, resample_counts


def test_resample_counts_draw_n_items_per_resample() -> None:
    counts = resample_counts(50, 200, np.random.default_rng(0))
    assert counts.shape == (200, 50)
    assert np.all(counts.sum(axis=1) == 50)
    assert counts.mean() == pytest.approx(1.0)


def test_intervals_cover_the_true_agreement_and_kappa_at_about_the_nominal_rate() -> None:
    # Human labels are fair coin flips; the judge copies them with probability 0.8 and flips
    # them otherwise. True agreement 0.8; both marginals stay 1/2, so true kappa = 0.6.
    rng = np.random.default_rng(2024)
    datasets, n_items = 200, 120
    covered = {"agreement": 0, "kappa": 0}
    for dataset in range(datasets):
        human = rng.integers(0, 2, n_items)
        judge = np.where(rng.random(n_items) < 0.8, human, 1 - human)
        report = agreement_report(
            [str(h) for h in human],
            [str(j) for j in judge],
            ["0", "1"],
            "binary",
            n_resamples=1000,
            seed=dataset,
        )
        for name, interval, truth in [
            ("agreement", report.agreement, 0.8),
            ("kappa", report.cohen_kappa, 0.6),
        ]:
            assert interval.low is not None and interval.high is not None
            covered[name] += interval.low <= truth <= interval.high
    for name, hits in covered.items():
        assert 0.90 <= hits / datasets <= 0.99, (name, hits / datasets)


def reference_kappa(human: np.ndarray, judge: np.ndarray) -> float:
    """Unweighted Cohen's kappa from the item lists, as in the textbook."""
    observed = float(np.mean(human == judge))
    labels = np.union1d(human, judge)
    chance = sum(float(np.mean(human == v) * np.mean(judge == v)) for v in labels)
    return (observed - chance) / (1.0 - chance)


def reference_percentiles(values: list[float]) -> tuple[float, float]:
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def test_pair_count_resampling_matches_a_per_item_bootstrap() -> None:
    # The report resamples the 9 (human, judge) pair counts; a plain bootstrap draws the 90
    # items one by one. Same point estimates exactly; intervals within Monte-Carlo error
    # (2,000 resamples put the 2.5% / 97.5% quantiles within about 0.01 of their limits).
    rng = np.random.default_rng(11)
    human = rng.choice(["a", "b", "c"], 90, p=[0.5, 0.3, 0.2])
    judge = np.where(rng.random(90) < 0.75, human, rng.choice(["a", "b", "c"], 90))
    report = agreement_report(human.tolist(), judge.tolist(), ["a", "b", "c"], "categorical")
    agreement, kappa = [], []
    for _ in range(2000):
        drawn = rng.integers(0, 90, 90)
        agreement.append(float(np.mean(human[drawn] == judge[drawn])))
        kappa.append(reference_kappa(human[drawn], judge[drawn]))
    for interval, point, samples in [
        (report.agreement, float(np.mean(human == judge)), agreement),
        (report.cohen_kappa, reference_kappa(human, judge), kappa),
    ]:
        assert interval.estimate == pytest.approx(point, abs=1e-12)
        low, high = reference_percentiles(samples)
        assert interval.low == pytest.approx(low, abs=0.03)
        assert interval.high == pytest.approx(high, abs=0.03)
    assert report.confusion == [
        [int(np.sum((human == h) & (judge == j))) for j in "abc"] for h in "abc"
    ]


def test_paired_difference_matches_a_per_item_bootstrap() -> None:
    rng = np.random.default_rng(12)
    human = rng.choice(["0", "1"], 150)
    a = np.where(rng.random(150) < 0.8, human, rng.choice(["0", "1"], 150))
    b = np.where(rng.random(150) < 0.7, human, a)
    metric = agreement_statistic("agreement", ["0", "1"], "binary")
    difference = paired_bootstrap_difference(metric, a.tolist(), b.tolist(), human.tolist())
    samples = []
    for _ in range(2000):
        drawn = rng.integers(0, 150, 150)
        samples.append(float(np.mean(a[drawn] == human[drawn]) - np.mean(b[drawn] == human[drawn])))
    point = float(np.mean(a == human) - np.mean(b == human))
    assert difference.estimate == pytest.approx(point, abs=1e-12)
    low, high = reference_percentiles(samples)
    assert difference.low == pytest.approx(low, abs=0.02)
    assert difference.high == pytest.approx(high, abs=0.02)


def test_group_counts_keep_the_resample_size_and_reject_bad_sizes() -> None:
    def share_of_first(counts: np.ndarray) -> np.ndarray:
        assert np.all(counts.sum(axis=1) == 10)  # every resample draws all 10 items
        return counts[:, 0] / counts.sum(axis=1)

    interval = grouped_bootstrap_intervals({"s": share_of_first}, [3, 0, 7], n_resamples=200)
    assert interval["s"].estimate == pytest.approx(0.3)
    with pytest.raises(ValueError, match="non-negative"):
        grouped_bootstrap_intervals({"s": share_of_first}, [3, -1])
    with pytest.raises(ValueError, match="at least one item"):
        grouped_bootstrap_intervals({"s": share_of_first}, [0, 0])


def test_same_seed_same_interval() -> None:
    values = np.random.default_rng(1).random(40)

    def mean(weights: np.ndarray) -> np.ndarray:
        return (weights @ values) / weights.sum(axis=1)

    first = bootstrap_interval(mean, 40, n_resamples=500, seed=7)
    assert first == bootstrap_interval(mean, 40, n_resamples=500, seed=7)
    assert first != bootstrap_interval(mean, 40, n_resamples=500, seed=8)
    assert first.estimate == pytest.approx(values.mean())


def test_paired_difference_is_narrower_than_the_unpaired_spread() -> None:
    rng = np.random.default_rng(5)
    human = [str(v) for v in rng.integers(0, 2, 200)]
    # Judge b equals judge a except on 10 items where b is wrong and a is right.
    a = [h if rng.random() < 0.85 else str(1 - int(h)) for h in human]
    b = list(a)
    right = [i for i, (x, h) in enumerate(zip(a, human, strict=True)) if x == h][:10]
    for i in right:
        b[i] = str(1 - int(human[i]))
    metric = agreement_statistic("agreement", ["0", "1"], "binary")
    difference = paired_bootstrap_difference(metric, a, b, human, n_resamples=2000, seed=0)
    assert difference.estimate == pytest.approx(10 / 200)
    assert difference.low is not None and difference.high is not None
    assert 0 < difference.low < difference.estimate < difference.high < 0.1
    kappa = agreement_statistic("cohen_kappa", ["0", "1"], "binary")
    assert paired_bootstrap_difference(kappa, a, a, human).estimate == 0.0


def test_mcnemar_exact_matches_the_binomial_test() -> None:
    human = ["y"] * 30
    a = ["y"] * 20 + ["n"] * 10
    b = ["y"] * 12 + ["n"] * 8 + ["y"] * 3 + ["n"] * 7
    result = mcnemar_exact(a, b, human)
    assert (result.only_first_correct, result.only_second_correct) == (8, 3)
    assert result.p_value == pytest.approx(binomtest(3, 11, 0.5).pvalue)
    assert mcnemar_exact(a, a, human).p_value == 1.0

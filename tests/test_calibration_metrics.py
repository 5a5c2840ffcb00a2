"""Agreement metrics against hand-computed values, sklearn/scipy, and Krippendorff's examples."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score, matthews_corrcoef

from judgeloop.calibration import agreement_report, confusion_matrix, krippendorff_alpha
from judgeloop.calibration.metrics import (
    cohen_kappa,
    encode_labels,
    pair_alpha,
    raw_agreement,
    spearman_rho,
)
from judgeloop.calibration.metrics import (
    matthews_corrcoef as mcc_from_confusion,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four coders,
# twelve units, values 1-5, missing values. Published: nominal 0.743, ordinal 0.815.
KRIPPENDORFF_2011 = [
    ["1", "2", "3", "3", "2", "1", "4", "1", "2", None, None, None],
    ["1", "2", "3", "3", "2", "2", "4", "1", "2", "5", None, "3"],
    [None, "3", "3", "3", "2", "3", "4", "2", "2", "5", "1", None],
    ["1", "2", "3", "3", "2", "4", "4", "1", "2", "5", "1", None],
]
SCALE = ["1", "2", "3", "4", "5"]


def units(coders: list[list[str | None]]) -> list[list[str | None]]:
    return [list(column) for column in zip(*coders, strict=True)]


def test_krippendorff_alpha_reproduces_the_published_example() -> None:
    data = units(KRIPPENDORFF_2011)
    assert krippendorff_alpha(data, SCALE, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(data, SCALE, "ordinal") == pytest.approx(0.815, abs=5e-4)


def test_krippendorff_alpha_nominal_three_coders_with_gaps() -> None:
    # The nominal example of the reference implementation (fast-krippendorff's test suite).
    nan = None
    coders = [
        [nan, nan, nan, nan, nan, "3", "4", "1", "2", "1", "1", "3", "3", nan, "3"],
        ["1", nan, "2", "1", "3", "3", "4", "3", nan, nan, nan, nan, nan, nan, nan],
        [nan, nan, "2", "1", "3", "4", "4", nan, "2", "1", "1", "3", "3", nan, "4"],
    ]
    alpha = krippendorff_alpha(units(coders), ["1", "2", "3", "4"], "nominal")
    assert alpha == pytest.approx(0.691358, abs=1e-6)


def test_krippendorff_alpha_hand_computed_two_coders() -> None:
    # Units (a,a), (a,b), (b,b), (b,b): coincidences o_aa=2, o_ab=o_ba=1, o_bb=4; n_a=3, n_b=5,
    # n=8. alpha = 1 - (n-1) * (o_ab + o_ba) / (2 * n_a * n_b) = 1 - 7 * 2 / 30.
    data = [["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]
    assert krippendorff_alpha(data, ["a", "b"]) == pytest.approx(1 - 14 / 30)
    confusion = confusion_matrix(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert float(pair_alpha(confusion.astype(float), "nominal")) == pytest.approx(1 - 14 / 30)


def test_alpha_is_undefined_without_variation_or_pairs() -> None:
    assert krippendorff_alpha([["a", "a"], ["a", "a"]], ["a", "b"]) is None
    assert krippendorff_alpha([["a", None], [None, "b"]], ["a", "b"]) is None


def test_hand_computed_kappa_and_agreement() -> None:
    # 10 items: confusion [[4, 1], [2, 3]] -> p_o = 0.7, p_e = (5*6 + 5*4)/100 = 0.5, kappa 0.4.
    human = ["y"] * 5 + ["n"] * 5
    judge = ["y", "y", "y", "y", "n", "y", "y", "n", "n", "n"]
    confusion = confusion_matrix(human, judge, ["y", "n"]).astype(float)
    assert confusion.tolist() == [[4, 1], [2, 3]]
    assert float(raw_agreement(confusion)) == pytest.approx(0.7)
    assert float(cohen_kappa(confusion)) == pytest.approx(0.4)
    # MCC = (4*3 - 1*2) / sqrt(5 * 5 * 6 * 4)
    assert float(mcc_from_confusion(confusion)) == pytest.approx(10 / np.sqrt(600))


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_sklearn_and_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = ["1", "2", "3", "4"]
    human = rng.choice(labels, size=80)
    judge = np.where(rng.random(80) < 0.6, human, rng.choice(labels, size=80))
    confusion = confusion_matrix(list(human), list(judge), labels).astype(float)
    for weighting, sklearn_weights in [
        ("none", None),
        ("linear", "linear"),
        ("quadratic", "quadratic"),
    ]:
        expected = cohen_kappa_score(human, judge, labels=labels, weights=sklearn_weights)
        assert float(cohen_kappa(confusion, weighting)) == pytest.approx(expected)
    assert float(mcc_from_confusion(confusion)) == pytest.approx(matthews_corrcoef(human, judge))
    codes = (encode_labels(list(human), labels), encode_labels(list(judge), labels))
    assert float(spearman_rho(confusion)) == pytest.approx(spearmanr(*codes).statistic)


def test_undefined_metrics_are_none_in_the_report() -> None:
    report = agreement_report(["a"] * 6, ["a"] * 6, ["a", "b"], "binary", n_resamples=50)
    assert report.agreement.estimate == 1.0
    assert report.cohen_kappa.estimate is None
    assert report.mcc is not None and report.mcc.estimate is None
    assert report.per_label["b"].precision is None


def test_agreement_report_by_kind_and_as_json() -> None:
    rng = np.random.default_rng(3)
    labels = ["low", "mid", "high"]
    human = list(rng.choice(labels, size=60))
    judge = [h if rng.random() < 0.7 else str(rng.choice(labels)) for h in human]
    ordinal = agreement_report(human, judge, labels, "ordinal", n_resamples=300, seed=1)
    assert ordinal.kappa_weighting == "quadratic" and ordinal.alpha_level == "ordinal"
    assert ordinal.spearman is not None and ordinal.mcc is None
    kappa = cohen_kappa_score(human, judge, labels=labels, weights="quadratic")
    assert ordinal.cohen_kappa.estimate == pytest.approx(kappa)
    interval = ordinal.cohen_kappa
    assert interval.low is not None and interval.high is not None
    assert interval.low <= interval.estimate <= interval.high  # type: ignore[operator]
    assert sum(map(sum, ordinal.confusion)) == 60
    recall = ordinal.per_label["mid"].recall
    row = ordinal.confusion[1]
    assert recall == pytest.approx(row[1] / sum(row))

    categorical = agreement_report(human, judge, labels, "categorical", n_resamples=300, seed=1)
    assert categorical.kappa_weighting == "none" and categorical.spearman is None
    assert categorical.agreement == ordinal.agreement  # same resamples, same seed

    decoded = json.loads(ordinal.model_dump_json())
    assert decoded["n"] == 60 and decoded["agreement"]["confidence"] == 0.95


def test_unknown_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="'maybe'"):
        agreement_report(["yes"], ["maybe"], ["yes", "no"], "binary")

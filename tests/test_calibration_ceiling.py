"""The human ceiling: annotators among themselves, and the judge on the same footing."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from judgeloop.calibration import human_ceiling, krippendorff_alpha
from judgeloop.calibration.ceiling import leave_one_out_credit

ANNOTATIONS = {
    "s1": {"ann": "x", "bob": "x", "cy": "x"},
    "s2": {"ann": "x", "bob": "y", "cy": "x"},
    "s3": {"ann": "y", "bob": "y", "cy": "x"},
    "s4": {"ann": "y", "bob": "y"},
    "s5": {"cy": "x"},
}


def test_leave_one_out_credit_splits_ties() -> None:
    assert leave_one_out_credit("x", ["x", "x"]) == 1.0
    assert leave_one_out_credit("x", ["x", "y"]) == 0.5
    assert leave_one_out_credit("z", ["x", "y"]) == 0.0
    assert leave_one_out_credit("y", ["x", "x", "y"]) == 0.0


def test_hand_computed_ceiling_with_a_judge() -> None:
    judge = {"s1": "x", "s2": "x", "s3": "y", "s4": "x", "s5": "x"}
    ceiling = human_ceiling(
        ANNOTATIONS, ["x", "y"], "binary", judge=judge, min_shared_items=1, n_resamples=300
    )
    # Leave-one-out credits (SME | judge): s1 3 | 3, s2 1/2+0+1/2 | 1/2+1+1/2,
    # s3 1/2+1/2+0 | 1/2+1/2+1, s4 1+1 | 0+0; s5 has a single annotator.
    assert ceiling.leave_one_out_items == 4
    assert ceiling.leave_one_out_sme is not None and ceiling.leave_one_out_judge is not None
    assert ceiling.leave_one_out_sme.estimate == pytest.approx(7 / 11)
    assert ceiling.leave_one_out_judge.estimate == pytest.approx(7 / 11)
    assert ceiling.judge_minus_sme is not None
    assert ceiling.judge_minus_sme.estimate == pytest.approx(0.0)
    by_name = {row.annotator: row for row in ceiling.per_annotator}
    assert by_name["bob"].n == 4
    assert by_name["bob"].sme == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert by_name["bob"].judge == pytest.approx((1 + 1 + 0.5 + 0) / 4)

    units = [list(item.values()) for item in ANNOTATIONS.values()]
    assert ceiling.krippendorff_alpha.estimate == pytest.approx(
        krippendorff_alpha(units, ["x", "y"])
    )
    assert ceiling.n_items == 5 and ceiling.n_annotators == 3 and ceiling.n_pairable_items == 4

    kappas = []
    for first, second in [("ann", "bob"), ("ann", "cy"), ("bob", "cy")]:
        shared = [i for i in ANNOTATIONS.values() if first in i and second in i]
        kappas.append(cohen_kappa_score([i[first] for i in shared], [i[second] for i in shared]))
    assert ceiling.mean_pairwise_kappa is not None
    assert ceiling.mean_pairwise_kappa.estimate == pytest.approx(np.nanmean(kappas))


def test_judge_copying_the_consensus_beats_noisy_annotators() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    labels = ["a", "b", "c"]
    annotations = {
        f"s{i}": {
            name: labels[t if rng.random() < 0.75 else rng.integers(0, 3)]
            for name in ("p", "q", "r", "s")
        }
        for i, t in enumerate(truth)
    }
    judge = {f"s{i}": labels[t] for i, t in enumerate(truth)}
    ceiling = human_ceiling(annotations, labels, "categorical", judge=judge, seed=3)
    assert ceiling.leave_one_out_sme is not None and ceiling.judge_minus_sme is not None
    sme = ceiling.leave_one_out_sme.estimate
    assert sme is not None and 0.6 < sme < 0.85
    assert ceiling.judge_minus_sme.low is not None and ceiling.judge_minus_sme.low > 0
    assert ceiling.n_annotator_pairs == 6
    alpha = ceiling.krippendorff_alpha
    assert alpha.low is not None and alpha.high is not None
    assert alpha.low < alpha.estimate < alpha.high  # type: ignore[operator]


def test_without_a_judge_only_the_humans_are_scored() -> None:
    ceiling = human_ceiling(ANNOTATIONS, ["x", "y"], "binary", n_resamples=100)
    assert ceiling.leave_one_out_judge is None and ceiling.judge_minus_sme is None
    assert ceiling.leave_one_out_sme is not None
    assert ceiling.mean_pairwise_kappa is None  # no pair shares the default 5 items
    assert all(row.judge is None for row in ceiling.per_annotator)

"""Calibrators: monotone, rebuilt from JSON without pickle, and honest calibration metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from judgeloop.calibration import (
    Calibrator,
    brier_score,
    calibration_metrics,
    disagreement_auroc,
    expected_calibration_error,
    reliability_bins,
)


def overconfident_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Confidence in [0.5, 1]; the judge is right with probability 2c - 0.6 (overconfident)."""
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.5, 1.0, n)
    agrees = rng.random(n) < np.clip(2 * confidence - 0.6, 0, 1)
    return confidence, agrees


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrated_probabilities_are_monotone_and_better(method: str) -> None:
    confidence, agrees = overconfident_sample(3000, 1)
    calibrator = Calibrator(method).fit(confidence, agrees)  # type: ignore[arg-type]
    grid = np.linspace(0.0, 1.0, 501)
    calibrated = calibrator.predict(grid)
    assert np.all(np.diff(calibrated) >= 0)
    assert np.all((calibrated >= 0) & (calibrated <= 1))
    test_confidence, test_agrees = overconfident_sample(3000, 2)
    before = expected_calibration_error(test_confidence, test_agrees)
    after = expected_calibration_error(calibrator.predict(test_confidence), test_agrees)
    assert after < before / 3
    assert brier_score(calibrator.predict(test_confidence), test_agrees) < brier_score(
        test_confidence, test_agrees
    )


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_round_trip_through_json_gives_identical_outputs(method: str) -> None:
    confidence, agrees = overconfident_sample(500, 3)
    calibrator = Calibrator(method).fit(confidence, agrees)  # type: ignore[arg-type]
    stored = json.loads(json.dumps(calibrator.to_dict()))
    rebuilt = Calibrator.from_dict(stored)
    probe = np.r_[np.linspace(-0.5, 1.5, 400), confidence]
    assert np.array_equal(rebuilt.predict(probe), calibrator.predict(probe))
    assert rebuilt.to_dict() == calibrator.to_dict()


def test_isotonic_predictions_equal_sklearns() -> None:
    confidence, agrees = overconfident_sample(800, 4)
    ours = Calibrator("isotonic").fit(confidence, agrees)
    theirs = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(
        confidence, agrees.astype(float)
    )
    probe = np.linspace(-1, 2, 1000)
    assert np.allclose(ours.predict(probe), theirs.predict(probe))


def test_platt_stays_finite_on_separable_data() -> None:
    calibrator = Calibrator("platt").fit([0.55, 0.6, 0.9, 0.95], [False, False, True, True])
    low, high = calibrator.predict([0.55, 0.95])
    assert 0 < low < 0.5 < high < 1


def test_perfectly_calibrated_sample_has_small_ece() -> None:
    rng = np.random.default_rng(7)
    probability = rng.uniform(0, 1, 20_000)
    agrees = rng.random(probability.size) < probability
    assert expected_calibration_error(probability, agrees) < 0.015
    assert expected_calibration_error(probability, agrees, n_bins=20) < 0.02


def test_reliability_bins_and_metrics() -> None:
    probability = np.array([0.05, 0.15, 0.15, 0.95, 1.0])
    agrees = np.array([False, True, False, True, True])
    bins = reliability_bins(probability, agrees, n_bins=10)
    assert [b.count for b in bins] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[1].agreement == 0.5 and bins[1].mean_confidence == pytest.approx(0.15)
    assert bins[2].agreement is None
    expected = (1 * 0.05 + 2 * 0.35 + 2 * 0.025) / 5
    assert expected_calibration_error(probability, agrees) == pytest.approx(expected)
    metrics = calibration_metrics(probability, agrees)
    assert metrics.n == 5 and metrics.ece == pytest.approx(expected)
    assert json.loads(metrics.model_dump_json())["bins"][9]["count"] == 2


def test_disagreement_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(9)
    confidence = rng.choice([0.5, 0.7, 0.9, 1.0], 400)
    agrees = rng.random(400) < confidence
    assert disagreement_auroc(confidence, agrees) == pytest.approx(
        roc_auc_score(~agrees, -confidence)
    )
    assert disagreement_auroc([0.9, 0.8], [True, True]) is None

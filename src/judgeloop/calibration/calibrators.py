"""Calibrators: raw judge confidence -> P(the judge agrees with the human majority).

Fitted with scikit-learn, stored as plain numbers: ``to_dict()`` gives JSON for the
Calibration table and ``from_dict()`` rebuilds an identical calibrator without pickle (the
fitted and the rebuilt calibrator run the same prediction code on the same numbers).
"""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from judgeloop.calibration._arrays import FloatArray, bool_array, float_array

CalibrationMethod = Literal["isotonic", "platt"]

_LOGIT_CLIP = 1e-6
_FORMAT_VERSION = 1


def _logit(confidence: FloatArray) -> FloatArray:
    clipped = np.clip(confidence, _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    return np.log(clipped) - np.log1p(-clipped)


class Calibrator:
    """Maps raw confidence in [0, 1] to P(agree with the human majority).

    - ``isotonic``: a non-decreasing step-linear map (``IsotonicRegression`` with
      ``out_of_bounds="clip"``); learned state ``x_thresholds_`` and ``y_thresholds_``.
    - ``platt``: a logistic regression on the logit of the confidence, fitted to Platt's
      smoothed targets ((N+ + 1)/(N+ + 2) for agreements, 1/(N- + 2) for disagreements) so it
      stays finite when confidence separates the two; learned state ``slope_``, ``intercept_``.
    """

    def __init__(self, method: CalibrationMethod = "isotonic") -> None:
        if method not in ("isotonic", "platt"):
            raise ValueError(f"unknown calibration method {method!r}")
        self.method: CalibrationMethod = method

    def fit(self, confidence: npt.ArrayLike, agrees: npt.ArrayLike) -> Self:
        """Fit on raw confidences and whether each judgment agreed with the human majority."""
        x = float_array(confidence)
        y = bool_array(agrees)
        if x.shape != y.shape or x.ndim != 1 or x.size == 0:
            raise ValueError("confidence and agrees must be non-empty 1-d arrays of equal length")
        if self.method == "isotonic":
            self._fit_isotonic(x, y)
        else:
            self._fit_platt(x, y)
        self.n_fit_ = int(x.size)
        return self

    def _fit_isotonic(self, x: FloatArray, y: npt.NDArray[np.bool_]) -> None:
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True)
        model.fit(x, y.astype(np.float64))
        self.x_thresholds_ = float_array(model.X_thresholds_)
        self.y_thresholds_ = float_array(model.y_thresholds_)

    def _fit_platt(self, x: FloatArray, y: npt.NDArray[np.bool_]) -> None:
        from sklearn.linear_model import LogisticRegression

        positives = int(y.sum())
        negatives = int(y.size - positives)
        targets = np.where(y, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))
        features = np.concatenate([_logit(x), _logit(x)])[:, None]
        outcomes = np.concatenate([np.ones(x.size), np.zeros(x.size)])
        weights = np.concatenate([targets, 1.0 - targets])
        model = LogisticRegression(C=np.inf).fit(features, outcomes, sample_weight=weights)
        self.slope_ = float(model.coef_[0, 0])
        self.intercept_ = float(model.intercept_[0])

    def predict(self, confidence: npt.ArrayLike) -> FloatArray:
        """Calibrated P(agree) for each raw confidence."""
        x = float_array(confidence)
        if self.method == "isotonic":
            return np.interp(x, self.x_thresholds_, self.y_thresholds_)
        return 1.0 / (1.0 + np.exp(-(self.slope_ * _logit(x) + self.intercept_)))

    def to_dict(self) -> dict[str, Any]:
        """The fitted state as JSON-ready data."""
        data: dict[str, Any] = {
            "format": _FORMAT_VERSION,
            "method": self.method,
            "n_fit": self.n_fit_,
        }
        if self.method == "isotonic":
            data["x_thresholds"] = self.x_thresholds_.tolist()
            data["y_thresholds"] = self.y_thresholds_.tolist()
        else:
            data["slope"] = self.slope_
            data["intercept"] = self.intercept_
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """Rebuild a fitted calibrator from ``to_dict()`` output."""
        if data.get("format") != _FORMAT_VERSION:
            raise ValueError(f"unsupported calibrator format {data.get('format')!r}")
        calibrator = cls(data["method"])
        calibrator.n_fit_ = int(data["n_fit"])
        if calibrator.method == "isotonic":
            calibrator.x_thresholds_ = float_array(data["x_thresholds"])
            calibrator.y_thresholds_ = float_array(data["y_thresholds"])
        else:
            calibrator.slope_ = float(data["slope"])
            calibrator.intercept_ = float(data["intercept"])
        return calibrator


class ReliabilityBin(BaseModel):
    """One equal-width confidence bin of a reliability diagram."""

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    agreement: float | None


class CalibrationMetrics(BaseModel):
    """How well probabilities match outcomes, and how well a score ranks disagreements."""

    n: int
    ece: float
    brier: float
    auroc_disagreement: float | None
    bins: list[ReliabilityBin]


def _bin_index(probability: FloatArray, n_bins: int) -> npt.NDArray[np.int64]:
    return np.clip(np.floor(probability * n_bins), 0, n_bins - 1).astype(np.int64)


def reliability_bins(
    probability: npt.ArrayLike, agrees: npt.ArrayLike, n_bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1] (the last one closed) with mean confidence and agreement."""
    p = float_array(probability)
    y = bool_array(agrees).astype(np.float64)
    index = _bin_index(p, n_bins)
    counts = np.bincount(index, minlength=n_bins)
    confidence_sums = np.bincount(index, weights=p, minlength=n_bins)
    agreement_sums = np.bincount(index, weights=y, minlength=n_bins)
    return [
        ReliabilityBin(
            lower=b / n_bins,
            upper=(b + 1) / n_bins,
            count=int(counts[b]),
            mean_confidence=float(confidence_sums[b] / counts[b]) if counts[b] else None,
            agreement=float(agreement_sums[b] / counts[b]) if counts[b] else None,
        )
        for b in range(n_bins)
    ]


def expected_calibration_error(
    probability: npt.ArrayLike, agrees: npt.ArrayLike, n_bins: int = 10
) -> float:
    """ECE: the count-weighted mean |agreement - mean confidence| over equal-width bins."""
    p = float_array(probability)
    bins = reliability_bins(p, agrees, n_bins)
    return float(
        sum(
            b.count * abs(b.agreement - b.mean_confidence)
            for b in bins
            if b.agreement is not None and b.mean_confidence is not None
        )
        / max(p.size, 1)
    )


def brier_score(probability: npt.ArrayLike, agrees: npt.ArrayLike) -> float:
    """Mean squared difference between P(agree) and the 0/1 outcome."""
    p = float_array(probability)
    y = bool_array(agrees).astype(np.float64)
    return float(np.mean((p - y) ** 2))


def disagreement_auroc(confidence: npt.ArrayLike, agrees: npt.ArrayLike) -> float | None:
    """AUROC of low confidence for flagging disagreements (ties count one half).

    The probability that a random disagreement has lower confidence than a random agreement;
    None when there are no disagreements or no agreements.
    """
    score = float_array(confidence)
    y = bool_array(agrees)
    positives = int(y.sum())
    negatives = int(y.size - positives)
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(score, kind="stable")
    sorted_scores = score[order]
    ranks = np.empty(score.size)
    # Mid-ranks: tied scores share the mean of their positions.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], score.size]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    rank_sum = ranks[y].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def calibration_metrics(
    probability: npt.ArrayLike,
    agrees: npt.ArrayLike,
    *,
    confidence: npt.ArrayLike | None = None,
    n_bins: int = 10,
) -> CalibrationMetrics:
    """ECE, Brier score and reliability bins of ``probability``; AUROC of ``confidence``.

    ``confidence`` defaults to ``probability``; pass the raw confidence to rank by it.
    """
    p = float_array(probability)
    return CalibrationMetrics(
        n=int(p.size),
        ece=expected_calibration_error(p, agrees, n_bins),
        brier=brier_score(p, agrees),
        auroc_disagreement=disagreement_auroc(p if confidence is None else confidence, agrees),
        bins=reliability_bins(p, agrees, n_bins),
    )

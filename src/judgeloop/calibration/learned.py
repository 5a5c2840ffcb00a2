"""More coverage at the same guarantee: a confidence learned from several judges' outputs.

``StackedJudges`` is a multinomial logistic regression from every judge's label distribution
(plus their mean and the share of judges voting for each label) to the human majority label.
Its label is the argmax and its confidence the predicted probability of that label. Judges
that agree with each other and with the judges that proved reliable push that probability up;
disagreement among them pulls it down, which is what separates the items worth escalating.

``LearnedEscalation`` turns it into a threshold with the same guarantee as
``guarantee.fixed_sequence_threshold``, by sample splitting inside the calibration sample:

1. a random ``fit_fraction`` of the calibration items (the fitting part) fits the model, and
   the model's confidences on that part fix the grid of candidate thresholds;
2. the other items (the testing part) are scored by the fitted model, and fixed-sequence
   testing runs on them over that grid, exactly as for a single judge with a fixed grid.

Why it is valid: given the fitting part, the model and the grid are fixed functions, and the
testing items are independent of them and distributed exactly like future items, which the
deployed model scores the same way. The testing part is therefore a calibration sample for a
fixed judge with a grid fixed in advance, the case in which fixed-sequence testing holds
without assumptions: P(R(λ) > α | fitting part) <= δ, so also unconditionally. Cross-fitting
(scoring each calibration item by a model trained on the other folds) would use all items for
testing, but those scores come from several models, each trained on items that are themselves
tested, so they are neither independent of the models nor exchangeable with the scores of the
deployed model: the exact binomial argument no longer applies. The split costs testing items;
the learned confidence earns it back when the judges carry complementary evidence, as the
replay benchmark measures. ``tests/test_calibration_guarantee.py`` checks the guarantee on
synthetic data.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
import numpy.typing as npt

from judgeloop.calibration._arrays import BoolArray, FloatArray, IntArray, float_array
from judgeloop.calibration.guarantee import (
    DEFAULT_MIN_COUNT,
    Threshold,
    fixed_sequence_threshold,
)


def stacking_features(distributions: FloatArray) -> FloatArray:
    """Features from ``(items, judges, labels)`` distributions (all zero for a missing output).

    Every judge's distribution, their mean, and the share of judges whose argmax is each label.
    """
    n_items, n_judges, n_labels = distributions.shape
    answered = distributions.sum(axis=2) > 0
    votes = np.zeros((n_items, n_labels))
    winners = distributions.argmax(axis=2)
    for judge in range(n_judges):
        votes[np.arange(n_items), winners[:, judge]] += answered[:, judge]
    votes /= np.maximum(answered.sum(axis=1, keepdims=True), 1)
    return np.hstack([distributions.reshape(n_items, -1), distributions.mean(axis=1), votes])


class StackedJudges:
    """Several judges' label distributions -> (label, P(that label is the human majority's)).

    Learned state: ``classes_`` (label codes seen in fitting), ``coef_`` and ``intercept_``
    of the logistic regression (one row per class; one row for two classes, as in sklearn).
    """

    def __init__(self, regularization: float = 1.0) -> None:
        self.regularization = regularization

    def fit(self, distributions: npt.ArrayLike, human: npt.ArrayLike) -> Self:
        """Fit on ``(items, judges, labels)`` distributions and human majority label codes."""
        from sklearn.linear_model import LogisticRegression

        features = stacking_features(float_array(distributions))
        targets = np.asarray(human, dtype=np.int64)
        self.classes_: IntArray = np.unique(targets)
        self.n_labels_ = float_array(distributions).shape[2]
        if self.classes_.size == 1:
            self.coef_ = np.zeros((1, features.shape[1]))
            self.intercept_ = np.zeros(1)
            return self
        model = LogisticRegression(C=self.regularization, solver="newton-cg", max_iter=1000)
        model.fit(features, targets)
        self.coef_ = float_array(model.coef_)
        self.intercept_ = float_array(model.intercept_)
        return self

    def predict_proba(self, distributions: npt.ArrayLike) -> FloatArray:
        """P(each label is the human majority's), ``(items, labels)``."""
        features = stacking_features(float_array(distributions))
        probabilities = np.zeros((features.shape[0], self.n_labels_))
        if self.classes_.size == 1:
            probabilities[:, self.classes_[0]] = 1.0
            return probabilities
        logits = features @ self.coef_.T + self.intercept_
        if self.classes_.size == 2:
            logits = np.hstack([-logits / 2, logits / 2])
        logits -= logits.max(axis=1, keepdims=True)
        exponentials = np.exp(logits)
        probabilities[:, self.classes_] = exponentials / exponentials.sum(axis=1, keepdims=True)
        return probabilities

    def predict(self, distributions: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
        """The label code and the learned confidence for each item."""
        probabilities = self.predict_proba(distributions)
        labels = probabilities.argmax(axis=1)
        return labels, probabilities[np.arange(labels.size), labels]


def split_grid(fit_confidence: FloatArray, n_testing: int, min_count: int) -> FloatArray:
    """Candidate thresholds fixed by the fitting part, from high to low.

    The k-th candidate is the fitting-part confidence above which the same share of items
    would leave k testing items, for k from a little over ``min_count`` up; 0 (decide every
    item) closes the grid.
    """
    scores = np.sort(fit_confidence)[::-1]
    start = min_count + math.ceil(2 * math.sqrt(min_count))
    counts = np.arange(min(start, n_testing), n_testing + 1)
    positions = np.ceil(counts / n_testing * scores.size).astype(np.int64) - 1
    grid = scores[np.clip(positions, 0, scores.size - 1)]
    candidates: FloatArray = np.r_[np.unique(grid)[::-1], 0.0]
    return candidates


class LearnedEscalation:
    """The improved method: a stacked confidence with a split-sample guarantee.

    After ``fit``: ``model_`` (a ``StackedJudges``), ``threshold_`` (a ``Threshold`` on the
    learned confidence, fitted on the testing part), ``fit_index_`` and ``test_index_``
    (positions of the calibration items in each part).
    """

    def __init__(
        self,
        *,
        alpha: float,
        delta: float,
        fit_fraction: float = 0.5,
        min_count: int = DEFAULT_MIN_COUNT,
        regularization: float = 1.0,
        seed: int = 0,
    ) -> None:
        if not 0.0 < fit_fraction < 1.0:
            raise ValueError(f"fit_fraction must lie in (0, 1), got {fit_fraction}")
        self.alpha = alpha
        self.delta = delta
        self.fit_fraction = fit_fraction
        self.min_count = min_count
        self.regularization = regularization
        self.seed = seed

    def fit(self, distributions: npt.ArrayLike, human: npt.ArrayLike) -> Self:
        """Fit on calibration ``(items, judges, labels)`` distributions and human label codes."""
        values = float_array(distributions)
        targets = np.asarray(human, dtype=np.int64)
        order = np.random.default_rng(self.seed).permutation(targets.size)
        n_fit = min(max(1, round(self.fit_fraction * targets.size)), targets.size - 1)
        self.fit_index_: IntArray = np.sort(order[:n_fit])
        self.test_index_: IntArray = np.sort(order[n_fit:])
        self.model_ = StackedJudges(self.regularization).fit(
            values[self.fit_index_], targets[self.fit_index_]
        )
        _, fit_confidence = self.model_.predict(values[self.fit_index_])
        labels, confidence = self.model_.predict(values[self.test_index_])
        self.threshold_: Threshold = fixed_sequence_threshold(
            confidence,
            labels == targets[self.test_index_],
            alpha=self.alpha,
            delta=self.delta,
            min_count=self.min_count,
            candidates=split_grid(fit_confidence, self.test_index_.size, self.min_count).tolist(),
        )
        return self

    def predict(self, distributions: npt.ArrayLike) -> tuple[IntArray, FloatArray, BoolArray]:
        """Label codes, learned confidences and which items are auto-decided."""
        labels, confidence = self.model_.predict(distributions)
        return labels, confidence, self.threshold_.auto(confidence)

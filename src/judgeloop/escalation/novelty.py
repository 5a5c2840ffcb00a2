"""Novelty: how unlike the calibration sessions a session is (TF-IDF nearest neighbour)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Words only: ids, order numbers, amounts and dates differ in every session and would make
# each one look new.
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"

# Rows of the similarity matrix computed at once: bounds memory at CHUNK x n floats.
CHUNK = 512


class NoveltyModel:
    """Nearest-neighbour cosine novelty against the texts it was fitted on.

    ``novelty = 1 - max cosine similarity`` to any fitting text (0: a known session, 1: nothing
    in common). ``threshold`` is the chosen quantile of the leave-one-out novelty of the fitting
    texts themselves, so about ``1 - quantile`` of sessions like the calibration ones exceed it.
    """

    def __init__(self, vectorizer: Any, matrix: Any, threshold: float, quantile: float) -> None:
        self.vectorizer_ = vectorizer
        self.matrix_ = matrix
        self.threshold_ = threshold
        self.quantile_ = quantile

    @property
    def threshold(self) -> float:
        """Novelty above which a session counts as outside the calibration data."""
        return self.threshold_

    @property
    def n_texts(self) -> int:
        """How many texts the model was fitted on."""
        return int(self.matrix_.shape[0])

    @classmethod
    def fit(cls, texts: Sequence[str], quantile: float = 0.99) -> NoveltyModel:
        """Fit on calibration-partition session texts (at least two)."""
        # Imported on use: importing judgeloop (and the store, which uses the drift detectors
        # next door) must stay light.
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        if len(texts) < 2:
            raise ValueError("novelty needs at least two calibration texts")
        if not 0 < quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1], not {quantile}")
        vectorizer = TfidfVectorizer(
            token_pattern=TOKEN_PATTERN,
            lowercase=True,
            # Unigrams separate the demo's drifted batch better than adding bigrams does.
            ngram_range=(1, 1),
            sublinear_tf=True,
            max_features=50_000,
        )
        matrix = vectorizer.fit_transform(list(texts)).tocsr()
        leave_one_out = np.empty(matrix.shape[0])
        for start in range(0, matrix.shape[0], CHUNK):
            block = (matrix[start : start + CHUNK] @ matrix.T).toarray()
            rows = np.arange(block.shape[0])
            block[rows, rows + start] = -np.inf
            leave_one_out[start : start + CHUNK] = 1.0 - block.max(axis=1)
        threshold = float(np.quantile(np.clip(leave_one_out, 0.0, 1.0), quantile))
        return cls(vectorizer, matrix, threshold, quantile)

    def score_many(self, texts: Sequence[str]) -> list[float]:
        """Novelty of each text, in [0, 1]."""
        if not texts:
            return []
        vectors = self.vectorizer_.transform(list(texts))
        scores: list[float] = []
        for start in range(0, vectors.shape[0], CHUNK):
            block = (vectors[start : start + CHUNK] @ self.matrix_.T).toarray()
            nearest = block.max(axis=1)
            scores.extend(float(min(1.0, max(0.0, 1.0 - value))) for value in nearest)
        return scores

    def score(self, text: str) -> float:
        """Novelty of one text, in [0, 1]."""
        return self.score_many([text])[0]

"""The offline classifier judge: TF-IDF features of the whole session + logistic regression.

It is fitted on the derive partition that its spec lists, so it needs no network and no
weights file: the same spec and the same stored sessions always give the same model.
"""

from __future__ import annotations

import time
from typing import Any

from judgeloop.judges.outcome import JudgeOutcome, ResolvedExample, SessionInput
from judgeloop.judges.render import render_transcript
from judgeloop.judges.spec import JudgeSpec


class ClassifierBackend:
    """A scikit-learn pipeline judge; ``predict_proba`` is its confidence."""

    def __init__(self, spec: JudgeSpec, training: list[ResolvedExample]) -> None:
        """Fit the pipeline on ``training`` (the spec's classifier.training, resolved)."""
        if spec.classifier is None:
            raise ValueError(f"judge {spec.name!r} has no classifier section")
        labels_seen = {item.example.label for item in training}
        if len(labels_seen) < 2:
            raise ValueError(
                f"judge {spec.name!r}: the classifier needs at least two labels in its training "
                f"data, got {sorted(labels_seen)}"
            )
        self.spec = spec
        self.pipeline_ = _build_pipeline(spec)
        texts = [render_transcript(item.session) for item in training]
        self.pipeline_.fit(texts, [item.example.label for item in training])
        self.classes_: list[str] = [str(c) for c in self.pipeline_.classes_]

    def distributions(self, sessions: list[SessionInput]) -> list[dict[str, float]]:
        """Probability of every criterion label for each session (0 for unseen labels)."""
        probabilities = self.pipeline_.predict_proba([render_transcript(s) for s in sessions])
        result = []
        for row in probabilities:
            by_label = dict(zip(self.classes_, (float(p) for p in row), strict=True))
            result.append({label: by_label.get(label, 0.0) for label in self.spec.criterion.labels})
        return result

    def judge_many(self, sessions: list[SessionInput]) -> list[JudgeOutcome]:
        """Judge a batch at once (one vectorised predict_proba)."""
        start = time.perf_counter()
        distributions = self.distributions(sessions)
        latency_ms = (time.perf_counter() - start) * 1000 / max(len(sessions), 1)
        return [_outcome(distribution, latency_ms) for distribution in distributions]

    async def judge(self, session: SessionInput) -> JudgeOutcome:
        """Judge one session."""
        try:
            return self.judge_many([session])[0]
        except Exception as error:  # noqa: BLE001 (an outcome, never a lost session)
            return JudgeOutcome.failed(f"classifier: {type(error).__name__}: {error}")


def _outcome(distribution: dict[str, float], latency_ms: float) -> JudgeOutcome:
    label = max(distribution, key=lambda key: distribution[key])
    return JudgeOutcome(
        label=label,
        raw_confidence=distribution[label],
        rationale="classifier probability",
        label_distribution=distribution,
        latency_ms=latency_ms,
    )


def _build_pipeline(spec: JudgeSpec) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    assert spec.classifier is not None
    settings = spec.classifier
    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(
                    ngram_range=(1, 2),
                    min_df=1,
                    sublinear_tf=True,
                    max_features=settings.max_features,
                ),
            ),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(3, 5),
                    min_df=2,
                    sublinear_tf=True,
                    max_features=settings.max_features,
                ),
            ),
        ]
    )
    classifier = LogisticRegression(
        C=settings.c,
        max_iter=2000,
        random_state=settings.seed,
        class_weight="balanced",
        solver="newton-cg",  # lbfgs took 5x longer on these wide TF-IDF features
    )
    return Pipeline([("features", features), ("classifier", classifier)])

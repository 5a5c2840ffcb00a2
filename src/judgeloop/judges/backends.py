"""One path from a spec to its backend: litellm, classifier or local (imported only when used)."""

from __future__ import annotations

from typing import Any

from judgeloop.judges.classifier_backend import ClassifierBackend
from judgeloop.judges.outcome import JudgeBackend, ResolvedExample
from judgeloop.judges.spec import JudgeSpec


def build_backend(
    spec: JudgeSpec,
    examples: list[ResolvedExample],
    training: list[ResolvedExample],
    **options: Any,
) -> JudgeBackend:
    """Construct the backend named by ``spec.backend``.

    ``examples`` are the few-shot examples of the prompt, ``training`` the classifier's
    fitting data; ``options`` go to LLM backends (cache, semaphore).
    """
    if spec.backend == "classifier":
        return _classifier(spec, training)
    if spec.backend == "local":
        from judgeloop.judges.local_backend import LocalBackend

        return LocalBackend(spec, examples)
    from judgeloop.judges.llm_backend import LiteLLMBackend

    return LiteLLMBackend(spec, examples, **options)


_fitted: dict[tuple[str, tuple[str, ...]], ClassifierBackend] = {}


def _classifier(spec: JudgeSpec, training: list[ResolvedExample]) -> ClassifierBackend:
    # Fitting takes about a second; scoring several partitions in one process reuses the fit.
    # The key holds the training sessions' content hashes, so changed content refits.
    key = (spec.version, tuple(item.session.content_hash for item in training))
    if key not in _fitted:
        if len(_fitted) >= 32:
            _fitted.clear()
        _fitted[key] = ClassifierBackend(spec, training)
    return _fitted[key]

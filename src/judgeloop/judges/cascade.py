"""Cascades: cheap tiers decide when confident enough, otherwise the next tier runs."""

from __future__ import annotations

from dataclasses import dataclass

from judgeloop.judges.outcome import JudgeOutcome


@dataclass(frozen=True)
class TierResult:
    """One tier's outcome on one session and the threshold it had to clear."""

    version: str
    outcome: JudgeOutcome
    threshold: float | None

    @property
    def decides(self) -> bool:
        """The tier answered and its confidence clears its threshold."""
        return (
            self.outcome.error is None
            and self.threshold is not None
            and self.outcome.raw_confidence is not None
            and self.outcome.raw_confidence >= self.threshold
        )


def cascade_outcome(results: list[TierResult]) -> JudgeOutcome:
    """The cascade's verdict: the first deciding tier's, or an undecided one to escalate."""
    path = [
        {
            "version": r.version,
            "label": r.outcome.label,
            "confidence": r.outcome.raw_confidence,
            "threshold": r.threshold,
            "error": r.outcome.error,
        }
        for r in results
    ]
    cost = sum(r.outcome.cost_usd for r in results)
    latency = sum(r.outcome.latency_ms for r in results)
    tokens_in = sum(r.outcome.prompt_tokens for r in results)
    tokens_out = sum(r.outcome.completion_tokens for r in results)
    for index, result in enumerate(results):
        if result.decides:
            return JudgeOutcome(
                label=result.outcome.label,
                raw_confidence=result.outcome.raw_confidence,
                rationale=f"tier {index + 1} decided: {result.outcome.rationale}".strip(),
                label_distribution=result.outcome.label_distribution,
                prompt_tokens=tokens_in,
                completion_tokens=tokens_out,
                cost_usd=cost,
                latency_ms=latency,
                detail={"tier": index, "path": path},
            )
    last = results[-1].outcome
    return JudgeOutcome(
        label=last.label,
        raw_confidence=last.raw_confidence,
        rationale="no tier cleared its threshold: escalate",
        label_distribution=last.label_distribution,
        prompt_tokens=tokens_in,
        completion_tokens=tokens_out,
        cost_usd=cost,
        latency_ms=latency,
        error=last.error,
        detail={"tier": None, "path": path},
    )

"""Cascades: cheap tiers decide when confident enough, otherwise the next tier runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from judgeloop.judges.outcome import JudgeOutcome


@dataclass(frozen=True)
class TierGate:
    """What a tier's confidence must clear to decide, and on which scale.

    From the tier version's newest calibration: its calibrator maps raw confidence to
    P(agree with the humans) and its guaranteed λ is the bar (None: the tier never decides).
    Without a calibration the spec's threshold applies to raw confidence.
    """

    threshold: float | None
    calibrate: Callable[[float], float] | None = None
    source: Literal["calibration", "spec"] = "spec"

    def confidence(self, raw: float | None) -> float | None:
        """The confidence compared with the threshold."""
        if raw is None or self.calibrate is None:
            return raw
        return self.calibrate(raw)


@dataclass(frozen=True)
class TierResult:
    """One tier's outcome on one session and the gate it had to clear."""

    version: str
    outcome: JudgeOutcome
    gate: TierGate

    @property
    def threshold(self) -> float | None:
        """The bar this tier had to clear."""
        return self.gate.threshold

    @property
    def confidence(self) -> float | None:
        """The tier's confidence on the gate's scale (calibrated when calibrated)."""
        return self.gate.confidence(self.outcome.raw_confidence)

    @property
    def decides(self) -> bool:
        """The tier answered and its confidence clears its threshold."""
        confidence = self.confidence
        return (
            self.outcome.error is None
            and self.threshold is not None
            and confidence is not None
            and confidence >= self.threshold
        )


def cascade_outcome(results: list[TierResult]) -> JudgeOutcome:
    """The cascade's verdict: the first deciding tier's, or an undecided one to escalate."""
    path = [
        {
            "version": r.version,
            "label": r.outcome.label,
            "confidence": r.outcome.raw_confidence,
            "gate_confidence": r.confidence,
            "threshold": r.threshold,
            "threshold_from": r.gate.source,
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

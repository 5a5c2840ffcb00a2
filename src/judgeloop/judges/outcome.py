"""What every judge backend consumes and produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from judgeloop.judges.spec import FewShotExample, JudgeSpec


@dataclass(frozen=True)
class SessionInput:
    """A stored session as judges see it."""

    id: int
    source: str
    external_id: str
    messages: list[dict[str, Any]]
    metadata: dict[str, Any]
    content_hash: str


@dataclass(frozen=True)
class ResolvedExample:
    """A few-shot example with its session loaded from the store."""

    example: FewShotExample
    session: SessionInput


@dataclass
class JudgeOutcome:
    """One verdict, or the error that prevented it; never dropped silently."""

    label: str | None
    raw_confidence: float | None
    rationale: str = ""
    label_distribution: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    error: str | None = None
    cached: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def failed(cls, error: str, latency_ms: float = 0.0) -> JudgeOutcome:
        """An outcome for a call that still failed after its retries."""
        return cls(label=None, raw_confidence=None, error=error, latency_ms=latency_ms)


class JudgeBackend(Protocol):
    """A way to run a judge spec on sessions (litellm, classifier, local model)."""

    spec: JudgeSpec

    async def judge(self, session: SessionInput) -> JudgeOutcome:
        """Judge one session; errors become an outcome with ``error`` set, not an exception."""
        ...

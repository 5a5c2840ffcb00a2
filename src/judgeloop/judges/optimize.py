"""Rubric optimisation with an LLM, on the derive partition only.

The LLM proposes revisions from the derive examples the judge gets wrong; a revision is kept
only when derive-partition agreement improves.

Only the derive partition is used, so the calibration and test partitions stay untouched by
every choice made here. Rounds are bounded and each is logged.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from judgeloop.judges.outcome import JudgeOutcome, ResolvedExample, SessionInput
from judgeloop.judges.render import render_transcript
from judgeloop.judges.spec import JudgeSpec

MAX_MISTAKES_SHOWN = 8
TRANSCRIPT_CHARS = 1500

PROPOSAL_PROMPT = """\
You improve the rubric of an LLM judge for the criterion "{criterion}" ({kind}; labels: {labels}).

Current rubric:
<rubric>
{rubric}
</rubric>

On these conversations the judge disagreed with the subject-matter experts (SMEs):
{mistakes}

Propose a revised rubric that would lead the judge to the SMEs' labels, stated as general rules
(do not mention these specific conversations). Answer with the revised rubric text only."""


@dataclass
class OptimizationRound:
    """One proposal and whether it was kept."""

    round: int
    agreement_before: float
    agreement_after: float
    kept: bool
    mistakes: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly record for the log."""
        return {
            "round": self.round,
            "agreement_before": round(self.agreement_before, 4),
            "agreement_after": round(self.agreement_after, 4),
            "kept": self.kept,
            "mistakes": self.mistakes,
        }


BackendFactory = Callable[[JudgeSpec], Any]


def _agreement(outcomes: list[JudgeOutcome], truth: list[str]) -> float:
    return sum(o.label == t for o, t in zip(outcomes, truth, strict=True)) / max(len(truth), 1)


def _describe_mistakes(
    sessions: list[SessionInput],
    truth: list[str],
    rationales: list[str],
    outcomes: list[JudgeOutcome],
) -> tuple[str, int]:
    lines: list[str] = []
    count = 0
    for session, label, rationale, outcome in zip(
        sessions, truth, rationales, outcomes, strict=True
    ):
        if outcome.label == label:
            continue
        count += 1
        if len(lines) < MAX_MISTAKES_SHOWN:
            transcript = render_transcript(session)[:TRANSCRIPT_CHARS]
            lines.append(
                f"<conversation>\n{transcript}\n</conversation>\n"
                f"Judge said: {outcome.label}. SMEs said: {label}. SME rationale: {rationale}\n"
            )
    return "\n".join(lines), count


async def _propose(spec: JudgeSpec, mistakes: str, model: str) -> str:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    prompt = PROPOSAL_PROMPT.format(
        criterion=spec.criterion.name,
        kind=spec.criterion.kind,
        labels=", ".join(spec.criterion.labels),
        rubric=spec.rubric,
        mistakes=mistakes,
    )
    response = await litellm.acompletion(
        model=model,
        api_base=spec.api_base,
        messages=[{"role": "user", "content": prompt}],
        temperature=0.7,
        max_tokens=1500,
        timeout=spec.decoding.timeout_s,
        num_retries=spec.decoding.max_retries,
    )
    text = str(response.choices[0].message.content or "").strip()
    if not text:
        raise ValueError("the proposer returned an empty rubric")
    return text


async def optimize_rubric(
    spec: JudgeSpec,
    evaluation: list[ResolvedExample],
    make_backend: BackendFactory,
    *,
    rounds: int = 3,
    proposer_model: str | None = None,
    log: Callable[[OptimizationRound], None] | None = None,
) -> tuple[JudgeSpec, list[OptimizationRound]]:
    """Run up to ``rounds`` proposals; return the best spec and the round log.

    ``evaluation`` are derive-partition sessions with their SME majority labels (not the
    few-shot examples the prompt shows). A revision is kept only when it strictly raises
    agreement on them.
    """
    sessions = [item.session for item in evaluation]
    truth = [item.example.label for item in evaluation]
    rationales = [item.example.rationale for item in evaluation]
    best = spec
    outcomes = await _judge_all(make_backend(best), sessions)
    best_agreement = _agreement(outcomes, truth)
    history: list[OptimizationRound] = []
    for number in range(1, rounds + 1):
        mistakes, count = _describe_mistakes(sessions, truth, rationales, outcomes)
        if count == 0:
            break
        rubric = await _propose(best, mistakes, proposer_model or best.model or "")
        candidate = best.model_copy(update={"rubric": rubric})
        candidate_outcomes = await _judge_all(make_backend(candidate), sessions)
        agreement = _agreement(candidate_outcomes, truth)
        kept = agreement > best_agreement
        entry = OptimizationRound(number, best_agreement, agreement, kept, count)
        history.append(entry)
        if log:
            log(entry)
        if kept:
            best, best_agreement, outcomes = candidate, agreement, candidate_outcomes
    return best, history


async def _judge_all(backend: Any, sessions: list[SessionInput]) -> list[JudgeOutcome]:
    return list(await asyncio.gather(*(backend.judge(s) for s in sessions)))

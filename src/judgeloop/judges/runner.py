"""Scoring stored sessions with a judge spec and storing one Judgment per session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from judgeloop.judges.backends import build_backend
from judgeloop.judges.cascade import TierGate, TierResult, cascade_outcome
from judgeloop.judges.loading import load_inputs, resolve_examples
from judgeloop.judges.outcome import JudgeBackend, JudgeOutcome, SessionInput
from judgeloop.judges.spec import JudgeSpec, load_spec
from judgeloop.models import Criterion, CriterionCreate
from judgeloop.store import (
    InvalidInputError,
    NotFoundError,
    Problem,
    add_judgments,
    db_session,
    get_criterion,
    judged_session_ids,
    latest_calibration,
    register_judge_version,
)

ProgressCallback = Callable[[int], None]
STORE_CHUNK = 64


class LeakError(ValueError):
    """A session shown to the judge as an example was about to be scored for measurement."""


@dataclass
class ScoreReport:
    """What a scoring run did."""

    version: str
    requested: int = 0
    already_judged: int = 0
    judged: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)


@dataclass
class LoadedJudge:
    """A spec with its backend ready, plus the tiers of a cascade."""

    spec: JudgeSpec
    backend: JudgeBackend | None
    tiers: list[tuple[LoadedJudge, TierGate]] = field(default_factory=list)


def example_keys(spec: JudgeSpec) -> set[tuple[str, str]]:
    """Every session the spec shows its judge: few-shot examples and classifier training."""
    shown = list(spec.examples) + (spec.classifier.training if spec.classifier else [])
    return {(e.session.source, e.session.external_id) for e in shown}


def load_judge(
    engine: Engine, spec: JudgeSpec, *, judges_dir: Path | None = None, **options: Any
) -> LoadedJudge:
    """Resolve examples from the store and build the backend (and tiers, for a cascade)."""
    if spec.tiers:
        base = judges_dir or Path("judges")
        tiers = []
        for tier in spec.tiers:
            tier_spec = load_spec(base / tier.judge)
            tiers.append(
                (
                    load_judge(engine, tier_spec, judges_dir=base, **options),
                    _tier_gate(engine, tier_spec.version, tier.threshold),
                )
            )
        return LoadedJudge(spec=spec, backend=None, tiers=tiers)
    with db_session(engine) as db:
        examples = resolve_examples(db, spec.examples)
        training = resolve_examples(db, spec.classifier.training) if spec.classifier else []
    return LoadedJudge(spec=spec, backend=build_backend(spec, examples, training, **options))


def _tier_gate(engine: Engine, version: str, spec_threshold: float | None) -> TierGate:
    """The tier's calibrated gate when its version has a calibration, else the spec's."""
    from judgeloop.calibration.calibrators import Calibrator

    with db_session(engine) as db:
        try:
            calibration = latest_calibration(db, version)
        except NotFoundError:
            return TierGate(threshold=spec_threshold)
    calibrator = Calibrator.from_dict(calibration.calibrator) if calibration.calibrator else None

    def calibrate(raw: float) -> float:
        assert calibrator is not None
        return float(calibrator.predict([raw])[0])

    return TierGate(
        threshold=calibration.threshold,
        calibrate=calibrate if calibrator is not None else None,
        source="calibration",
    )


def register_spec(engine: Engine, spec: JudgeSpec, *, actor: str) -> Criterion:
    """Register the spec's version; its criterion must be stored with the same labels."""
    with db_session(engine) as db:
        criterion = get_criterion(db, spec.criterion.name)
        stored = CriterionCreate.model_validate(criterion, from_attributes=True)
        if stored.labels != spec.criterion.labels or stored.kind != spec.criterion.kind:
            raise InvalidInputError(
                [
                    Problem(
                        ("criterion",),
                        f"judge {spec.name!r} expects {spec.criterion.kind} labels "
                        f"{spec.criterion.labels}, the store has {stored.kind} {stored.labels}",
                    )
                ]
            )
        register_judge_version(
            db,
            version=spec.version,
            name=spec.name,
            criterion=criterion,
            spec=spec.normalized(),
            actor=actor,
        )
        return criterion


async def judge_sessions(judge: LoadedJudge, sessions: list[SessionInput]) -> list[JudgeOutcome]:
    """Outcomes for ``sessions`` in order; a cascade runs later tiers only where needed."""
    if judge.tiers:
        return await _judge_cascade(judge, sessions)
    backend = judge.backend
    assert backend is not None
    judge_many = getattr(backend, "judge_many", None)
    if judge_many is not None:
        try:
            return list(judge_many(sessions))
        except Exception as error:  # noqa: BLE001 (fall back to one by one, never lose one)
            del error
    return list(await asyncio.gather(*(backend.judge(session) for session in sessions)))


async def _judge_cascade(judge: LoadedJudge, sessions: list[SessionInput]) -> list[JudgeOutcome]:
    paths: list[list[TierResult]] = [[] for _ in sessions]
    pending = list(range(len(sessions)))
    for tier_judge, gate in judge.tiers:
        if not pending:
            break
        outcomes = await judge_sessions(tier_judge, [sessions[i] for i in pending])
        still_pending = []
        for index, outcome in zip(pending, outcomes, strict=True):
            result = TierResult(tier_judge.spec.version, outcome, gate)
            paths[index].append(result)
            if not result.decides:
                still_pending.append(index)
        pending = still_pending
    return [cascade_outcome(path) for path in paths]


def judgment_row(
    version: str, criterion_id: int, session_id: int, outcome: JudgeOutcome
) -> dict[str, Any]:
    """The Judgment row values for one outcome."""
    detail = dict(outcome.detail)
    if outcome.label_distribution:
        detail["label_distribution"] = outcome.label_distribution
    if outcome.cached:
        detail["cached"] = True
    return {
        "session_id": session_id,
        "judge_version_id": version,
        "criterion_id": criterion_id,
        "label": outcome.label,
        "raw_confidence": outcome.raw_confidence,
        "rationale": outcome.rationale,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "cost_usd": outcome.cost_usd,
        "latency_ms": outcome.latency_ms,
        "error": outcome.error,
        "detail": detail,
    }


def score(
    engine: Engine,
    spec: JudgeSpec,
    session_ids: list[int],
    *,
    actor: str,
    judges_dir: Path | None = None,
    concurrency: int = 8,
    on_progress: ProgressCallback | None = None,
    forbid_examples: bool = False,
) -> ScoreReport:
    """Judge the sessions not yet judged by this version and store the Judgments.

    With ``forbid_examples`` (scoring a calibration or test partition), a session that the
    spec shows its judge raises LeakError before anything is judged.
    """
    return asyncio.run(
        score_async(
            engine,
            spec,
            session_ids,
            actor=actor,
            judges_dir=judges_dir,
            concurrency=concurrency,
            on_progress=on_progress,
            forbid_examples=forbid_examples,
        )
    )


async def score_async(
    engine: Engine,
    spec: JudgeSpec,
    session_ids: list[int],
    *,
    actor: str,
    judges_dir: Path | None = None,
    concurrency: int = 8,
    on_progress: ProgressCallback | None = None,
    forbid_examples: bool = False,
) -> ScoreReport:
    """The async body of :func:`score`."""
    criterion = register_spec(engine, spec, actor=actor)
    assert criterion.id is not None
    report = ScoreReport(version=spec.version, requested=len(set(session_ids)))
    with db_session(engine) as db:
        done = judged_session_ids(db, spec.version)
        inputs = load_inputs(db, [sid for sid in set(session_ids) if sid not in done])
    report.already_judged = report.requested - len(inputs)
    if on_progress and report.already_judged:
        on_progress(report.already_judged)
    if forbid_examples:
        _refuse_leaks(spec, list(inputs.values()))
    judge = load_judge(
        engine, spec, judges_dir=judges_dir, semaphore=asyncio.Semaphore(concurrency)
    )
    ordered = [inputs[sid] for sid in sorted(inputs)]
    for start in range(0, len(ordered), STORE_CHUNK):
        chunk = ordered[start : start + STORE_CHUNK]
        outcomes = await judge_sessions(judge, chunk)
        rows = [
            judgment_row(spec.version, criterion.id, s.id, o)
            for s, o in zip(chunk, outcomes, strict=True)
        ]
        with db_session(engine) as db:
            report.judged += add_judgments(db, rows, actor=actor)
        for outcome in outcomes:
            if outcome.error:
                report.errors += 1
                if len(report.error_samples) < 5:
                    report.error_samples.append(outcome.error)
        if on_progress:
            on_progress(len(chunk))
    return report


def _refuse_leaks(spec: JudgeSpec, sessions: list[SessionInput]) -> None:
    shown = example_keys(spec)
    leaked = sorted(
        f"{s.source}/{s.external_id}" for s in sessions if (s.source, s.external_id) in shown
    )
    if leaked:
        raise LeakError(
            f"judge {spec.name!r} shows {len(leaked)} of these sessions as examples "
            f"({', '.join(leaked[:5])}); they cannot be scored for calibration or test"
        )

"""Score sessions with each active judge, apply the escalation policy, store and queue.

Every step is idempotent: a judgment and a decision exist at most once per (session, judge
version) by the database's unique constraints, and only newly created escalations are queued,
so a batch retried after a crash, or raced by a second worker, changes nothing twice.

The database steps run in threads (``asyncio.to_thread``): the event loop that awaits the LLM
calls of other batches never waits on a transaction (or SQLite's write lock).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from judgeloop.calibration.online import online_agreement
from judgeloop.escalation import (
    PolicyDecision,
    PolicyInputs,
    decide,
    detect_injection,
    match_safety_rules,
)
from judgeloop.judges.loading import load_inputs
from judgeloop.judges.outcome import SessionInput
from judgeloop.judges.render import render_transcript
from judgeloop.judges.runner import judge_sessions, judgment_row
from judgeloop.models import Decision, Judgment
from judgeloop.pipeline.clustering import ClusterSchedule
from judgeloop.pipeline.context import CriterionContext
from judgeloop.pipeline.policy_state import PolicyState, PolicyStateCache
from judgeloop.store import add_judgments, db_session
from judgeloop.store.decisions import (
    DONE,
    add_decisions,
    decisions_for,
    escalations_since,
    judgments_for,
    mark_sessions,
    start_of_day,
)
from judgeloop.store.drift import drift_alarms, observe_label
from judgeloop.store.queue import enqueue

# Escalations with a priority below drift's are the ones a daily budget may cap.
CAPPED_BELOW_PRIORITY = 300


@dataclass
class BatchReport:
    """What one pass over a batch did."""

    sessions: int = 0
    judged: int = 0
    decided: int = 0
    escalated: int = 0
    queued: int = 0
    errors: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class PipelineOptions:
    """Knobs of a pipeline run."""

    actor: str = "pipeline"
    hard_timeout: timedelta = timedelta(hours=4)
    rng: random.Random = field(default_factory=random.Random)
    mark_done: bool = True
    clusters: ClusterSchedule = field(default_factory=ClusterSchedule)
    policy_state: PolicyStateCache = field(default_factory=PolicyStateCache)


async def process_sessions(
    engine: Engine,
    contexts: Sequence[CriterionContext],
    session_ids: Sequence[int],
    options: PipelineOptions | None = None,
) -> BatchReport:
    """Judge and decide ``session_ids`` for every context; mark them done at the end."""
    options = options or PipelineOptions()
    report = BatchReport(sessions=len(set(session_ids)))
    inputs = await asyncio.to_thread(_load_inputs, engine, session_ids)
    for context in contexts:
        await _process_criterion(engine, context, inputs, options, report)
    if options.mark_done:
        await asyncio.to_thread(_mark_done, engine, sorted(inputs))
    return report


def _load_inputs(engine: Engine, session_ids: Sequence[int]) -> dict[int, SessionInput]:
    with db_session(engine) as db:
        return load_inputs(db, session_ids)


def _mark_done(engine: Engine, session_ids: list[int]) -> None:
    with db_session(engine) as db:
        mark_sessions(db, session_ids, DONE)
        db.commit()


async def _process_criterion(
    engine: Engine,
    context: CriterionContext,
    inputs: dict[int, SessionInput],
    options: PipelineOptions,
    report: BatchReport,
) -> None:
    decided, judged = await asyncio.to_thread(_existing, engine, sorted(inputs), context)
    todo = [sid for sid in sorted(inputs) if sid not in decided]
    if todo:
        await _judge_and_decide(engine, context, inputs, todo, judged, options, report)
    else:
        await asyncio.to_thread(_queue_escalations, engine, context, inputs, set(), options, report)


def _existing(
    engine: Engine, session_ids: list[int], context: CriterionContext
) -> tuple[dict[int, Decision], dict[int, Judgment]]:
    """Decisions and judgments the criterion's version already made on ``session_ids``."""
    with db_session(engine) as db:
        version = context.spec.version
        return decisions_for(db, session_ids, version), judgments_for(db, session_ids, version)


async def _judge_and_decide(
    engine: Engine,
    context: CriterionContext,
    inputs: dict[int, SessionInput],
    todo: list[int],
    judged: dict[int, Judgment],
    options: PipelineOptions,
    report: BatchReport,
) -> None:
    version = context.spec.version
    to_judge = [sid for sid in todo if sid not in judged]
    if to_judge:
        outcomes = await judge_sessions(context.judge, [inputs[sid] for sid in to_judge])
        rows = []
        for sid, outcome in zip(to_judge, outcomes, strict=True):
            row = judgment_row(version, context.criterion_id, sid, outcome)
            row["calibrated_confidence"] = (
                None if outcome.error else context.calibrate(outcome.raw_confidence)
            )
            rows.append(row)
        created, judged = await asyncio.to_thread(
            _store_judgments, engine, rows, todo, version, options
        )
        report.judged += created
    state = options.policy_state.get(context.criterion_id)
    if state is None:
        state = await asyncio.to_thread(_policy_state, engine, context)
        options.policy_state.put(context.criterion_id, state)
    await asyncio.to_thread(
        _decide_and_queue, engine, context, inputs, todo, judged, options, report, state
    )


def _store_judgments(
    engine: Engine,
    rows: list[dict[str, Any]],
    todo: list[int],
    version: str,
    options: PipelineOptions,
) -> tuple[int, dict[int, Judgment]]:
    """Store new judgments; how many were new, and every judgment of ``todo``."""
    with db_session(engine) as db:
        created = add_judgments(db, rows, actor=options.actor)
        return created, judgments_for(db, todo, version)


def _policy_state(engine: Engine, context: CriterionContext) -> PolicyState:
    """Drift alarms, whether audited agreement is below target, escalations used today."""
    with db_session(engine) as db:
        alarms = drift_alarms(db, context.criterion_id)
        # Audit more while the audited agreement is below the calibrated target or drift alarms.
        below_target = online_agreement(db, context.spec.version).below_target
        used_today = escalations_since(
            db, context.criterion_id, start_of_day(), below_priority=CAPPED_BELOW_PRIORITY
        )
    return PolicyState(alarms, below_target, used_today, start_of_day())


def _decide_and_queue(
    engine: Engine,
    context: CriterionContext,
    inputs: dict[int, SessionInput],
    todo: list[int],
    judged: dict[int, Judgment],
    options: PipelineOptions,
    report: BatchReport,
    state: PolicyState,
) -> None:
    """Apply the policy to each judged session, store the decisions, queue escalations."""
    alarms, below_target, used_today = state.alarms, state.below_target, state.used_today
    rows = []
    for sid in todo:
        judgment = judged[sid]
        if judgment.error is None and judgment.calibrated_confidence is None:
            # Judged before this calibration existed (e.g. while calibrating): map it now. The
            # copy is detached, so the stored judgment keeps what was known when it was made.
            judgment.calibrated_confidence = context.calibrate(judgment.raw_confidence)
        decision = decide(
            _policy_inputs(
                context, inputs[sid], judgment, alarms, used_today, options.rng, below_target
            ),
            context.policy,
        )
        if decision.outcome == "escalate" and decision.priority < CAPPED_BELOW_PRIORITY:
            used_today += 1
            options.policy_state.count_escalation(context.criterion_id)
        rows.append(_decision_row(context, sid, judgment.id, judgment.label, decision, judgment))
    with db_session(engine) as db:
        created = add_decisions(db, rows, actor=options.actor)
    _queue_escalations(engine, context, inputs, created, options, report)


def _queue_escalations(
    engine: Engine,
    context: CriterionContext,
    inputs: dict[int, SessionInput],
    created: set[int],
    options: PipelineOptions,
    report: BatchReport,
) -> None:
    """Queue every escalated decision of the batch (idempotently); count and observe new ones.

    Decisions made before a crash but not yet queued are queued now: enqueue returns the
    existing item for a decision that has one, so nothing is queued twice.
    """
    with db_session(engine) as db:
        decisions = decisions_for(db, sorted(inputs), context.spec.version)
        queued_any = False
        for decision_row in sorted(decisions.values(), key=lambda d: d.session_id):
            new = decision_row.id in created
            if new:
                _count(report, decision_row)
                if decision_row.label is not None and context.reference_histogram:
                    observe_label(
                        db, context.criterion_id, decision_row.label, context.reference_histogram
                    )
            if decision_row.outcome == "escalate":
                enqueue(
                    db,
                    decision_row,
                    priority=decision_row.priority,
                    reasons=list(decision_row.reasons),
                    reviews_required=int(decision_row.detail.get("reviews_required", 1)),
                    hard_timeout=options.hard_timeout,
                )
                queued_any = True
                report.queued += int(new)
        db.commit()
    if queued_any and created:
        # Similar open sessions share a cluster, so a reviewer can work one kind at a time.
        options.clusters.new_items(engine, context.criterion_id)


def _policy_inputs(
    context: CriterionContext,
    session: SessionInput,
    judgment: Any,
    alarms: list[str],
    used_today: int,
    rng: random.Random,
    below_target: bool,
) -> PolicyInputs:
    novelty = None
    if context.novelty is not None:
        novelty = context.novelty.score(render_transcript(session))
    return PolicyInputs(
        criterion=context.criterion.name,
        safety_criterion=bool(context.criterion.safety),
        label=judgment.label,
        calibrated_confidence=judgment.calibrated_confidence,
        threshold=context.threshold,
        calibrated=context.calibration_id is not None,
        error=judgment.error,
        rule_matches=match_safety_rules(session, context.policy),
        injection_matches=detect_injection(session, context.policy),
        novelty=novelty,
        novelty_threshold=context.novelty.threshold if context.novelty else None,
        drift_alarms=alarms,
        audit_draw=rng.random(),
        escalations_today=used_today,
        raised_audit=bool(alarms) or below_target,
    )


def _decision_row(
    context: CriterionContext,
    session_id: int,
    judgment_id: int | None,
    label: str | None,
    decision: PolicyDecision,
    judgment: Any,
) -> dict[str, Any]:
    detail = dict(decision.detail)
    detail["reviews_required"] = decision.reviews_required
    return {
        "session_id": session_id,
        "criterion_id": context.criterion_id,
        "judge_version_id": context.spec.version,
        "judgment_id": judgment_id,
        "outcome": decision.outcome,
        "label": label,
        "calibrated_confidence": judgment.calibrated_confidence,
        "priority": decision.priority,
        "reasons": list(decision.reasons),
        "detail": detail,
    }


def _count(report: BatchReport, decision: Decision) -> None:
    report.decided += 1
    if decision.outcome == "escalate":
        report.escalated += 1
        for reason in decision.reasons:
            report.reasons[reason] = report.reasons.get(reason, 0) + 1

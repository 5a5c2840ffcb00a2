"""Approval gates for agents: open one before acting, wait for its outcome, decide it.

Callbacks are delivered after the decision has committed, from a background thread, so a
slow or dead callback URL never holds up the reviewer who decided.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from judgeloop.api.deps import AnyRoleKey, PipelineKey, ReviewerKey, RowId, actor_of
from judgeloop.config import Settings
from judgeloop.gates import GateRules, evaluate, load_rules
from judgeloop.gates.rules import default_rules_path
from judgeloop.models import Gate
from judgeloop.store import (
    GatePublic,
    claim_item,
    db_session,
    decide_gate,
    expire_due_gates,
    gate_public,
    get_gate,
    open_gate,
)
from judgeloop.store.audit import record_event, record_rules_in_effect
from judgeloop.types import utc_now

router = APIRouter(prefix="/v1/gates", tags=["gates"])

MAX_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.25
CALLBACK_ATTEMPTS = 4
CALLBACK_BACKOFF_SECONDS = 0.5
CALLBACK_TIMEOUT_SECONDS = 10.0


class ProposedAction(BaseModel):
    """What the agent wants to do."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Tool or action name.")
    arguments: dict[str, Any] = Field(default_factory=dict)


class GateCreate(BaseModel):
    """An agent's request to act: the action, the state that led to it, where to call back."""

    model_config = ConfigDict(extra="forbid")

    action: ProposedAction
    state: dict[str, Any] = Field(
        default_factory=dict,
        description="Messages, tool calls, context: whatever the agent needs to resume.",
    )
    callback_url: AnyHttpUrl | None = Field(
        default=None, description="POSTed the gate's JSON once it is decided or expires."
    )


class GateDecision(BaseModel):
    """A reviewer's decision on a pending gate."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject", "modify"]
    reason: str | None = Field(
        default=None, max_length=20_000, description="Required to reject; sent to the agent."
    )
    modified_arguments: dict[str, Any] | None = Field(
        default=None, description="For modify: the arguments approved instead."
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _rules(request: Request) -> GateRules:
    # Loaded once per app, from the app's own settings (not the process environment).
    rules: GateRules | None = getattr(request.app.state, "gate_rules", None)
    if rules is None:
        path = default_rules_path(_settings(request))
        rules = load_rules(path) if path is not None else GateRules()
        with db_session(_engine(request)) as db:
            record_rules_in_effect(
                db, actor="api", kind="gate_rules", path=path, rules=rules.model_dump(mode="json")
            )
        request.app.state.gate_rules = rules
    return rules


def apply_gate_timeouts(request: Request) -> None:
    """Apply gate timeouts now (no scheduler needed) and call back for what expired."""
    settings = _settings(request)
    engine = _engine(request)
    with db_session(engine) as db:
        try:
            expired = expire_due_gates(
                db, soft_timeout=timedelta(minutes=settings.gate_soft_timeout_minutes)
            )
        except OperationalError:
            db.rollback()  # a concurrent request expired the same rows
            return
        views = [gate_public(db, gate) for gate in expired]
    for view in views:
        schedule_callback(engine, view)


def schedule_callback(engine: Engine, view: GatePublic) -> None:
    """Tell the agent's callback URL about a decided gate, in the background (with retries)."""
    if view.callback_url:
        threading.Thread(
            target=deliver_callback, args=(engine, view), daemon=True, name=f"gate-{view.id}"
        ).start()


def deliver_callback(engine: Engine, view: GatePublic) -> bool:
    """POST the gate to its callback URL, retrying with backoff; audit the outcome."""
    assert view.callback_url is not None
    body = json.loads(view.model_dump_json())
    outcome: dict[str, Any] = {"url": view.callback_url, "status": view.status}
    delivered = False
    for attempt in range(1, CALLBACK_ATTEMPTS + 1):
        outcome["attempts"] = attempt
        try:
            response = httpx.post(view.callback_url, json=body, timeout=CALLBACK_TIMEOUT_SECONDS)
            outcome["status_code"] = response.status_code
            delivered = response.is_success
        except httpx.HTTPError as error:
            outcome["error"] = f"{type(error).__name__}: {error}"
        if delivered:
            outcome.pop("error", None)
            break
        if attempt < CALLBACK_ATTEMPTS:
            time.sleep(CALLBACK_BACKOFF_SECONDS * 2 ** (attempt - 1))
    outcome["delivered"] = delivered
    with db_session(engine) as db:
        record_event(
            db,
            actor="system",
            action="gate.callback",
            target_type="gate",
            target_id=str(view.id),
            detail=outcome,
        )
        db.commit()
    return delivered


def _view(request: Request, gate_id: int) -> GatePublic:
    with db_session(_engine(request)) as db:
        return gate_public(db, get_gate(db, gate_id))


@router.post("", response_model=GatePublic, status_code=status.HTTP_201_CREATED)
def create_gate(request: Request, key: PipelineKey, payload: GateCreate) -> GatePublic:
    """Ask before acting: green is approved at once, yellow within its limits too; else pending."""
    settings = _settings(request)
    state_bytes = len(json.dumps(payload.state))
    if state_bytes > settings.gate_max_state_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"state is {state_bytes} bytes; at most {settings.gate_max_state_bytes}",
        )
    apply_gate_timeouts(request)
    evaluation = evaluate(payload.action.name, payload.action.arguments, _rules(request))
    with db_session(_engine(request)) as db:
        gate: Gate = open_gate(
            db,
            action_name=payload.action.name,
            arguments=payload.action.arguments,
            state=payload.state,
            callback_url=str(payload.callback_url) if payload.callback_url else None,
            evaluation=evaluation,
            actor=actor_of(key),
            hard_timeout=timedelta(hours=settings.gate_hard_timeout_hours),
        )
        view = gate_public(db, gate)
    if view.status != "pending":
        schedule_callback(_engine(request), view)
    return view


@router.get("/{gate_id}", response_model=GatePublic)
def read_gate(
    request: Request,
    key: AnyRoleKey,
    gate_id: RowId,
    wait: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT_SECONDS, description="Long-poll: wait this long for a decision."),
    ] = 0,
) -> GatePublic:
    """The gate's status; with ``wait``, answers as soon as it is decided or expires."""
    deadline = time.monotonic() + wait
    apply_gate_timeouts(request)
    while True:
        view = _view(request, gate_id)
        if key.role == "reviewer" and view.queue_item_id is None:
            # Reviewers see what reaches their queue; a gate approved by rule never does.
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"gate {gate_id} was decided by rule ({view.tier}) without review; "
                "reviewers may read only the gates that go to the review queue",
            )
        if view.status == "pending" and view.expires_at and view.expires_at <= utc_now():
            # Expiring writes; the poll loop only does so when this gate is due.
            apply_gate_timeouts(request)
            view = _view(request, gate_id)
        if view.status != "pending" or time.monotonic() >= deadline:
            return view
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


@router.post("/{gate_id}/decision", response_model=GatePublic)
def post_decision(
    request: Request, key: ReviewerKey, gate_id: RowId, decision: GateDecision
) -> GatePublic:
    """Approve, reject with a reason, or approve modified arguments; claims the gate first."""
    settings = _settings(request)
    apply_gate_timeouts(request)
    with db_session(_engine(request)) as db:
        view = gate_public(db, get_gate(db, gate_id))
        if view.status == "pending" and view.queue_item_id is not None:
            claim_item(
                db,
                view.queue_item_id,
                key,
                lease=timedelta(minutes=settings.review_lease_minutes),
            )
        gate = decide_gate(
            db,
            gate_id,
            key,
            action=decision.action,
            reason=decision.reason,
            modified_arguments=decision.modified_arguments,
        )
        view = gate_public(db, gate)
    schedule_callback(_engine(request), view)
    return view

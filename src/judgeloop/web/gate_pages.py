"""Approval gates in the web UI: a gate as a queue item, its decision form, the fatigue page.

A gate is an agent blocked on a person. Its page shows the proposed action, its arguments
and the agent's state, and three outcomes: approve, reject with a reason (the agent reads
the reason), or approve with modified arguments. Unlike a judgment there is nothing to hide:
no judge verdict is involved, so nothing here is blind.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session as DbSession

from judgeloop.api.deps import EngineDep, SettingsDep
from judgeloop.api.routers.gates import apply_gate_timeouts as _apply_gate_timeouts
from judgeloop.api.routers.gates import schedule_callback as _call_back
from judgeloop.config import Settings
from judgeloop.models import Gate, Message, QueueItem
from judgeloop.store import ConflictError, InvalidInputError, NotFoundError, db_session
from judgeloop.store.gates import (
    GateCount,
    GatePublic,
    decide_gate,
    gate_counts,
    gate_public,
    get_gate,
    list_gates,
)
from judgeloop.store.queue_views import ReviewItemView, get_item, item_for_reviewer
from judgeloop.types import utc_now
from judgeloop.web.auth import EngineerUser, ReviewerPost, WebUser
from judgeloop.web.filters import QueueFilter
from judgeloop.web.plots import bars_svg
from judgeloop.web.rendering import page, svg

router = APIRouter()

DECISIONS: dict[str, Literal["approve", "reject", "modify"]] = {
    "approve": "approve",
    "reject": "reject",
    "modify": "modify",
}
OUTCOMES = {
    "approved": "Approved: the agent goes ahead with the action as proposed.",
    "modified": "Approved with modified arguments: the agent goes ahead with these instead.",
    "rejected": "Rejected: the agent does not act, and it reads your reason.",
    "expired": "Expired: nobody decided before the hard timeout, so the action was rejected.",
}
DAYS_SHOWN = (7, 14, 30)
RECENT_REJECTIONS = 20


def apply_timeouts(request: Request) -> None:
    """Expire gates past their hard timeout and raise those past the soft one, as the API does.

    Expired gates with a callback URL are reported to their agents.
    """
    _apply_gate_timeouts(request)


@dataclass(frozen=True)
class GateRow:
    """What the queue shows of a gate: its tier, its action, whether the agent waits too long."""

    gate_id: int
    tier: str
    action_name: str
    blocked_too_long: bool


def soft_timeout(settings: Settings) -> timedelta:
    """How long an agent may wait on a gate before its reviewers are reminded."""
    return timedelta(minutes=settings.gate_soft_timeout_minutes)


def soft_timeout_minutes(settings: Settings) -> int:
    """The soft timeout in whole minutes, as the pages say it."""
    return round(soft_timeout(settings).total_seconds() / 60)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def waiting_too_long(
    gate: Gate | GatePublic, settings: Settings, now: datetime | None = None
) -> bool:
    """A pending gate older than the soft timeout: an agent has been blocked for a while."""
    now = now or utc_now()
    return gate.status == "pending" and now - _aware(gate.created_at) > soft_timeout(settings)


def gate_rows(db: DbSession, items: Sequence[QueueItem], settings: Settings) -> dict[int, GateRow]:
    """The gates behind the gate items of a queue listing, by queue item id."""
    now = utc_now()
    rows: dict[int, GateRow] = {}
    for item in items:
        if item.kind != "gate" or item.gate_id is None or item.id is None:
            continue
        try:
            gate = get_gate(db, item.gate_id)
        except NotFoundError:
            continue
        rows[item.id] = GateRow(
            gate_id=item.gate_id,
            tier=gate.tier,
            action_name=gate.action_name,
            blocked_too_long=waiting_too_long(gate, settings, now)
            or "gate:soft_timeout" in item.reasons,
        )
    db.commit()  # ends the read; unlike rollback, keeps the rows loaded
    return rows


def _gate_of_item(engine: Engine, item_id: int) -> GatePublic:
    """The gate behind queue item ``item_id``, with the rule that put it in its tier."""
    with db_session(engine) as db:
        item = get_item(db, item_id)
        if item.gate_id is None:
            raise NotFoundError(f"queue item {item_id} is not a gate")
        gate = gate_public(db, get_gate(db, item.gate_id))
        db.commit()
    return gate


def state_messages(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The state's messages, each as a Message when it reads as one, else as raw JSON."""
    messages = state.get("messages")
    if not isinstance(messages, list):
        return []
    entries: list[dict[str, Any]] = []
    for raw in messages:
        try:
            entries.append({"message": Message.model_validate(raw), "raw": raw})
        except ValidationError:
            entries.append({"message": None, "raw": raw})
    return entries


def _time_left(gate: GatePublic, now: datetime) -> float | None:
    if gate.expires_at is None:
        return None
    return (_aware(gate.expires_at) - now).total_seconds()


def gate_item_page(
    request: Request,
    engine: Engine,
    settings: Settings,
    view: ReviewItemView,
    user: WebUser,
    chosen: QueueFilter,
    *,
    conflict: str | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int | None = None,
) -> Response:
    """The page of one gate item: the action, the agent's state, and the decision forms."""
    gate = _gate_of_item(engine, view.id)
    now = utc_now()
    state = gate.state
    other_state = {
        name: value
        for name, value in state.items()
        if name not in ("messages", "tool_calls", "context")
    }
    form = form or {}
    return page(
        request,
        "gate.html",
        {
            "title": f"Gate {gate.id} · {gate.action_name}",
            "item": view,
            "gate": gate,
            "reasons": view.reasons,
            "messages": state_messages(state),
            "tool_calls": state.get("tool_calls"),
            "context": state.get("context"),
            "other_state": other_state,
            "time_left": _time_left(gate, now),
            "blocked_too_long": waiting_too_long(gate, settings, now),
            "soft_timeout_minutes": soft_timeout_minutes(settings),
            "can_decide": view.held_by_you and gate.status == "pending",
            "outcome": OUTCOMES.get(gate.status),
            "filter": chosen,
            "conflict": conflict,
            "error": error,
            "form": form,
            "arguments_text": form.get("arguments") or json.dumps(gate.arguments, indent=2),
        },
        user=user,
        status_code=status_code or (409 if conflict else 200),
    )


def parse_arguments(text: str) -> dict[str, Any]:
    """Modified arguments typed by a reviewer; ValueError names the problem and where it is."""
    if not text.strip():
        raise ValueError("The modified arguments are empty; enter a JSON object.")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as problem:
        raise ValueError(
            f"The modified arguments are not valid JSON: {problem.msg} at line {problem.lineno}, "
            f"column {problem.colno}."
        ) from problem
    if not isinstance(value, dict):
        raise ValueError(
            f"The modified arguments must be a JSON object ({{…}}), not {type(value).__name__}."
        )
    return value


@router.post("/ui/items/{item_id}/gate")
def decide(
    request: Request,
    item_id: int,
    engine: EngineDep,
    settings: SettingsDep,
    posted: ReviewerPost,
) -> Response:
    """Approve, reject (with a reason) or approve modified arguments of the gate item."""
    form, user = posted.form, posted.user
    chosen = QueueFilter.from_form(form)
    action = DECISIONS.get(form.get("decision", ""))
    # Not "reason": that name is the queue filter's (QueueFilter.from_form reads it).
    reason = form.get("rejection", "").strip() or None
    problem, status_code = None, 422
    modified: dict[str, Any] | None = None
    if action is None:
        problem = "Choose approve, reject or modify."
    elif action == "reject" and reason is None:
        problem = "Give a reason for rejecting: the agent reads it."
    elif action == "modify":
        try:
            modified = parse_arguments(form.get("arguments", ""))
        except ValueError as invalid:
            problem = str(invalid)
    if problem is None and action is not None:
        try:
            gate = _gate_of_item(engine, item_id)
            apply_timeouts(request)  # a gate past its hard timeout is expired, not decided
            with db_session(engine) as db:
                decided = decide_gate(
                    db,
                    gate.id,
                    user.key,
                    action=action,
                    reason=reason,
                    modified_arguments=modified,
                )
                outcome = gate_public(db, decided)
            _call_back(engine, outcome)  # the agent hears at once, as through the API
        except NotFoundError as missing:
            return page(
                request,
                "error.html",
                {"title": "Not found", "heading": "Not found", "message": str(missing)},
                user=user,
                status_code=404,
            )
        except ConflictError as refused:
            problem, status_code = str(refused), 409
        except InvalidInputError as invalid:
            problem = "; ".join(p.msg for p in invalid.problems)
    if problem is None:
        return RedirectResponse(f"/ui/items/{item_id}{chosen.query()}", status_code=303)
    with db_session(engine) as db:
        view = item_for_reviewer(db, item_id, user.key)
    return gate_item_page(
        request,
        engine,
        settings,
        view,
        user,
        chosen,
        conflict=problem if status_code == 409 else None,
        error=problem if status_code != 409 else None,
        form=form,
        status_code=status_code,
    )


# --------------------------------------------------------------------------- approval fatigue


def _fatigue_days(counts: Sequence[GateCount], days: int, target: int) -> list[dict[str, Any]]:
    """One row per day (newest first): requests by tier, human decisions, over target."""
    by_day: dict[date, dict[str, Any]] = defaultdict(
        lambda: {"tiers": defaultdict(int), "requests": 0, "human": 0}
    )
    for count in counts:
        entry = by_day[count.day]
        entry["tiers"][count.tier] += count.requests
        entry["requests"] += count.requests
        entry["human"] += count.human_decisions
    today = utc_now().date()
    rows = []
    for offset in range(days):
        day = today - timedelta(days=offset)
        entry = by_day.get(day, {"tiers": {}, "requests": 0, "human": 0})
        rows.append(
            {
                "day": day.isoformat(),
                "tiers": dict(entry["tiers"]),
                "requests": entry["requests"],
                "human": entry["human"],
                "over_target": entry["human"] > target,
            }
        )
    return rows


DaysQuery = Annotated[int, Query(ge=1, le=90)]


@router.get("/ui/gates", response_class=HTMLResponse)
def fatigue_page(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    user: EngineerUser,
    days: DaysQuery = 7,
) -> Response:
    """Approval fatigue: gate requests per tier per day, and human decisions against a target."""
    target = settings.gate_daily_target
    with db_session(engine) as db:
        counts = gate_counts(db, days=days)
        rejected = list_gates(db, status="rejected", limit=RECENT_REJECTIONS)
        db.commit()
    rejected.sort(key=lambda gate: gate.decided_at or gate.created_at, reverse=True)
    rows = _fatigue_days(counts, days, target)
    tiers = ("red", "yellow", "green")
    chronological = list(reversed(rows))
    plots = [
        svg(
            bars_svg(
                [(row["day"], float(row["human"])) for row in chronological],
                title=f"Human decisions per day (target at most {target})",
                target=float(target),
            )
        ),
        svg(
            bars_svg(
                [
                    (f"{row['day']} {tier}", float(row["tiers"].get(tier, 0)))
                    for row in chronological
                    for tier in tiers
                    if row["tiers"].get(tier)
                ],
                title="Gate requests per day and tier",
            )
        ),
    ]
    return page(
        request,
        "gates.html",
        {
            "title": "Approval gates",
            "rows": rows,
            "tiers": tiers,
            "days": days,
            "days_shown": DAYS_SHOWN,
            "target": target,
            "plots": plots,
            "any_requests": any(row["requests"] for row in rows),
            "rejected": rejected,
        },
        user=user,
    )

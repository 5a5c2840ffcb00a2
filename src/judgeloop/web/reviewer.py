"""Reviewer pages: the queue, and one item with its session, rubric and label form.

Blind review: until a reviewer has submitted, nothing on these pages says what the judge
decided: not its label, its confidence, its rationale, nor a reason that names its verdict.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from judgeloop.api.deps import EngineDep, SettingsDep
from judgeloop.models import QueueItem
from judgeloop.store import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    claim_item,
    claim_next,
    db_session,
    expire_leases,
    item_for_reviewer,
    list_criteria,
    list_queue,
    release_item,
    submit_review,
)
from judgeloop.store.queue import ReviewItemView
from judgeloop.web import gate_pages
from judgeloop.web.auth import ReviewerPost, ReviewerUser, WebUser
from judgeloop.web.filters import FilterQuery, QueueFilter
from judgeloop.web.rendering import page

router = APIRouter()

QUEUE_LIMIT = 500
LISTED_STATUSES = ("open", "claimed", "adjudication")
GROUPINGS = ("criterion", "reason", "cluster")
NOTICES = {
    "empty": "Nothing left to claim in this filter.",
    "released": "You released the item; it is back in the pool.",
    "signed-in": "Signed in.",
}


def blind_reason(reason: str) -> str:
    """A reason as shown before review: reasons that name the judge's verdict are masked."""
    if reason.startswith("safety:") and "verdict" in reason:
        return "safety:verdict"
    return reason


def _lease(settings: SettingsDep) -> timedelta:
    return timedelta(minutes=settings.review_lease_minutes)


def _criteria_names(engine: EngineDep) -> dict[int, str]:
    with db_session(engine) as db:
        names = {row.id: row.name for row in list_criteria(db) if row.id is not None}
        db.rollback()
    return names


def _row(
    item: QueueItem,
    criteria: dict[int, str],
    user: WebUser,
    gates: dict[int, gate_pages.GateRow] | None = None,
) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "gate": (gates or {}).get(item.id or -1),
        "criterion": criteria.get(item.criterion_id or -1, "–"),
        "reasons": [blind_reason(reason) for reason in item.reasons],
        "priority": item.priority,
        "created_at": item.created_at,
        "status": item.status,
        "cluster": item.cluster,
        "claimed_by": item.claimed_by,
        "mine": item.claimed_by == user.name,
        "overdue": item.overdue_at is not None,
        "senior_only": item.senior_only,
        "reviews_required": item.reviews_required,
    }


def _groups(rows: list[dict[str, Any]], group: str | None) -> list[tuple[str, list[Any]]]:
    if group not in GROUPINGS:
        return [("", rows)]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if group == "reason":
            key = row["reasons"][0] if row["reasons"] else "(none)"
        elif group == "cluster":
            key = "no cluster" if row["cluster"] is None else f"cluster {row['cluster']}"
        else:
            key = row["criterion"]
        grouped.setdefault(key, []).append(row)
    return sorted(grouped.items(), key=lambda entry: (-len(entry[1]), entry[0]))


@router.get("/ui/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    user: ReviewerUser,
    criterion: FilterQuery = None,
    reason: FilterQuery = None,
    cluster: int | None = None,
    group: FilterQuery = None,
    notice: FilterQuery = None,
) -> Response:
    """The queue, most urgent first, with facets to stay in one batch."""
    chosen = QueueFilter(criterion=criterion or None, reason=reason or None, cluster=cluster)
    criteria = _criteria_names(engine)
    error = None
    gate_pages.apply_timeouts(request)
    with db_session(engine) as db:
        expire_leases(db)
        everything = list_queue(db, reviewer=user.key, status=LISTED_STATUSES, limit=QUEUE_LIMIT)
        try:
            items = list_queue(
                db,
                reviewer=user.key,
                criterion=chosen.criterion,
                reason=chosen.reason,
                cluster=chosen.cluster,
                status=LISTED_STATUSES,
                limit=QUEUE_LIMIT,
            )
        except InvalidInputError as problem:
            db.rollback()
            error = "; ".join(p.msg for p in problem.problems)
            items = []
        gates = gate_pages.gate_rows(db, items, settings)
    rows = [_row(item, criteria, user, gates) for item in items]
    all_rows = [_row(item, criteria, user) for item in everything]
    facets = {
        "criterion": Counter(row["criterion"] for row in all_rows if row["kind"] != "gate"),
        "reason": Counter(reason for row in all_rows for reason in set(row["reasons"])),
        "cluster": Counter(row["cluster"] for row in all_rows if row["cluster"] is not None),
    }
    return page(
        request,
        "queue.html",
        {
            "title": "Review queue",
            "filter": chosen,
            "group": group if group in GROUPINGS else None,
            "groupings": GROUPINGS,
            "groups": _groups(rows, group),
            "count": len(rows),
            "limit": QUEUE_LIMIT,
            "truncated": len(everything) >= QUEUE_LIMIT,
            "facets": {name: sorted(counts.items()) for name, counts in facets.items()},
            "notice": NOTICES.get(notice or ""),
            "error": error,
            "gate_soft_minutes": gate_pages.soft_timeout_minutes(settings),
        },
        user=user,
        status_code=422 if error else 200,
    )


@router.post("/ui/queue/next")
def claim_next_item(engine: EngineDep, settings: SettingsDep, posted: ReviewerPost) -> Response:
    """Claim the most urgent item of the current filter and open it."""
    chosen = QueueFilter.from_form(posted.form)
    with db_session(engine) as db:
        expire_leases(db)
        try:
            item = claim_next(
                db,
                posted.user.key,
                lease=_lease(settings),
                criterion=chosen.criterion,
                reason=chosen.reason,
                cluster=chosen.cluster,
            )
        except InvalidInputError:
            db.rollback()
            return RedirectResponse(f"/ui/queue{chosen.query()}", status_code=303)
    if item is None:
        return RedirectResponse(f"/ui/queue{chosen.query(notice='empty')}", status_code=303)
    return RedirectResponse(f"/ui/items/{item.id}{chosen.query()}", status_code=303)


def _view(engine: EngineDep, item_id: int, user: WebUser) -> ReviewItemView:
    with db_session(engine) as db:
        return item_for_reviewer(db, item_id, user.key)


def _item_page(
    request: Request,
    view: ReviewItemView,
    user: WebUser,
    chosen: QueueFilter,
    *,
    conflict: str | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    revealed = view.reviewed_by_you
    own_review = next((r for r in view.reviews if r.reviewer == user.name), None)
    others = [r for r in view.reviews if r.reviewer != user.name]
    criterion = view.criterion
    return page(
        request,
        "item.html",
        {
            "title": f"Item {view.id}",
            "item": view,
            "reasons": view.reasons if revealed else [blind_reason(r) for r in view.reasons],
            "revealed": revealed,
            "own_review": own_review,
            "other_reviews": others,
            "can_review": view.held_by_you and not revealed,
            "criterion": criterion,
            "labels": list(criterion.labels) if criterion else [],
            "filter": chosen,
            "conflict": conflict,
            "error": error,
            "form": form or {},
        },
        user=user,
        status_code=status_code,
    )


def _not_found(request: Request, user: WebUser, message: str) -> Response:
    return page(
        request,
        "error.html",
        {"title": "Not found", "heading": "Not found", "message": message},
        user=user,
        status_code=404,
    )


@router.get("/ui/items/{item_id}", response_class=HTMLResponse)
def item_page(
    request: Request,
    item_id: int,
    engine: EngineDep,
    settings: SettingsDep,
    user: ReviewerUser,
    criterion: FilterQuery = None,
    reason: FilterQuery = None,
    cluster: int | None = None,
) -> Response:
    """One item; opening it claims it (or renews one's own claim)."""
    chosen = QueueFilter(criterion=criterion or None, reason=reason or None, cluster=cluster)
    try:
        view = _view(engine, item_id, user)
    except NotFoundError as missing:
        return _not_found(request, user, str(missing))
    conflict = None
    if view.kind == "gate":
        gate_pages.apply_timeouts(request)  # an expired gate is done: nobody claims it
        view = _view(engine, item_id, user)
    if not view.reviewed_by_you and view.status != "done":
        with db_session(engine) as db:
            expire_leases(db)  # an overdue item goes to seniors before anyone claims it
            try:
                claim_item(db, item_id, user.key, lease=_lease(settings))
            except ConflictError as refused:
                conflict = str(refused)
        view = _view(engine, item_id, user)
    if view.kind == "gate":
        return gate_pages.gate_item_page(
            request, engine, settings, view, user, chosen, conflict=conflict
        )
    return _item_page(
        request, view, user, chosen, conflict=conflict, status_code=409 if conflict else 200
    )


@router.post("/ui/items/{item_id}/review")
def submit_item_review(
    request: Request, item_id: int, engine: EngineDep, posted: ReviewerPost
) -> Response:
    """Submit this reviewer's label; then the page shows the judge's verdict."""
    form, user = posted.form, posted.user
    chosen = QueueFilter.from_form(form)
    label = form.get("label", "")
    correction = form.get("correction", "").strip() or None
    problem, status_code = None, 200
    if not label:
        problem, status_code = "Choose a label before submitting.", 422
    else:
        with db_session(engine) as db:
            try:
                submit_review(
                    db,
                    item_id,
                    user.key,
                    label=label,
                    rationale=form.get("rationale", "").strip(),
                    correction=correction,
                )
            except NotFoundError as missing:
                return _not_found(request, user, str(missing))
            except ConflictError as refused:
                problem, status_code = str(refused), 409
            except InvalidInputError as invalid:
                problem, status_code = "; ".join(p.msg for p in invalid.problems), 422
    if problem is None:
        return RedirectResponse(f"/ui/items/{item_id}{chosen.query()}", status_code=303)
    view = _view(engine, item_id, user)
    return _item_page(
        request,
        view,
        user,
        chosen,
        conflict=problem if status_code == 409 else None,
        error=problem if status_code != 409 else None,
        form=form,
        status_code=status_code,
    )


@router.post("/ui/items/{item_id}/release")
def release(item_id: int, engine: EngineDep, posted: ReviewerPost) -> Response:
    """Give the item back to the pool without reviewing it."""
    chosen = QueueFilter.from_form(posted.form)
    with db_session(engine) as db:
        try:
            release_item(db, item_id, posted.user.key)
        except (ConflictError, NotFoundError):
            db.rollback()  # nothing held: nothing to give back
    return RedirectResponse(f"/ui/queue{chosen.query(notice='released')}", status_code=303)

"""Appending human labels, checked against their criterion and session."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session as DbSession
from sqlmodel import select

from judgeloop.models import Criterion, HumanLabel, HumanLabelCreate
from judgeloop.store.audit import record_event
from judgeloop.store.criteria import list_criteria
from judgeloop.store.errors import InvalidInputError, Problem
from judgeloop.store.sessions import find_sessions
from judgeloop.store.upsert import insert_ignoring_conflicts
from judgeloop.types import utc_now


def label_key(session_id: int, criterion_id: int, label: HumanLabelCreate) -> str:
    """Hash everything that makes a label what it is, so re-sending it is recognised."""
    identity = [
        session_id,
        criterion_id,
        label.value,
        label.annotator,
        label.rationale,
        label.correction,
        label.source,
    ]
    return hashlib.sha256(json.dumps(identity, ensure_ascii=False).encode()).hexdigest()


def check_labels(db: DbSession, labels: Sequence[HumanLabelCreate]) -> list[Problem]:
    """Return what is wrong with ``labels`` against the store, writing nothing."""
    return _resolve_labels(db, labels)[1]


def _resolve_labels(
    db: DbSession, labels: Sequence[HumanLabelCreate]
) -> tuple[list[dict[str, Any]], list[Problem]]:
    criteria = {c.name: c for c in list_criteria(db)}
    sessions = find_sessions(db, [(x.session.source, x.session.external_id) for x in labels])
    problems: list[Problem] = []
    rows: list[dict[str, Any]] = []
    for index, label in enumerate(labels):
        criterion = criteria.get(label.criterion)
        session = sessions.get((label.session.source, label.session.external_id))
        problems.extend(_check_label(index, label, criterion, session is not None, criteria))
        if criterion is None or session is None or criterion.id is None or session.id is None:
            continue
        rows.append(
            {
                "session_id": session.id,
                "criterion_id": criterion.id,
                "value": label.value,
                "annotator": label.annotator,
                "rationale": label.rationale,
                "correction": label.correction,
                "source": label.source,
                "label_key": label_key(session.id, criterion.id, label),
                "created_at": utc_now(),
            }
        )
    return rows, problems


def add_labels(
    db: DbSession, labels: Sequence[HumanLabelCreate], *, actor: str
) -> list[tuple[HumanLabel, bool]]:
    """Append labels, all or none; return (row, created) per input, in input order.

    Every label is checked first (session exists, criterion exists, value allowed) and
    nothing is written when any fails. An identical label sent again is not stored twice.
    """
    rows, problems = _resolve_labels(db, labels)
    if problems:
        db.rollback()
        raise InvalidInputError(problems)
    created_ids = insert_ignoring_conflicts(db, HumanLabel, rows, ["label_key"])
    stored = _find_by_label_keys(db, [row["label_key"] for row in rows])
    if created_ids:
        record_event(
            db,
            actor=actor,
            action="labels.create",
            target_type="human_label",
            target_id=_id_range(sorted(created_ids)),
            detail={"count": len(created_ids)},
        )
    db.commit()
    results: list[tuple[HumanLabel, bool]] = []
    reported: set[int] = set()
    for row in rows:
        stored_row = stored[row["label_key"]]
        created = stored_row.id in created_ids and stored_row.id not in reported
        reported.add(stored_row.id or 0)
        results.append((stored_row, created))
    return results


def _id_range(ids: list[int]) -> str:
    return str(ids[0]) if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"


def _check_label(
    index: int,
    label: HumanLabelCreate,
    criterion: Criterion | None,
    session_found: bool,
    criteria: dict[str, Criterion],
) -> list[Problem]:
    problems: list[Problem] = []
    if criterion is None:
        known = ", ".join(sorted(criteria)) or "none defined yet"
        problems.append(
            Problem(
                (index, "criterion"), f"unknown criterion {label.criterion!r}; allowed: {known}"
            )
        )
    elif label.value not in criterion.labels:
        allowed = ", ".join(repr(v) for v in criterion.labels)
        problems.append(
            Problem(
                (index, "value"),
                f"{label.value!r} is not a label of criterion {criterion.name!r}; "
                f"allowed: {allowed}",
            )
        )
    if not session_found:
        problems.append(
            Problem(
                (index, "session"),
                f"no session with source {label.session.source!r} and external_id "
                f"{label.session.external_id!r}; post the session first",
            )
        )
    return problems


def _find_by_label_keys(db: DbSession, keys: list[str]) -> dict[str, HumanLabel]:
    found: dict[str, HumanLabel] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for row in db.exec(select(HumanLabel).where(HumanLabel.label_key.in_(chunk))):  # type: ignore[attr-defined]
            found[row.label_key] = row
    return found


def labels_for_criterion(db: DbSession, criterion_id: int) -> list[HumanLabel]:
    """Return every label of one criterion, oldest first."""
    statement = (
        select(HumanLabel).where(HumanLabel.criterion_id == criterion_id).order_by(HumanLabel.id)  # type: ignore[arg-type]
    )
    return list(db.exec(statement))

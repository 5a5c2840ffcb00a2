"""Storing and reading criteria."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session as DbSession
from sqlmodel import select

from judgeloop.models import Criterion, CriterionCreate
from judgeloop.store.audit import record_event
from judgeloop.store.errors import InvalidInputError, NotFoundError, Problem


def list_criteria(db: DbSession) -> list[Criterion]:
    """Return every criterion, by name."""
    return list(db.exec(select(Criterion).order_by(Criterion.name)))


def get_criterion(db: DbSession, name: str) -> Criterion:
    """Return the criterion called ``name`` or raise NotFoundError naming the known ones."""
    row = db.exec(select(Criterion).where(Criterion.name == name)).first()
    if row is None:
        known = ", ".join(c.name for c in list_criteria(db)) or "none defined yet"
        raise NotFoundError(f"unknown criterion {name!r}; known criteria: {known}")
    return row


def add_criteria(
    db: DbSession, criteria: Sequence[CriterionCreate], *, actor: str
) -> list[tuple[Criterion, bool]]:
    """Store criteria; re-adding an identical one is a no-op, a changed one is refused.

    A criterion's labels are what stored human labels and judgments mean, so they cannot
    change under them: a changed definition needs a new name.
    """
    existing = {c.name: c for c in list_criteria(db)}
    problems: list[Problem] = []
    results: list[tuple[Criterion, bool]] = []
    for index, criterion in enumerate(criteria):
        stored = existing.get(criterion.name)
        if stored is None:
            row = Criterion(**criterion.model_dump())
            db.add(row)
            existing[criterion.name] = row
            results.append((row, True))
        elif CriterionCreate.model_validate(stored, from_attributes=True) != criterion:
            problems.append(
                Problem(
                    (index, "name"),
                    f"criterion {criterion.name!r} already exists with a different definition; "
                    "give the changed criterion a new name",
                )
            )
        else:
            results.append((stored, False))
    if problems:
        db.rollback()
        raise InvalidInputError(problems)
    db.flush()
    for row, created in results:
        if created:
            record_event(
                db,
                actor=actor,
                action="criterion.create",
                target_type="criterion",
                target_id=row.name,
                detail={"kind": row.kind, "labels": row.labels},
            )
    db.commit()
    return results

"""Reviewed cases: human labels together with their whole session, as an evaluation dataset.

`judgeloop export labels|corrections` writes them as JSON Lines; `judgeloop import labels`
reads such a file back (storing the sessions it carries), so a golden set moves between
databases in one file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine, func
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from judgeloop.models import (
    Criterion,
    HumanLabel,
    HumanLabelCreate,
    LabelSource,
    NonEmptyStr,
    Session,
    SessionCreate,
    SessionRef,
)
from judgeloop.sessions.jsonl import LineError, ParsedLine, read_jsonl
from judgeloop.store import add_labels, add_sessions, check_labels, db_session, get_criterion

EXPORT_SOURCES: tuple[str, ...] = ("review", "audit", "adjudication")
LABEL_SOURCES: tuple[str, ...] = ("sme", "review", "audit", "adjudication")
CHUNK = 500


class ReviewedCase(BaseModel):
    """One human label with the whole session it labels (a line of an export file)."""

    model_config = ConfigDict(extra="forbid")

    session: SessionCreate
    criterion: NonEmptyStr
    value: NonEmptyStr = Field(description="The human label.")
    annotator: NonEmptyStr
    rationale: str = Field(default="", max_length=20_000)
    correction: str | None = Field(
        default=None, max_length=20_000, description="The reviewer's corrected response."
    )
    source: LabelSource = Field(default="review", description="How the label came to be.")
    created_at: datetime | None = Field(
        default=None, description="When the label was given; not kept by a re-import."
    )

    @field_validator("value", mode="before")
    @classmethod
    def _numbers_as_strings(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    def to_label(self) -> HumanLabelCreate:
        """The label this case carries, pointing at its session."""
        return HumanLabelCreate(
            session=SessionRef(source=self.session.source, external_id=self.session.external_id),
            criterion=self.criterion,
            value=self.value,
            annotator=self.annotator,
            rationale=self.rationale,
            correction=self.correction,
            source=self.source,
        )

    def json_line(self) -> str:
        """The case as one compact JSON line (message fields left at their defaults omitted)."""
        data = self.model_dump(mode="json")
        data["session"] = self.session.model_dump(mode="json", exclude_defaults=True)
        return json.dumps(data, ensure_ascii=False)


def check_sources(sources: Sequence[str]) -> tuple[str, ...]:
    """``sources`` as a tuple, or ValueError naming the allowed ones."""
    unknown = sorted(set(sources) - set(LABEL_SOURCES))
    if unknown or not sources:
        raise ValueError(
            f"unknown label source(s) {', '.join(unknown) or '(none given)'}; "
            f"allowed: {', '.join(LABEL_SOURCES)}"
        )
    return tuple(dict.fromkeys(sources))


def _filters(
    db: DbSession, criterion: str | None, sources: Sequence[str], corrections_only: bool
) -> list[Any]:
    conditions: list[Any] = [col(HumanLabel.source).in_(check_sources(sources))]
    if criterion is not None:
        conditions.append(HumanLabel.criterion_id == get_criterion(db, criterion).id)
    if corrections_only:
        conditions += [col(HumanLabel.correction).is_not(None), HumanLabel.correction != ""]
    return conditions


def count_reviewed_cases(
    db: DbSession,
    *,
    criterion: str | None = None,
    sources: Sequence[str] = EXPORT_SOURCES,
    corrections_only: bool = False,
) -> int:
    """How many labels :func:`reviewed_cases` yields with the same filters."""
    statement = select(func.count()).select_from(HumanLabel)
    for condition in _filters(db, criterion, sources, corrections_only):
        statement = statement.where(condition)
    return int(db.exec(statement).one())


def reviewed_cases(
    db: DbSession,
    *,
    criterion: str | None = None,
    sources: Sequence[str] = EXPORT_SOURCES,
    corrections_only: bool = False,
) -> Iterator[ReviewedCase]:
    """Labels of ``sources`` (optionally one criterion, only with a correction), oldest first.

    Reads in chunks, so an export of many cases never holds them all in memory.
    """
    conditions = _filters(db, criterion, sources, corrections_only)
    criteria = {row.id: row.name for row in db.exec(select(Criterion))}
    last_id = 0
    while True:
        statement = select(HumanLabel, Session).join(
            Session,
            col(Session.id) == col(HumanLabel.session_id),
        )
        for condition in conditions:
            statement = statement.where(condition)
        statement = (
            statement.where(col(HumanLabel.id) > last_id).order_by(col(HumanLabel.id)).limit(CHUNK)
        )
        rows = list(db.exec(statement))
        if not rows:
            return
        for label, session in rows:
            yield ReviewedCase(
                session=SessionCreate(
                    source=session.source,
                    external_id=session.external_id,
                    messages=session.messages,
                    metadata=session.session_metadata,
                ),
                criterion=criteria[label.criterion_id],
                value=label.value,
                annotator=label.annotator,
                rationale=label.rationale,
                correction=label.correction,
                source=label.source,
                created_at=label.created_at,
            )
        last_id = rows[-1][0].id or last_id


def write_reviewed_cases(
    engine: Engine,
    out: TextIO,
    *,
    criterion: str | None = None,
    sources: Sequence[str] = EXPORT_SOURCES,
    corrections_only: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write the reviewed cases as JSON Lines to ``out``; return how many were written.

    ``on_progress`` receives 1 per line written (its total: :func:`count_reviewed_cases`).
    """
    written = 0
    with db_session(engine) as db:
        for case in reviewed_cases(
            db, criterion=criterion, sources=sources, corrections_only=corrections_only
        ):
            out.write(case.json_line() + "\n")
            written += 1
            if on_progress:
                on_progress(1)
    return written


def is_reviewed_cases_file(path: Path) -> bool:
    """Whether the first record of ``path`` carries a whole session (an export file)."""
    try:
        with path.open("rb") as handle:
            for raw in handle:
                if raw.strip():
                    data = json.loads(raw)
                    session = data.get("session") if isinstance(data, dict) else None
                    return isinstance(session, dict) and "messages" in session
    except (OSError, ValueError):
        return False
    return False


def parse_reviewed_cases(
    path: Path, on_progress: Callable[[int], None] | None = None
) -> tuple[list[ParsedLine[ReviewedCase]], list[LineError]]:
    """Every line of an export file as a case, or the reason it is not one."""
    parsed: list[ParsedLine[ReviewedCase]] = []
    errors: list[LineError] = []
    for outcome in read_jsonl(path, ReviewedCase):
        if isinstance(outcome, LineError):
            errors.append(outcome)
        else:
            parsed.append(outcome)
        if on_progress:
            on_progress(1)
    return parsed, errors


def store_reviewed_cases(
    db: DbSession, cases: Sequence[ReviewedCase], *, actor: str
) -> list[tuple[HumanLabel, bool]]:
    """Store the cases' sessions (once each) and then their labels."""
    add_sessions(db, [case.session for case in cases], actor=actor)
    return add_labels(db, [case.to_label() for case in cases], actor=actor)


def label_problems(db: DbSession, cases: Sequence[ReviewedCase]) -> list[tuple[int, str]]:
    """(index, message) for each case whose label the store would refuse.

    A missing session is no problem here: the case brings its session along.
    """
    problems = check_labels(db, [case.to_label() for case in cases])
    return [
        (int(problem.loc[0]), f"{'.'.join(str(p) for p in problem.loc[1:])}: {problem.msg}")
        for problem in problems
        if problem.loc[1:2] != ("session",)
    ]

"""Importing sessions, labels and criteria from files: all or nothing unless told otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine

from judgeloop.models import CriterionCreate, HumanLabelCreate, SessionCreate
from judgeloop.sessions.cases import (
    is_reviewed_cases_file,
    label_problems,
    parse_reviewed_cases,
    store_reviewed_cases,
)
from judgeloop.sessions.jsonl import LineError, ParsedLine, describe_validation_error, read_jsonl
from judgeloop.store import add_criteria, add_labels, add_sessions, check_labels, db_session

WRITE_CHUNK = 500
ProgressCallback = Callable[[int], None]


@dataclass
class ImportReport:
    """What an import did: lines read, rows created, rows already there, lines refused."""

    path: Path
    read: int = 0
    created: int = 0
    existing: int = 0
    errors: list[LineError] = field(default_factory=list)


class ImportFailedError(Exception):
    """The file had bad lines and nothing was imported."""

    def __init__(self, errors: list[LineError]):
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} bad line(s), nothing imported:\n{shown}{more}")


def _parse(
    path: Path, model: type[Any], on_progress: ProgressCallback | None
) -> tuple[list[ParsedLine[Any]], list[LineError]]:
    parsed: list[ParsedLine[Any]] = []
    errors: list[LineError] = []
    for outcome in read_jsonl(path, model):
        if isinstance(outcome, LineError):
            errors.append(outcome)
        else:
            parsed.append(outcome)
        if on_progress:
            on_progress(1)
    return parsed, errors


def import_sessions(
    engine: Engine,
    path: Path,
    *,
    actor: str,
    skip_invalid: bool = False,
    on_progress: ProgressCallback | None = None,
    pipeline_status: str | None = None,
) -> ImportReport:
    """Import a JSONL file of sessions; a session already stored is not stored again.

    With ``pipeline_status="pending"`` the new sessions wait for the scoring worker.
    """
    report = ImportReport(path)
    parsed, report.errors = _parse(path, SessionCreate, on_progress)
    if report.errors and not skip_invalid:
        raise ImportFailedError(report.errors)
    report.read = len(parsed)
    with db_session(engine) as db:
        for start in range(0, len(parsed), WRITE_CHUNK):
            chunk = [p.item for p in parsed[start : start + WRITE_CHUNK]]
            stored = add_sessions(db, chunk, actor=actor, pipeline_status=pipeline_status)
            for _row, created in stored:
                report.created += created
                report.existing += not created
    return report


def import_labels(
    engine: Engine,
    path: Path,
    *,
    actor: str,
    skip_invalid: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import a JSONL file of human labels, checked against stored sessions and criteria.

    A file written by `judgeloop export labels|corrections` is read too: its sessions are
    stored first (see :func:`import_reviewed_cases`).
    """
    if is_reviewed_cases_file(path):
        return import_reviewed_cases(
            engine, path, actor=actor, skip_invalid=skip_invalid, on_progress=on_progress
        )
    report = ImportReport(path)
    parsed, report.errors = _parse(path, HumanLabelCreate, on_progress)
    with db_session(engine) as db:
        problems = check_labels(db, [p.item for p in parsed])
        db.rollback()
        refused_indexes = {int(problem.loc[0]) for problem in problems}
        for problem in problems:
            index = int(problem.loc[0])
            where = ".".join(str(part) for part in problem.loc[1:])
            report.errors.append(LineError(path, parsed[index].line, f"{where}: {problem.msg}"))
        report.errors.sort(key=lambda e: e.line)
        if report.errors and not skip_invalid:
            raise ImportFailedError(report.errors)
        accepted = [p.item for i, p in enumerate(parsed) if i not in refused_indexes]
        report.read = len(accepted)
        for start in range(0, len(accepted), WRITE_CHUNK):
            for _row, created in add_labels(db, accepted[start : start + WRITE_CHUNK], actor=actor):
                report.created += created
                report.existing += not created
    return report


def import_reviewed_cases(
    engine: Engine,
    path: Path,
    *,
    actor: str,
    skip_invalid: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import an export file of reviewed cases: each line's session, then its label.

    All or nothing as for labels: every line is checked (format, criterion, value) before
    anything is written. The label's ``created_at`` is not kept: a re-import is a new label.
    """
    report = ImportReport(path)
    parsed, report.errors = parse_reviewed_cases(path, on_progress)
    with db_session(engine) as db:
        problems = label_problems(db, [p.item for p in parsed])
        db.rollback()
        refused = {index for index, _message in problems}
        report.errors += [LineError(path, parsed[i].line, message) for i, message in problems]
        report.errors.sort(key=lambda e: e.line)
        if report.errors and not skip_invalid:
            raise ImportFailedError(report.errors)
        accepted = [p.item for i, p in enumerate(parsed) if i not in refused]
        report.read = len(accepted)
        for start in range(0, len(accepted), WRITE_CHUNK):
            chunk = accepted[start : start + WRITE_CHUNK]
            for _row, created in store_reviewed_cases(db, chunk, actor=actor):
                report.created += created
                report.existing += not created
    return report


class _CriteriaFile(BaseModel):
    criteria: list[CriterionCreate]


def load_criteria_file(path: Path) -> list[CriterionCreate]:
    """Read criteria from a YAML or JSON file: a list, or a mapping with key ``criteria``."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        raise ImportFailedError([LineError(path, _error_line(error), str(error))]) from error
    if isinstance(data, list):
        data = {"criteria": data}
    try:
        return _CriteriaFile.model_validate(data).criteria
    except ValidationError as error:
        raise ImportFailedError([LineError(path, 0, describe_validation_error(error))]) from error


def _error_line(error: Exception) -> int:
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    return int(getattr(error, "lineno", 0))


def import_criteria(engine: Engine, path: Path, *, actor: str) -> ImportReport:
    """Import criteria from a YAML or JSON file; identical ones already stored are kept."""
    criteria = load_criteria_file(path)
    report = ImportReport(path, read=len(criteria))
    with db_session(engine) as db:
        for _row, created in add_criteria(db, criteria, actor=actor):
            report.created += created
            report.existing += not created
    return report

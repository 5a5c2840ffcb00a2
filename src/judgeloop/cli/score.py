"""`judgeloop score`: run a judge on a partition or a sessions file and store the Judgments."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlmodel import select

from judgeloop.cli.common import (
    cli_actor,
    console,
    error_console,
    fail,
    open_engine,
    progress_bar,
)
from judgeloop.cli.judges import find_spec
from judgeloop.config import get_settings
from judgeloop.judges.runner import LeakError, score
from judgeloop.judges.spec import SpecError
from judgeloop.models import SessionCreate, SplitAssignment
from judgeloop.sessions import ImportFailedError, import_sessions, read_jsonl
from judgeloop.sessions.jsonl import LineError
from judgeloop.store import (
    InvalidInputError,
    NotFoundError,
    db_session,
    find_sessions,
    get_criterion,
)


def _partition_ids(criterion_name: str, partition: str) -> list[int]:
    with db_session(open_engine()) as db:
        criterion = get_criterion(db, criterion_name)
        statement = select(SplitAssignment.session_id).where(
            SplitAssignment.criterion_id == criterion.id, SplitAssignment.partition == partition
        )
        return sorted(db.exec(statement))


def _file_ids(path: Path) -> list[int]:
    engine = open_engine()
    import_sessions(engine, path, actor=cli_actor())
    keys = [
        (item.item.source, item.item.external_id)
        for item in read_jsonl(path, SessionCreate)
        if not isinstance(item, LineError)
    ]
    with db_session(engine) as db:
        found = find_sessions(db, keys)
    return sorted({row.id for row in found.values() if row.id is not None})


def score_command(
    judge: str = typer.Option(..., "--judge", help="Judge file, name or version."),
    split: str | None = typer.Option(None, "--split", help="calibration or test."),
    sessions: Path | None = typer.Option(
        None, "--sessions", exists=True, dir_okay=False, help="JSONL of sessions to score."
    ),
    concurrency: int = typer.Option(8, min=1, help="LLM calls in flight at once."),
) -> None:
    """Judge sessions with a judge version; judgments are stored once per session and version."""
    if (split is None) == (sessions is None):
        raise fail("give exactly one of --split calibration|test or --sessions FILE")
    if split is not None and split not in ("calibration", "test"):
        raise fail(f"--split must be calibration or test, not {split!r}")
    try:
        path, spec = find_spec(judge)
        session_ids = _partition_ids(spec.criterion.name, split) if split else _file_ids(sessions)  # type: ignore[arg-type]
    except (SpecError, NotFoundError, ImportFailedError) as error:
        raise fail(str(error)) from error
    if not session_ids:
        raise fail(f"no sessions to score (has `judgeloop derive` split {spec.criterion.name!r}?)")
    with progress_bar(f"{spec.name} {spec.version}", len(session_ids)) as advance:
        try:
            report = score(
                open_engine(),
                spec,
                session_ids,
                actor=cli_actor(),
                judges_dir=get_settings().judges_dir,
                concurrency=concurrency,
                on_progress=advance,
                forbid_examples=split is not None,
            )
        except (LeakError, InvalidInputError, NotFoundError, SpecError) as error:
            raise fail(str(error)) from error
    console.print(
        f"{spec.name} ({report.version}): {report.judged} judged, "
        f"{report.already_judged} already judged, {report.errors} errors"
    )
    for sample in report.error_samples:
        error_console.print(f"  error: {sample}", highlight=False)

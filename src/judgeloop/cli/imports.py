"""`judgeloop import`: sessions, labels and criteria from files."""

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from judgeloop.cli.common import cli_actor, console, error_console, fail, open_engine
from judgeloop.sessions import (
    ImportFailedError,
    ImportReport,
    count_lines,
    import_criteria,
    import_labels,
    import_sessions,
)
from judgeloop.store import InvalidInputError

app = typer.Typer(help="Import sessions, labels and criteria from files.", no_args_is_help=True)

FileArgument = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="JSONL file.")
SkipInvalidOption = typer.Option(
    False,
    "--skip-invalid",
    help="Import the good lines and report the bad ones (default: all or nothing).",
)


def _report(report: ImportReport, noun: str) -> None:
    console.print(
        f"{report.path}: {report.created} {noun} imported, {report.existing} already stored, "
        f"{len(report.errors)} refused"
    )
    for error in report.errors[:50]:
        error_console.print(f"  skipped {error}", highlight=False)


def _run_with_progress(path: Path, description: str, run: object) -> ImportReport:
    total = count_lines(path)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=error_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        assert callable(run)
        report: ImportReport = run(lambda n: progress.advance(task, n))
    return report


@app.command("sessions")
def sessions_command(path: Path = FileArgument, skip_invalid: bool = SkipInvalidOption) -> None:
    """Import sessions from a JSONL file (one session per line, see docs/formats.md)."""
    engine = open_engine()
    try:
        report = _run_with_progress(
            path,
            "sessions",
            lambda tick: import_sessions(
                engine, path, actor=cli_actor(), skip_invalid=skip_invalid, on_progress=tick
            ),
        )
    except ImportFailedError as error:
        raise fail(str(error)) from error
    _report(report, "sessions")


@app.command("labels")
def labels_command(path: Path = FileArgument, skip_invalid: bool = SkipInvalidOption) -> None:
    """Import human labels from a JSONL file; their sessions and criteria must exist."""
    engine = open_engine()
    try:
        report = _run_with_progress(
            path,
            "labels",
            lambda tick: import_labels(
                engine, path, actor=cli_actor(), skip_invalid=skip_invalid, on_progress=tick
            ),
        )
    except ImportFailedError as error:
        raise fail(str(error)) from error
    _report(report, "labels")


@app.command("criteria")
def criteria_command(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="YAML or JSON file."),
) -> None:
    """Define criteria from a YAML or JSON file (a list of criteria)."""
    try:
        report = import_criteria(open_engine(), path, actor=cli_actor())
    except (ImportFailedError, InvalidInputError) as error:
        raise fail(f"{path}: {error}") from error
    _report(report, "criteria")

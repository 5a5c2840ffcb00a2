"""`judgeloop import`: sessions, labels and criteria from files."""

from pathlib import Path

import typer

from judgeloop.cli.common import (
    cli_actor,
    console,
    error_console,
    fail,
    open_engine,
    progress_bar,
)
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


def _import_file(path: Path, kind: str, skip_invalid: bool) -> None:
    importer = import_sessions if kind == "sessions" else import_labels
    engine = open_engine()
    try:
        with progress_bar(kind, count_lines(path)) as advance:
            report = importer(
                engine, path, actor=cli_actor(), skip_invalid=skip_invalid, on_progress=advance
            )
    except ImportFailedError as error:
        raise fail(str(error)) from error
    _report(report, kind)


@app.command("sessions")
def sessions_command(path: Path = FileArgument, skip_invalid: bool = SkipInvalidOption) -> None:
    """Import sessions from a JSONL file (one session per line, see docs/formats.md)."""
    _import_file(path, "sessions", skip_invalid)


@app.command("labels")
def labels_command(path: Path = FileArgument, skip_invalid: bool = SkipInvalidOption) -> None:
    """Import human labels from a JSONL file; their sessions and criteria must exist."""
    _import_file(path, "labels", skip_invalid)


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

"""`judgeloop recalibrate` and `judgeloop export`: what reviews give back to the judges."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.table import Table

from judgeloop.cli.common import cli_actor, console, error_console, fail, open_engine
from judgeloop.cli.judges import find_spec
from judgeloop.config import get_settings
from judgeloop.judges.runner import LeakError
from judgeloop.judges.spec import SpecError
from judgeloop.store import InvalidInputError, NotFoundError

export_app = typer.Typer(
    help="Write reviewed cases as JSONL: an evaluation dataset, golden examples, fine-tuning data.",
    no_args_is_help=True,
)


def _sources(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _number(value: float | None, measure: str) -> str:
    if value is None:
        return "-"
    if measure.startswith("n_"):
        return str(int(value))
    return f"{value:.1%}" if measure != "threshold" else f"{value:.3f}"


def recalibrate_command(
    judge: str = typer.Option(..., "--judge", help="Judge file, name or version."),
    alpha: float | None = typer.Option(
        None, min=0.001, max=0.5, help="Allowed disagreement (default: the last calibration's)."
    ),
    delta: float | None = typer.Option(
        None, min=0.001, max=0.5, help="Allowed chance of missing it (default: the last one's)."
    ),
    method: str | None = typer.Option(None, help="Calibrator: isotonic or platt."),
    min_count: int | None = typer.Option(
        None, min=1, help="Fewest auto-decided items a test needs."
    ),
    sources: str = typer.Option(
        "sme,review,audit,adjudication",
        "--sources",
        help="Label sources that form the human reference, comma-separated.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Refit calibrator and threshold λ with the reviewed labels, keeping every partition.

    Newly labelled sessions without a partition join calibration or test by a recorded hash
    rule, never derive; a new Calibration is stored and compared with the previous one.
    """
    from judgeloop.calibration.recalibrate import recalibrate_judge

    if method not in (None, "isotonic", "platt"):
        raise fail(f"--method must be isotonic or platt, not {method!r}")
    try:
        _path, spec = find_spec(judge)
        outcome = recalibrate_judge(
            open_engine(),
            spec,
            actor=cli_actor(),
            alpha=alpha,
            delta=delta,
            method=method,  # type: ignore[arg-type]
            min_count=min_count,
            sources=_sources(sources),
            judges_dir=get_settings().judges_dir,
        )
    except (SpecError, NotFoundError, InvalidInputError, LeakError, ValueError) as error:
        raise fail(str(error)) from error
    if json_output:
        typer.echo(outcome.model_dump_json())
        return
    previous = outcome.previous
    table = Table(
        "measure",
        "before" if previous is None else f"calibration {previous.calibration_id}",
        f"calibration {outcome.current.calibration_id}",
        title=f"Recalibration of {outcome.judge} ({outcome.version})",
    )
    for change in outcome.changes:
        table.add_row(
            change.measure,
            _number(change.before, change.measure),
            _number(change.after, change.measure),
        )
    console.print(table)
    console.print(
        f"newly labelled sessions recorded: {outcome.assigned['calibration']} to calibration, "
        f"{outcome.assigned['test']} to test; human reference: {sources}",
        highlight=False,
    )
    if previous is None:
        console.print("no previous calibration: nothing to compare with", highlight=False)


def _export(criterion: str | None, sources: str, out: Path | None, corrections: bool) -> None:
    from judgeloop.cli.common import progress_bar
    from judgeloop.sessions.cases import check_sources, count_reviewed_cases, write_reviewed_cases
    from judgeloop.store import db_session

    engine = open_engine()
    try:
        chosen = check_sources(_sources(sources))
        with db_session(engine) as db:
            total = count_reviewed_cases(
                db, criterion=criterion, sources=chosen, corrections_only=corrections
            )
        with ExitStack() as stack:
            handle = (
                stack.enter_context(out.open("w", encoding="utf-8"))
                if out is not None
                else sys.stdout
            )
            advance = stack.enter_context(progress_bar("export", total))
            written = write_reviewed_cases(
                engine,
                handle,
                criterion=criterion,
                sources=chosen,
                corrections_only=corrections,
                on_progress=advance,
            )
    except (NotFoundError, ValueError, OSError) as error:
        raise fail(str(error)) from error
    noun = "corrections" if corrections else "labels"
    error_console.print(f"{written} {noun} written{f' to {out}' if out else ''}", highlight=False)


CriterionOption = typer.Option(None, "--criterion", help="Only this criterion.")
SourceOption = typer.Option(
    "review,audit,adjudication", "--source", help="Label sources to export, comma-separated."
)
OutOption = typer.Option(None, "--out", dir_okay=False, help="Output file (default: stdout).")


@export_app.command("labels")
def export_labels_command(
    criterion: str | None = CriterionOption,
    source: str = SourceOption,
    out: Path | None = OutOption,
) -> None:
    """Every reviewed label with its whole session (re-imports with `judgeloop import labels`)."""
    _export(criterion, source, out, corrections=False)


@export_app.command("corrections")
def export_corrections_command(
    criterion: str | None = CriterionOption,
    source: str = SourceOption,
    out: Path | None = OutOption,
) -> None:
    """Only the reviewed labels that carry a corrected response."""
    _export(criterion, source, out, corrections=True)


def register(app: typer.Typer) -> None:
    """Add `recalibrate` and `export` to the `judgeloop` app."""
    app.command("recalibrate")(recalibrate_command)
    app.add_typer(export_app, name="export")

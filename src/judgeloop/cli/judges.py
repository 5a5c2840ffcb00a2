"""`judgeloop judges`: list and show judge spec files and their versions."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from judgeloop.cli.common import cli_actor, console, fail, open_engine
from judgeloop.config import get_settings
from judgeloop.judges.spec import JudgeSpec, SpecError, dump_spec, load_spec
from judgeloop.store import db_session, list_judge_versions
from judgeloop.store.judges import activate_judge_version, active_judge_versions

app = typer.Typer(help="Judge spec files and their versions.", no_args_is_help=True)


# Files in the judges folder that configure the service rather than describe a judge.
NOT_SPECS = {"escalation.yaml"}


def spec_files(judges_dir: Path) -> list[Path]:
    """Every judge file under ``judges_dir``."""
    found = sorted(judges_dir.glob("**/*.yaml")) + sorted(judges_dir.glob("**/*.yml"))
    return [path for path in found if path.name not in NOT_SPECS]


def find_spec(reference: str) -> tuple[Path, JudgeSpec]:
    """A judge by file path, by name, or by version id (searched in the judges folder)."""
    path = Path(reference)
    if path.is_file():
        return path, load_spec(path)
    judges_dir = get_settings().judges_dir
    matches = []
    for candidate in spec_files(judges_dir):
        try:
            spec = load_spec(candidate)
        except SpecError:
            continue
        if reference in (spec.name, spec.version):
            matches.append((candidate, spec))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SpecError(f"no judge file, name or version {reference!r} under {judges_dir}/")
    names = ", ".join(str(m[0]) for m in matches)
    raise SpecError(f"{reference!r} matches several judge files ({names}); give the path")


@app.command("list")
def list_command(
    judges_dir: Path | None = typer.Option(
        None, help="Folder of judge files (JUDGELOOP_JUDGES_DIR)."
    ),
) -> None:
    """List judge files with their criterion, backend and version, and whether it is registered."""
    folder = judges_dir or get_settings().judges_dir
    with db_session(open_engine()) as db:
        registered = {row.id for row in list_judge_versions(db)}
    with db_session(open_engine()) as db:
        active = {row.id for row in active_judge_versions(db)}
    table = Table("file", "criterion", "backend", "version", "registered")
    for path in spec_files(folder):
        try:
            spec = load_spec(path)
        except SpecError as error:
            table.add_row(str(path), "[red]invalid[/]", str(error)[:60], "", "")
            continue
        backend: str = "cascade" if spec.tiers else spec.backend
        if spec.model:
            backend = f"{backend} {spec.model}"
        registered_text = "yes" if spec.version in registered else "no"
        if spec.version in active:
            registered_text = "[green]active[/]"
        table.add_row(str(path), spec.criterion.name, backend, spec.version, registered_text)
    console.print(table)


@app.command("show")
def show_command(reference: str = typer.Argument(..., help="File path, name or version.")) -> None:
    """Show one judge: its version, criterion, examples, and the normalized spec."""
    try:
        path, spec = find_spec(reference)
    except SpecError as error:
        raise fail(str(error)) from error
    console.print(f"[bold]{spec.name}[/]  version [bold]{spec.version}[/]  ({path})")
    console.print(
        f"criterion {spec.criterion.name} ({spec.criterion.kind}: "
        f"{', '.join(spec.criterion.labels)}), backend {spec.backend}, model {spec.model or '-'}, "
        f"confidence {spec.confidence.method}, {len(spec.examples)} few-shot examples"
        + (f", {len(spec.classifier.training)} training sessions" if spec.classifier else "")
    )
    console.print(dump_spec(spec), highlight=False, markup=False)


@app.command("activate")
def activate_command(
    reference: str = typer.Argument(..., help="File path, name or version of the judge."),
) -> None:
    """Make this judge version the one the pipeline scores its criterion with."""
    from judgeloop.judges.runner import register_spec
    from judgeloop.store import InvalidInputError, NotFoundError

    try:
        _path, spec = find_spec(reference)
        engine = open_engine()
        register_spec(engine, spec, actor=cli_actor())
        with db_session(engine) as db:
            activate_judge_version(db, spec.version, actor=cli_actor())
    except (SpecError, NotFoundError, InvalidInputError) as error:
        raise fail(str(error)) from error
    console.print(
        f"{spec.name} ({spec.version}) now scores {spec.criterion.name!r} in the pipeline",
        highlight=False,
    )

"""`judgeloop demo`: load the demo data into the configured database and serve the API."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.table import Table
from sqlmodel import select

from judgeloop.cli.common import cli_actor, console, fail, open_engine
from judgeloop.cli.serve import serve_command
from judgeloop.config import get_settings
from judgeloop.models import Criterion, HumanLabel
from judgeloop.sessions import ImportFailedError, import_criteria, import_labels, import_sessions
from judgeloop.store import count_sessions, create_key, db_session, upgrade

DEMO_FILES = (
    ("sessions", "sessions.jsonl"),
    ("labels", "labels.jsonl"),
    ("sessions", "drift_sessions.jsonl"),
    ("labels", "drift_labels.jsonl"),
)


def find_demo_dir() -> Path:
    """Locate the demo data: JUDGELOOP_DEMO_DIR, the installed copy, or the source checkout."""
    configured = get_settings().demo_dir
    candidates = [configured] if configured else []
    package_root = Path(__file__).resolve().parents[1]
    candidates += [
        package_root / "_demo_data",
        package_root.parents[1] / "datasets" / "demo",
        Path.cwd() / "datasets" / "demo",
    ]
    for candidate in candidates:
        if candidate is not None and (candidate / "criteria.yaml").is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates if c is not None)
    raise FileNotFoundError(f"demo data not found (looked in {searched}); set JUDGELOOP_DEMO_DIR")


def demo_command(
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the API afterwards."),
    port: int | None = typer.Option(None, help="Port to serve on (JUDGELOOP_PORT)."),
) -> None:
    """Load the demo support sessions and SME labels, then serve the API. Offline, no API key."""
    try:
        demo_dir = find_demo_dir()
    except FileNotFoundError as error:
        raise fail(str(error)) from error
    engine = open_engine()
    console.rule("[bold]judgeloop demo")
    console.print(f"database: {engine.url.render_as_string()}   demo data: {demo_dir}")
    upgrade(engine)
    actor = cli_actor()
    try:
        import_criteria(engine, demo_dir / "criteria.yaml", actor=actor)
        for kind, filename in DEMO_FILES:
            importer = import_sessions if kind == "sessions" else import_labels
            report = importer(engine, demo_dir / filename, actor=actor)
            console.print(
                f"  {filename:<22} {report.created:>5} new {kind}, "
                f"{report.existing:>5} already stored"
            )
    except ImportFailedError as error:
        raise fail(str(error)) from error
    _print_summary(engine)
    with db_session(engine) as db:
        _row, plaintext = create_key(db, role="admin", name="demo", actor=actor)
    if serve:
        settings = get_settings()
        console.print(
            f"\nAPI key (admin, shown once): [bold]{plaintext}[/]\n"
            f"Try: curl -H 'Authorization: Bearer {plaintext}' "
            f"http://{settings.host}:{port or settings.port}/v1/criteria\n"
            f"OpenAPI docs: http://{settings.host}:{port or settings.port}/docs   (Ctrl-C stops)"
        )
        serve_command(host=None, port=port)
    else:
        console.print(f"\nAPI key (admin, shown once): {plaintext}")


def _print_summary(engine: object) -> None:
    from sqlalchemy import Engine

    assert isinstance(engine, Engine)
    with db_session(engine) as db:
        sessions = count_sessions(db)
        criteria = list(db.exec(select(Criterion).order_by(Criterion.name)))
        table = Table("criterion", "kind", "labels", "label distribution (all annotators)")
        for criterion in criteria:
            values = db.exec(
                select(HumanLabel.value).where(HumanLabel.criterion_id == criterion.id)
            ).all()
            counts = Counter(values)
            distribution = "  ".join(
                f"{label}: {counts.get(label, 0)}" for label in criterion.labels
            )
            table.add_row(criterion.name, criterion.kind, str(len(values)), distribution)
    console.print(f"\n{sessions} sessions stored")
    console.print(table)

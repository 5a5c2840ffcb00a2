"""`judgeloop demo`: the loop on the demo data, offline: derive, score, measure, serve."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import Engine

from judgeloop.cli.common import cli_actor, console, fail, open_engine
from judgeloop.cli.serve import serve_command
from judgeloop.config import get_settings
from judgeloop.judges.derive import DeriveOptions, derive_spec
from judgeloop.judges.runner import register_spec, score
from judgeloop.judges.spec import JudgeSpec, dump_spec
from judgeloop.judges.votes import collect_votes, majority_labels
from judgeloop.models import Judgment, SessionCreate
from judgeloop.sessions import (
    ImportFailedError,
    LineError,
    import_criteria,
    import_labels,
    import_sessions,
    read_jsonl,
)
from judgeloop.store import (
    create_key,
    db_session,
    find_sessions,
    get_criterion,
    get_splits,
    judgments_for_version,
    labels_for_criterion,
    list_criteria,
    upgrade,
)

MAIN_BATCH = (("sessions", "sessions.jsonl"), ("labels", "labels.jsonl"))
LATER_BATCH = (("sessions", "drift_sessions.jsonl"), ("labels", "drift_labels.jsonl"))
DEMO_ALPHA = 0.1
DEMO_DELTA = 0.1


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


def _import(engine: Engine, demo_dir: Path, files: tuple[tuple[str, str], ...]) -> None:
    for kind, filename in files:
        importer = import_sessions if kind == "sessions" else import_labels
        report = importer(engine, demo_dir / filename, actor=cli_actor())
        console.print(
            f"  {filename:<22} {report.created:>5} new {kind}, {report.existing:>5} already stored"
        )


def _derive_all(engine: Engine, judges_dir: Path) -> list[JudgeSpec]:
    specs = []
    with db_session(engine) as db:
        names = [c.name for c in list_criteria(db)]
    for name in names:
        # The later batch is labelled too; judges are derived from the first batch only.
        options = DeriveOptions(
            criterion=name, name=f"{name}-support-v1", where=(("batch", "main"),)
        )
        spec = derive_spec(engine, options, actor=cli_actor()).spec
        path = judges_dir / name / "support-v1.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_spec(spec), encoding="utf-8")
        register_spec(engine, spec, actor=cli_actor())
        specs.append(spec)
        console.print(f"  derived {path} (version {spec.version})")
    return specs


def _agreement(engine: Engine, spec: JudgeSpec, session_ids: set[int]) -> tuple[int, float]:
    with db_session(engine) as db:
        criterion = get_criterion(db, spec.criterion.name)
        majority = majority_labels(
            criterion, collect_votes(labels_for_criterion(db, criterion.id or 0))
        )
        judgments: list[Judgment] = [
            j for j in judgments_for_version(db, spec.version) if j.session_id in session_ids
        ]
    judged = [j for j in judgments if j.session_id in majority and j.error is None]
    if not judged:
        return 0, float("nan")
    agreeing = sum(j.label == majority[j.session_id] for j in judged)
    return len(judged), agreeing / len(judged)


def _session_ids_in(engine: Engine, path: Path) -> set[int]:
    keys = [
        (parsed.item.source, parsed.item.external_id)
        for parsed in read_jsonl(path, SessionCreate)
        if not isinstance(parsed, LineError)
    ]
    with db_session(engine) as db:
        return {row.id for row in find_sessions(db, keys).values() if row.id is not None}


def _partition(engine: Engine, criterion_name: str, partition: str) -> set[int]:
    with db_session(engine) as db:
        criterion = get_criterion(db, criterion_name)
        return {sid for sid, p in get_splits(db, criterion.id or 0).items() if p == partition}


def _calibrate_and_report(engine: Engine, specs: list[JudgeSpec], later_ids: set[int]) -> None:
    from judgeloop.calibration.calibrate import calibrate_judge
    from judgeloop.calibration.report import calibration_html, interval_text

    table = Table(
        "criterion",
        "agreement (test)",
        "SME vs SMEs",
        "judge vs SMEs",
        "λ",
        "auto",
        "agree (auto)",
        "later batch",
        title=f"Judges vs the SME majority; escalation threshold for ≥{1 - DEMO_ALPHA:.0%} "
        f"agreement with probability ≥{1 - DEMO_DELTA:.0%}",
    )
    reports = Path("reports")
    reports.mkdir(exist_ok=True)
    for spec in specs:
        result = calibrate_judge(
            engine, spec, alpha=DEMO_ALPHA, delta=DEMO_DELTA, actor=cli_actor(), n_resamples=500
        )
        (reports / f"{spec.name}.html").write_text(calibration_html(result), encoding="utf-8")
        score(engine, spec, sorted(later_ids), actor=cli_actor())
        n_later, later_agreement = _agreement(engine, spec, later_ids)
        ceiling = result.ceiling
        threshold = result.threshold.lambda_
        table.add_row(
            spec.criterion.name,
            interval_text(result.agreement.agreement if result.agreement else None, True),
            interval_text(ceiling.leave_one_out_sme if ceiling else None, True),
            interval_text(ceiling.leave_one_out_judge if ceiling else None, True),
            "escalate all" if threshold is None else f"{threshold:.2f}",
            f"{result.test.coverage:.0%}",
            "-" if result.test.agreement_auto is None else f"{result.test.agreement_auto:.1%}",
            f"{later_agreement:.1%} (n={n_later})",
        )
    console.print(table)
    console.print(
        f"HTML reports with reliability diagrams, confusion matrices and coverage curves: "
        f"{reports}/*.html"
    )


def demo_command(
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the API afterwards."),
    port: int | None = typer.Option(None, help="Port to serve on (JUDGELOOP_PORT)."),
) -> None:
    """Load the demo support sessions and SME labels, derive and score judges, serve the API.

    Offline and without any API key: the judges are scikit-learn classifiers fitted on the
    derive partition of the SME labels.
    """
    try:
        demo_dir = find_demo_dir()
    except FileNotFoundError as error:
        raise fail(str(error)) from error
    settings = get_settings()
    engine = open_engine()
    console.rule("[bold]judgeloop demo")
    console.print(f"database: {engine.url.render_as_string()}   demo data: {demo_dir}")
    upgrade(engine)
    try:
        import_criteria(engine, demo_dir / "criteria.yaml", actor=cli_actor())
        console.print("[bold]1. SME-labelled sessions")
        _import(engine, demo_dir, MAIN_BATCH)
        console.print(
            "[bold]2. Judges derived from the SME labels (split: derive | calibration | test)"
        )
        specs = _derive_all(engine, settings.judges_dir)
        console.print("[bold]3. A later batch arrives (new product line, other phrasing)")
        _import(engine, demo_dir, LATER_BATCH)
    except ImportFailedError as error:
        raise fail(str(error)) from error
    later_ids = _session_ids_in(engine, demo_dir / LATER_BATCH[0][1])
    console.print("[bold]4. Calibrating each judge and scoring the later batch")
    _calibrate_and_report(engine, specs, later_ids)
    with db_session(engine) as db:
        _row, plaintext = create_key(db, role="admin", name="demo", actor=cli_actor())
    console.print(f"\nAPI key (admin, shown once): [bold]{plaintext}[/]")
    if serve:
        address = f"http://{settings.host}:{port or settings.port}"
        console.print(
            f"Try: curl -H 'Authorization: Bearer {plaintext}' {address}/v1/criteria\n"
            f"OpenAPI docs: {address}/docs   (Ctrl-C stops)"
        )
        serve_command(host=None, port=port)

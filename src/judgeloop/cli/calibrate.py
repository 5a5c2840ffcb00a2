"""`judgeloop calibrate` and `judgeloop compare`: the numbers before a judge decides alone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from judgeloop.cli.common import cli_actor, console, fail, open_engine
from judgeloop.cli.judges import find_spec
from judgeloop.config import get_settings
from judgeloop.judges.runner import LeakError, score
from judgeloop.judges.spec import SpecError
from judgeloop.store import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from judgeloop.calibration.compare import Comparison
    from judgeloop.calibration.replay_compare import ReplayComparison


def calibrate_command(
    judge: str = typer.Option(..., "--judge", help="Judge file, name or version."),
    alpha: float = typer.Option(0.1, min=0.001, max=0.5, help="Allowed disagreement 1-target."),
    delta: float = typer.Option(0.1, min=0.001, max=0.5, help="Allowed chance of missing it."),
    method: str = typer.Option("isotonic", help="Calibrator: isotonic or platt."),
    min_count: int = typer.Option(30, min=1, help="Fewest auto-decided items a test needs."),
    html: Path | None = typer.Option(
        None, "--html", help="Report file (default: reports/<judge>-<version>.html)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Score calibration and test, fit calibrator and threshold λ, report agreement on test."""
    from judgeloop.calibration.calibrate import calibrate_judge
    from judgeloop.calibration.report import calibration_html, summary_rows

    if method not in ("isotonic", "platt"):
        raise fail(f"--method must be isotonic or platt, not {method!r}")
    try:
        _path, spec = find_spec(judge)
        result = calibrate_judge(
            open_engine(),
            spec,
            alpha=alpha,
            delta=delta,
            method=method,  # type: ignore[arg-type]
            min_count=min_count,
            actor=cli_actor(),
            judges_dir=get_settings().judges_dir,
        )
    except (SpecError, NotFoundError, InvalidInputError, LeakError, ValueError) as error:
        raise fail(str(error)) from error
    out = html or Path("reports") / f"{spec.name}-{spec.version}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(calibration_html(result), encoding="utf-8")
    if json_output:
        typer.echo(result.model_dump_json())
        return
    table = Table("measure", "value", title=f"Calibration of {spec.name}")
    for name, value in summary_rows(result):
        table.add_row(name, value)
    console.print(table)
    console.print(f"report: {out}   stored as calibration {result.calibration_id}")


def _difference_table(result: Comparison | ReplayComparison, title: str) -> Table:
    """Both judges' agreement and kappa with the paired differences; callers add rows."""
    from judgeloop.calibration.report import interval_text

    table = Table(
        "", result.first.judge, result.second.judge, "difference (2nd - 1st)", title=title
    )
    table.add_row(
        "agreement",
        interval_text(result.first.agreement, True),
        interval_text(result.second.agreement, True),
        interval_text(result.agreement_difference, True),
    )
    table.add_row(
        "Cohen's kappa",
        interval_text(result.first.cohen_kappa),
        interval_text(result.second.cohen_kappa),
        interval_text(result.kappa_difference),
    )
    return table


def _parse_floor(text: str) -> dict[str, float]:
    floors = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in ("agreement", "kappa") or not value:
            raise ValueError(f"--fail-below takes agreement=X,kappa=Y; got {part!r}")
        floors[name] = float(value)
    return floors


def compare_command(
    first: str = typer.Argument(
        ..., help="Baseline judge (file, name or version; with --replay a judge of the file)."
    ),
    second: str = typer.Argument(
        ..., help="Candidate judge (file, name or version; with --replay a judge of the file)."
    ),
    partition: str = typer.Option("test", help="Partition to compare on."),
    replay: Path | None = typer.Option(
        None,
        "--replay",
        dir_okay=False,
        help="Compare two judges recorded in this replay file (JSONL) instead of stored versions.",
    ),
    alpha: float | None = typer.Option(
        None, help="With --replay: report coverage at agreement >= 1-alpha (default 0.1)."
    ),
    delta: float | None = typer.Option(
        None, help="With --replay: allowed chance of missing the target (default 0.1)."
    ),
    seed: int = typer.Option(0, help="With --replay: seed of the bootstrap and the split."),
    fail_below: str = typer.Option(
        "", "--fail-below", help="Exit 1 when the candidate is below, e.g. agreement=0.8,kappa=0.6."
    ),
    fail_if_worse: bool = typer.Option(
        False, "--fail-if-worse", help="Exit 1 when the candidate is significantly worse."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Compare two judge versions on the same held-out sessions (a CI gate with --fail-*).

    With --replay FILE, compare two judges recorded in a replay file on the items both judged
    (items whose human labels have no strict majority are dropped).
    """
    if replay is not None:
        _compare_replay(
            replay,
            first,
            second,
            alpha=alpha,
            delta=delta,
            seed=seed,
            fail_below=fail_below,
            fail_if_worse=fail_if_worse,
            json_output=json_output,
        )
        return
    if alpha is not None or delta is not None:
        raise fail("--alpha/--delta apply to --replay; stored versions use their calibration")
    from judgeloop.calibration.calibrate import partition_ids
    from judgeloop.calibration.compare import compare_judges
    from judgeloop.calibration.report import interval_text

    try:
        floors = _parse_floor(fail_below)
        specs = [find_spec(reference)[1] for reference in (first, second)]
        engine = open_engine()
        for spec in specs:
            ids = partition_ids(engine, spec, partition)
            score(
                engine,
                spec,
                ids,
                actor=cli_actor(),
                judges_dir=get_settings().judges_dir,
                forbid_examples=partition != "derive",
            )
        result = compare_judges(engine, specs[0], specs[1], partition=partition)
    except (SpecError, NotFoundError, InvalidInputError, LeakError, ValueError) as error:
        raise fail(str(error)) from error
    if json_output:
        typer.echo(result.model_dump_json())
    else:
        table = _difference_table(
            result, f"{result.criterion}: {result.n} {partition} sessions judged by both"
        )
        table.add_row(
            "coverage at target",
            *(
                "-" if s.coverage is None else f"{s.coverage:.1%}"
                for s in (result.first, result.second)
            ),
            "",
        )
        table.add_row(
            "cost per session",
            f"${result.first.cost_per_session_usd:.5f}",
            f"${result.second.cost_per_session_usd:.5f}",
            "",
        )
        table.add_row(
            "latency per session",
            f"{result.first.latency_mean_ms:.0f} ms",
            f"{result.second.latency_mean_ms:.0f} ms",
            "",
        )
        console.print(table)
        console.print(
            f"McNemar's exact test: {result.mcnemar.only_first_correct} sessions only the first "
            f"got right, {result.mcnemar.only_second_correct} only the second; "
            f"p = {result.mcnemar.p_value:.4f}"
        )
        console.print(result.verdict, highlight=False)
    reasons = []
    measured = {
        "agreement": result.second.agreement.estimate,
        "kappa": result.second.cohen_kappa.estimate,
    }
    for name, floor in floors.items():
        value = measured[name]
        if value is None or value < floor:
            reasons.append(f"{result.second.judge} {name} {value} is below {floor}")
    difference = result.agreement_difference
    if fail_if_worse and difference.high is not None and difference.high < 0:
        reasons.append(
            f"{result.second.judge} agrees less than {result.first.judge} "
            f"(difference {interval_text(difference, True)})"
        )
    if reasons:
        raise fail("; ".join(reasons))


def _compare_replay(
    path: Path,
    first: str,
    second: str,
    *,
    alpha: float | None,
    delta: float | None,
    seed: int,
    fail_below: str,
    fail_if_worse: bool,
    json_output: bool,
) -> None:
    """`judgeloop compare --replay FILE A B`: two recorded judges, same gates as stored ones."""
    from judgeloop.calibration.replay_compare import compare_replay_file, gate_reasons

    try:
        floors = _parse_floor(fail_below)
        result = compare_replay_file(path, first, second, alpha=alpha, delta=delta, seed=seed)
    except ValueError as error:  # a ReplayError (names file:line), or alpha/delta out of range
        raise fail(str(error)) from None
    if json_output:
        typer.echo(result.model_dump_json())
    else:
        table = _difference_table(
            result, f"{path.name}: {result.n} items judged by both, against the human majority"
        )
        sides = (result.first, result.second)
        if result.alpha is not None and result.delta is not None:
            table.add_row(
                f"threshold λ (agreement >= {1 - result.alpha:g}, δ = {result.delta:g})",
                *(
                    "none: escalate all"
                    if s.coverage is None or s.coverage.lambda_ is None
                    else f"{s.coverage.lambda_:.3g}"
                    for s in sides
                ),
                "",
            )
            table.add_row(
                "coverage at target (test half)",
                *("-" if s.coverage is None else f"{s.coverage.coverage:.1%}" for s in sides),
                "",
            )
            table.add_row(
                "agreement when auto-decided",
                *(
                    "-"
                    if s.coverage is None or s.coverage.agreement is None
                    else f"{s.coverage.agreement:.1%}"
                    for s in sides
                ),
                "",
            )
        console.print(table)
        console.print(
            f"items in file: {result.n_items}; dropped: {result.n_tied} with a tied human "
            f"majority, {result.n_missing} without a verdict of both judges",
            highlight=False,
        )
        console.print(
            f"McNemar's exact test: {result.mcnemar.only_first_correct} items only "
            f"{result.first.judge} got right, {result.mcnemar.only_second_correct} only "
            f"{result.second.judge}; p = {result.mcnemar.p_value:.4f}",
            highlight=False,
        )
        console.print(result.verdict, highlight=False)
    reasons = gate_reasons(result, floors, fail_if_worse=fail_if_worse)
    if reasons:
        # Plain echo, not the console: a CI log gets the reason on one line, never wrapped.
        typer.echo(f"error: {'; '.join(reasons)}", err=True)
        raise typer.Exit(1)

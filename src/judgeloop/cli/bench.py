"""`judgeloop bench`: benchmarks on recorded judge outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from judgeloop.cli.common import console, error_console, fail

if TYPE_CHECKING:
    from judgeloop.calibration.replay import BenchResult

app = typer.Typer(help="Benchmarks on recorded judge outputs.", no_args_is_help=True)


def _parse_cascades(values: list[str]) -> list[list[str]]:
    cascades = []
    for value in values:
        tiers = [name.strip() for name in value.split(",") if name.strip()]
        if len(tiers) < 2:
            raise fail(f"--cascade {value!r}: name at least two judges, separated by commas")
        cascades.append(tiers)
    return cascades


def _table(result: BenchResult) -> Table:
    table = Table(
        "method",
        "success rate",
        "coverage",
        "agreement",
        title=(
            f"guarantee: agreement >= {1 - result.alpha:g} with probability >= "
            f"{1 - result.delta:g}; {result.splits} splits, {result.cal_size} calibration / "
            f"{result.n_items - result.cal_size} test items"
        ),
    )
    for row in result.results:
        holds = row.success_rate >= 1 - result.delta
        table.add_row(
            row.method,
            f"[{'green' if holds else 'red'}]{row.success_rate:.3f}[/]",
            f"{row.coverage:.3f}",
            "-" if row.agreement is None else f"{row.agreement:.3f}",
        )
    return table


@app.command("guarantee")
def guarantee_command(
    replay: Path = typer.Option(..., "--replay", help="Replay file (JSONL, one item a line)."),
    alpha: float = typer.Option(0.1, help="Target: agreement >= 1-alpha among auto-decided."),
    delta: float = typer.Option(0.1, help="Allowed probability that the target is missed."),
    cal_size: int = typer.Option(..., "--cal-size", help="Calibration items per split."),
    splits: int = typer.Option(300, help="Random calibration/test splits."),
    judge: list[str] = typer.Option(
        [], "--judge", help="Judge to include (repeatable; default: every judge)."
    ),
    cascade: list[str] = typer.Option(
        [], "--cascade", help="Cascade tiers, cheapest first, e.g. A,B,C (repeatable)."
    ),
    seed: int = typer.Option(0, help="Seed of the random splits."),
    min_count: int = typer.Option(30, help="Fewest calibration items a threshold may rest on."),
    fit_fraction: float = typer.Option(
        0.5, help="Share of calibration items that fit the learned confidence."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as one JSON line."),
) -> None:
    """How often each method's threshold keeps its guarantee on held-out items, and coverage."""
    from judgeloop.calibration.replay import load_replay, run_guarantee_benchmark

    cascades = _parse_cascades(cascade)
    try:
        data = load_replay(replay)
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=error_console,
            transient=True,
        ) as progress:
            task = progress.add_task("splits", total=splits)
            result = run_guarantee_benchmark(
                data,
                alpha=alpha,
                delta=delta,
                cal_size=cal_size,
                splits=splits,
                judges=judge or None,
                cascades=cascades,
                seed=seed,
                min_count=min_count,
                fit_fraction=fit_fraction,
                on_split=lambda: progress.advance(task),
            )
    except ValueError as error:  # a ReplayError, or alpha / delta out of range
        raise fail(str(error)) from None
    if as_json:
        summary = {
            "alpha": result.alpha,
            "delta": result.delta,
            "splits": result.splits,
            "results": [row.model_dump() for row in result.results],
        }
        typer.echo(json.dumps(summary))
        return
    console.print(_table(result))

"""`judgeloop derive`: write a judge file from SME annotations."""

from __future__ import annotations

from pathlib import Path

import typer

from judgeloop.cli.common import cli_actor, console, fail, open_engine
from judgeloop.judges.derive import DeriveOptions, derive_spec
from judgeloop.judges.runner import register_spec
from judgeloop.judges.spec import dump_spec
from judgeloop.judges.splits import parse_sizes
from judgeloop.sessions import ImportFailedError, import_labels
from judgeloop.store import InvalidInputError, NotFoundError


def derive_command(
    criterion: str = typer.Option(..., "--criterion", help="Criterion to derive a judge for."),
    out: Path = typer.Option(
        ..., "--out", help="Judge file to write, e.g. judges/resolved/v1.yaml."
    ),
    backend: str = typer.Option("classifier", help="classifier (offline), local, or litellm."),
    model: str | None = typer.Option(None, help="litellm model string, e.g. openai/gpt-4o-mini."),
    seed: int = typer.Option(0, help="Seed of the split and of the classifier."),
    sizes: str = typer.Option("0.4,0.3,0.3", help="Shares of derive,calibration,test."),
    examples: int = typer.Option(6, help="Few-shot examples to pick from the derive partition."),
    where: list[str] = typer.Option(
        [], "--where", help="Only sessions with this metadata, KEY=VALUE (repeatable)."
    ),
    labels: Path | None = typer.Option(
        None, "--labels", exists=True, help="Import these SME labels (JSONL) first."
    ),
) -> None:
    """Split labelled sessions (recorded), write rubric and few-shot examples, save the spec."""
    if backend not in ("classifier", "local", "litellm"):
        raise fail(f"--backend must be classifier, local or litellm, not {backend!r}")
    if backend == "litellm" and not model:
        raise fail("--backend litellm needs --model, e.g. openai/gpt-4o-mini")
    try:
        split_sizes = parse_sizes(sizes)
    except ValueError as error:
        raise fail(f"--sizes: {error}") from error
    pairs = [item.split("=", 1) for item in where]
    if any(len(pair) != 2 for pair in pairs):
        raise fail(f"--where takes KEY=VALUE, got {where}")
    engine = open_engine()
    if labels is not None:
        try:
            import_labels(engine, labels, actor=cli_actor())
        except ImportFailedError as error:
            raise fail(str(error)) from error
    options = DeriveOptions(
        criterion=criterion,
        name=out.stem if out.stem.startswith(criterion) else f"{criterion}-{out.stem}",
        backend=backend,  # type: ignore[arg-type]
        model=model,
        seed=seed,
        sizes=tuple(split_sizes.items()),
        examples=examples,
        where=tuple((key, value) for key, value in pairs),
    )
    try:
        result = derive_spec(engine, options, actor=cli_actor())
    except (NotFoundError, InvalidInputError, ValueError) as error:
        raise fail(str(error)) from error
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_spec(result.spec), encoding="utf-8")
    register_spec(engine, result.spec, actor=cli_actor())
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.partition_counts.items()))
    console.print(
        f"wrote {out}: judge {result.spec.name!r} version [bold]{result.spec.version}[/] "
        f"({backend}, {len(result.spec.examples)} examples); partitions: {counts}"
    )

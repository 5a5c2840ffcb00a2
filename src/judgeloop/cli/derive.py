"""`judgeloop derive`: write a judge file from SME annotations."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import Engine

from judgeloop.cli.common import cli_actor, console, fail, open_engine
from judgeloop.judges.backends import build_backend
from judgeloop.judges.derive import DeriveOptions, derive_spec
from judgeloop.judges.loading import resolve_examples
from judgeloop.judges.optimize import OptimizationRound, optimize_rubric
from judgeloop.judges.outcome import ResolvedExample
from judgeloop.judges.runner import register_spec
from judgeloop.judges.spec import JudgeSpec, dump_spec
from judgeloop.judges.splits import parse_sizes
from judgeloop.sessions import ImportFailedError, import_labels
from judgeloop.store import InvalidInputError, NotFoundError, db_session


def derive_command(
    criterion: str = typer.Option(..., "--criterion", help="Criterion to derive a judge for."),
    out: Path = typer.Option(
        ..., "--out", help="Judge file to write, e.g. judges/resolved/v1.yaml."
    ),
    backend: str = typer.Option("classifier", help="classifier (offline), local, or litellm."),
    model: str | None = typer.Option(None, help="litellm model string, e.g. openai/gpt-4o-mini."),
    api_base: str | None = typer.Option(
        None, "--api-base", help="OpenAI-compatible endpoint for the litellm model."
    ),
    seed: int = typer.Option(0, help="Seed of the split and of the classifier."),
    sizes: str = typer.Option("0.4,0.3,0.3", help="Shares of derive,calibration,test."),
    examples: int = typer.Option(6, help="Few-shot examples to pick from the derive partition."),
    where: list[str] = typer.Option(
        [], "--where", help="Only sessions with this metadata, KEY=VALUE (repeatable)."
    ),
    optimize: bool = typer.Option(
        False, "--optimize", help="With an LLM backend: revise the rubric on derive mistakes."
    ),
    rounds: int = typer.Option(3, min=1, max=10, help="Most optimisation rounds."),
    labels: Path | None = typer.Option(
        None, "--labels", exists=True, help="Import these SME labels (JSONL) first."
    ),
) -> None:
    """Split labelled sessions (recorded), write rubric and few-shot examples, save the spec."""
    if backend not in ("classifier", "local", "litellm"):
        raise fail(f"--backend must be classifier, local or litellm, not {backend!r}")
    if optimize and backend == "classifier":
        raise fail("--optimize needs an LLM judge: --backend litellm --model M (or local)")
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
    spec = result.spec
    if api_base:
        spec = spec.model_copy(update={"api_base": api_base})
    if optimize:
        spec = _optimize(
            engine, spec, result.evaluation, rounds, out.with_suffix(".optimize.jsonl")
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_spec(spec), encoding="utf-8")
    register_spec(engine, spec, actor=cli_actor())
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.partition_counts.items()))
    console.print(
        f"wrote {out}: judge {spec.name!r} version [bold]{spec.version}[/] "
        f"({backend}, {len(spec.examples)} examples); partitions: {counts}"
    )


def _optimize(
    engine: Engine, spec: JudgeSpec, evaluation: list[ResolvedExample], rounds: int, log_path: Path
) -> JudgeSpec:
    """Run the rubric optimisation rounds, logging each to the console and to ``log_path``."""
    with db_session(engine) as db:
        examples = resolve_examples(db, spec.examples)
    log_path.parent.mkdir(parents=True, exist_ok=True)

    def make_backend(candidate: JudgeSpec) -> Any:
        return build_backend(candidate, examples, [])

    def log(entry: OptimizationRound) -> None:
        verdict = "kept" if entry.kept else "discarded"
        console.print(
            f"  round {entry.round}: derive agreement {entry.agreement_before:.3f} -> "
            f"{entry.agreement_after:.3f} ({entry.mistakes} mistakes shown), {verdict}"
        )
        with log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry.as_dict()) + "\n")

    best, history = asyncio.run(
        optimize_rubric(spec, evaluation, make_backend, rounds=rounds, log=log)
    )
    derivation = best.derivation.model_copy(  # type: ignore[union-attr]
        update={"optimization": [entry.as_dict() for entry in history]}
    )
    return best.model_copy(update={"derivation": derivation})

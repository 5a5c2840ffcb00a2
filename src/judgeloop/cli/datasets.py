"""`judgeloop import dataset`: public human-labelled judge datasets into the store and a replay."""

from __future__ import annotations

from pathlib import Path

import typer

from judgeloop.cli.common import cli_actor, console, fail, open_engine, progress_bar
from judgeloop.sessions.public import (
    FORMATS,
    Converted,
    DatasetError,
    StoreReport,
    store_converted,
    write_replay,
)
from judgeloop.store import InvalidInputError


def _store_with_progress(converted: Converted) -> StoreReport:
    engine = open_engine()
    total = len(converted.sessions) + len(converted.labels)
    with progress_bar(f"{converted.source}: sessions and labels", total) as advance:
        return store_converted(engine, converted, actor=cli_actor(), on_progress=advance)


def _describe(converted: Converted) -> None:
    per_item = ", ".join(
        f"{annotators} ({items} items)"
        for annotators, items in sorted(converted.annotators_per_item().items())
    )
    criteria = ", ".join(c.name for c in converted.criteria)
    console.print(
        f"{converted.source}: {len(converted.sessions)} items, {len(converted.labels)} labels "
        f"(annotators per item: {per_item}); criteria: {criteria}",
        highlight=False,
    )
    if not converted.judges:
        console.print("replay: no judge outputs recorded", highlight=False)
        return
    unparseable = sum(len(ids) for ids in converted.unparseable.values())
    omitted = sum(len(ids) for ids in converted.omitted.values())
    console.print(
        f"replay: {len(converted.replay)} rows, {len(converted.judges)} judges; "
        f"{unparseable} unparseable verdicts, {omitted} judge entries left out",
        highlight=False,
    )
    for judge in converted.judges:
        judged = sum(judge in row["judges"] for row in converted.replay)
        console.print(
            f"  {judge}: {judged} items, {len(converted.unparseable.get(judge, []))} unparseable",
            highlight=False,
        )


def import_dataset_command(
    dataset_format: str = typer.Option(
        ..., "--format", "-f", help=f"Dataset format: {', '.join(FORMATS)}."
    ),
    path: Path | None = typer.Argument(
        None,
        exists=True,
        help="Dataset folder or file (default: its folder in $JUDGELOOP_PUBLIC_DATA_DIR, "
        "else ../shared/datasets).",
    ),
    replay_out: Path | None = typer.Option(
        None, "--replay-out", dir_okay=False, help="Write the replay rows (JSONL) here."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Import only the first N items."),
    skip_store: bool = typer.Option(
        False, "--skip-store", help="Convert (and write --replay-out) without touching the store."
    ),
) -> None:
    """Import a public human-labelled judge dataset: criteria, sessions, labels and a replay."""
    converter = FORMATS.get(dataset_format)
    if converter is None:
        raise fail(f"unknown --format {dataset_format!r}; known: {', '.join(FORMATS)}")
    try:
        converted = converter(path).limited(limit)
    except DatasetError as error:
        raise fail(str(error)) from error
    _describe(converted)
    if not skip_store:
        try:
            report = _store_with_progress(converted)
        except InvalidInputError as error:
            raise fail(f"{converted.source}: {error}") from error
        console.print(
            f"stored: {report.sessions_created} sessions new, {report.sessions_existing} already "
            f"stored; {report.labels_created} labels new, {report.labels_existing} already "
            f"stored; {report.criteria_created} criteria new, {report.criteria_existing} "
            "already stored",
            highlight=False,
        )
    if replay_out is not None:
        written = write_replay(replay_out, converted.replay)
        console.print(f"replay: {written} rows written to {replay_out}", highlight=False)

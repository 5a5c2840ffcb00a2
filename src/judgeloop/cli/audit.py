"""`judgeloop audit`: read the append-only audit trail."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import typer

from judgeloop.cli.common import console, open_engine

app = typer.Typer(help="The audit trail: who did what, when.", no_args_is_help=True)


def parse_instant(value: str | None) -> datetime | None:
    """An ISO 8601 date or date-time as an aware UTC datetime; naive times are taken as UTC.

    Raises:
        typer.BadParameter: naming the value and the forms accepted.
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date or time "
            "(e.g. 2026-11-23, 2026-11-23T14:00, 2026-11-23T14:00:00+01:00)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _write_events(
    out: TextIO, since: datetime | None, until: datetime | None, action: str | None
) -> int:
    from judgeloop.store import db_session
    from judgeloop.store.audit import EventFilter, iter_events

    count = 0
    with db_session(open_engine()) as db:
        for event in iter_events(db, EventFilter(since=since, until=until, action=action)):
            out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count


@app.command("export")
def export_command(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="JSONL file to write (default: standard output)."
    ),
    since: str | None = typer.Option(
        None, help="Only events at or after this ISO 8601 date/time (UTC unless it says)."
    ),
    until: str | None = typer.Option(
        None, help="Only events before this ISO 8601 date/time (UTC unless it says)."
    ),
    action: str | None = typer.Option(
        None, help="Only this action (e.g. key.revoke); a trailing * matches a prefix (gate.*)."
    ),
) -> None:
    """Write audit events as JSONL, oldest first: id, at, actor, action, target, detail.

    Events stream from the database, so the trail may be longer than memory.
    """
    try:
        start = parse_instant(since)
    except typer.BadParameter as error:
        raise typer.BadParameter(str(error), param_hint="--since") from None
    try:
        end = parse_instant(until)
    except typer.BadParameter as error:
        raise typer.BadParameter(str(error), param_hint="--until") from None
    if start is not None and end is not None and end <= start:
        raise typer.BadParameter(f"{until!r} is not after --since {since!r}", param_hint="--until")
    if output is None:
        _write_events(sys.stdout, start, end, action)
        return
    with output.open("w", encoding="utf-8") as out:
        count = _write_events(out, start, end, action)
    console.print(f"wrote {count} events to {output}", highlight=False)

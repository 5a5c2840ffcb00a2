"""`judgeloop gates list/show` and `judgeloop export rejected-gates`."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.table import Table

from judgeloop.cli.common import console, error_console, fail, open_engine
from judgeloop.cli.feedback import export_app
from judgeloop.store import NotFoundError, db_session, gate_public, get_gate, list_gates
from judgeloop.store import rejected_gates as load_rejected_gates

app = typer.Typer(help="Approval gates of agents' actions.", no_args_is_help=True)

GATE_STATUSES = ("approved", "pending", "rejected", "modified", "expired")


@app.command("list")
def list_command(
    status: str | None = typer.Option(
        None, "--status", help=f"Only gates of this status: {', '.join(GATE_STATUSES)}."
    ),
    tier: str | None = typer.Option(None, "--tier", help="Only this tier: green, yellow, red."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
) -> None:
    """Gates, newest first."""
    if status is not None and status not in GATE_STATUSES:
        raise fail(f"unknown status {status!r}; one of {', '.join(GATE_STATUSES)}")
    with db_session(open_engine()) as db:
        gates = list_gates(db, status=status, tier=tier, limit=limit)
    table = Table("id", "created", "action", "tier", "status", "reason")
    for gate in gates:
        table.add_row(
            str(gate.id),
            gate.created_at.isoformat(timespec="seconds"),
            gate.action_name,
            gate.tier,
            gate.status,
            gate.reason or "",
        )
    console.print(table)


@app.command("show")
def show_command(gate_id: int = typer.Argument(..., help="The gate's id.")) -> None:
    """One gate as JSON: action, arguments, the agent's state, outcome."""
    try:
        with db_session(open_engine()) as db:
            view = gate_public(db, get_gate(db, gate_id))
    except NotFoundError as error:
        raise fail(str(error)) from error
    console.print_json(view.model_dump_json())


def export_rejected_gates_command(
    out: Path | None = typer.Option(
        None, "--out", dir_okay=False, help="Output file (default: stdout)."
    ),
) -> None:
    """Rejected and expired actions with their reasons, as JSONL evaluation cases."""
    with db_session(open_engine()) as db:
        cases = load_rejected_gates(db)
    try:
        with ExitStack() as stack:
            handle = (
                stack.enter_context(out.open("w", encoding="utf-8"))
                if out is not None
                else sys.stdout
            )
            for case in cases:
                handle.write(json.dumps(case.model_dump(mode="json"), ensure_ascii=False) + "\n")
    except OSError as error:
        raise fail(str(error)) from error
    error_console.print(
        f"{len(cases)} rejected gates written{f' to {out}' if out else ''}", highlight=False
    )


def register(root: typer.Typer) -> None:
    """Add `gates` and `export rejected-gates` to the `judgeloop` app."""
    root.add_typer(app, name="gates")
    export_app.command("rejected-gates")(export_rejected_gates_command)

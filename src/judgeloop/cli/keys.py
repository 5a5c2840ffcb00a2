"""`judgeloop keys`: create, list and revoke API keys."""

import typer
from rich.table import Table

from judgeloop.cli.common import cli_actor, console, fail, open_engine
from judgeloop.models import API_ROLES
from judgeloop.store import (
    InvalidInputError,
    NotFoundError,
    create_key,
    db_session,
    list_keys,
    revoke_key,
)

app = typer.Typer(help="API keys and their roles.", no_args_is_help=True)


@app.command("create")
def create_command(
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(API_ROLES)}."),
    name: str = typer.Option(..., "--name", help="Who or what uses the key."),
    senior: bool = typer.Option(
        False, "--senior", help="A senior reviewer: adjudicates and takes overdue items."
    ),
) -> None:
    """Create a key and print it once: it is stored only as a hash."""
    with db_session(open_engine()) as db:
        try:
            row, plaintext = create_key(db, role=role, name=name, actor=cli_actor(), senior=senior)
        except InvalidInputError as error:
            raise fail(str(error)) from error
    kind = f"senior {row.role}" if row.senior else row.role
    console.print(
        f"created key {row.id} ({kind}, {row.name!r}); store it now, it is not shown again:",
        highlight=False,
    )
    print(plaintext)  # noqa: T201  (plain stdout so scripts can capture the key)


@app.command("list")
def list_command() -> None:
    """List keys (never their secrets)."""
    with db_session(open_engine()) as db:
        rows = list_keys(db)
    table = Table("id", "name", "role", "prefix", "created", "revoked")
    for row in rows:
        table.add_row(
            str(row.id),
            row.name,
            row.role,
            row.prefix,
            row.created_at.isoformat(timespec="seconds"),
            row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "",
        )
    console.print(table)


@app.command("revoke")
def revoke_command(
    key_id: int = typer.Argument(..., help="Key id, from `judgeloop keys list`."),
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    with db_session(open_engine()) as db:
        try:
            row = revoke_key(db, key_id, actor=cli_actor())
        except NotFoundError as error:
            raise fail(str(error)) from error
    console.print(f"revoked key {row.id} ({row.name!r})")

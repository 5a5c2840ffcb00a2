"""`judgeloop db`: schema migrations."""

import typer

from judgeloop.cli.common import console, open_engine
from judgeloop.store import current_revision, upgrade

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(
    revision: str = typer.Argument("head", help="Revision to migrate to."),
) -> None:
    """Create or migrate the database schema (JUDGELOOP_DATABASE_URL) to the newest revision."""
    engine = open_engine()
    upgrade(engine, revision)
    revision_now = current_revision(engine)
    console.print(f"database at revision [bold]{revision_now}[/] ({engine.url.render_as_string()})")


@app.command("current")
def current_command() -> None:
    """Print the schema revision of the database."""
    console.print(current_revision(open_engine()) or "no schema yet: run `judgeloop db upgrade`")

"""`judgeloop schema`: print or write the JSON Schemas of the file and API formats."""

from pathlib import Path

import typer

from judgeloop.sessions.schemas import FORMAT_MODELS, json_schema_text


def schema_command(
    name: str = typer.Argument(None, help=f"One of: {', '.join(FORMAT_MODELS)}; all when omitted."),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Write NAME.schema.json files here instead of printing."
    ),
) -> None:
    """Print the JSON Schema of the session, label or criterion format."""
    names = [name] if name else list(FORMAT_MODELS)
    for each in names:
        if each not in FORMAT_MODELS:
            raise typer.BadParameter(f"unknown format {each!r}; one of {', '.join(FORMAT_MODELS)}")
        text = json_schema_text(each)
        if out_dir is None:
            typer.echo(text, nl=False)
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{each}.schema.json").write_text(text, encoding="utf-8")
            typer.echo(f"wrote {out_dir / f'{each}.schema.json'}")

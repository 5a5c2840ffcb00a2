"""The `judgeloop` command line: one module per command group."""

import os

import typer

from judgeloop.cli import audit, bench, db, feedback, gates, imports, judges, keys
from judgeloop.cli.calibrate import calibrate_command, compare_command
from judgeloop.cli.datasets import import_dataset_command
from judgeloop.cli.demo import demo_command
from judgeloop.cli.derive import derive_command
from judgeloop.cli.formats import schema_command
from judgeloop.cli.score import score_command
from judgeloop.cli.serve import serve_command
from judgeloop.cli.worker import worker_command

app = typer.Typer(
    name="judgeloop",
    help="LLM-as-judge calibration with human escalation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
imports.app.command("dataset")(import_dataset_command)
app.add_typer(imports.app, name="import")
app.add_typer(keys.app, name="keys")
app.add_typer(judges.app, name="judges")
app.add_typer(bench.app, name="bench")
app.add_typer(audit.app, name="audit")
app.command("derive")(derive_command)
app.command("score")(score_command)
app.command("calibrate")(calibrate_command)
app.command("compare")(compare_command)
app.command("serve")(serve_command)
app.command("worker")(worker_command)
app.command("demo")(demo_command)
app.command("schema")(schema_command)
feedback.register(app)
gates.register(app)


def main() -> None:
    """Entry point of the `judgeloop` console script."""
    # litellm fetches its price map over the network at import unless told otherwise.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    app()

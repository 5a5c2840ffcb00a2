"""`judgeloop worker`: score pending sessions in a process of its own."""

from __future__ import annotations

import time

import typer

from judgeloop.cli.common import console, open_engine
from judgeloop.config import get_settings


def worker_command(
    once: bool = typer.Option(False, "--once", help="Process what is pending, then exit."),
    batch_size: int = typer.Option(32, min=1, help="Sessions taken per batch."),
) -> None:
    """Score pending sessions with the active judges and escalate per the policy.

    Run several on PostgreSQL to share the work; `judgeloop serve` runs one in-process unless
    JUDGELOOP_WORKER=false.
    """
    from judgeloop.pipeline.build import build_worker
    from judgeloop.store import db_session
    from judgeloop.store.decisions import count_pending

    settings = get_settings()
    engine = open_engine()
    worker = build_worker(settings, engine, actor="worker")
    worker.batch_size = batch_size
    if once:
        with db_session(engine) as db:
            pending = count_pending(db)
        console.print(f"{pending} sessions pending", highlight=False)
        done = worker.drain()
        console.print(f"processed {done} sessions", highlight=False)
        return
    console.print(
        f"worker polling every {settings.worker_poll_seconds:g} s; Ctrl+C to stop", highlight=False
    )
    try:
        while True:
            if not worker.run_once():
                time.sleep(settings.worker_poll_seconds)
    except KeyboardInterrupt:
        console.print("stopped")

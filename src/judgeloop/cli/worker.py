"""`judgeloop worker`: score pending sessions in a process of its own."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import typer

from judgeloop.cli.common import console, open_engine
from judgeloop.config import get_settings

log = logging.getLogger(__name__)
RESTART_PAUSE_S = 2.0


def worker_command(
    once: bool = typer.Option(False, "--once", help="Process what is pending, then exit."),
    batch_size: int = typer.Option(
        32,
        min=1,
        help="Sessions taken per batch (SQLite; on PostgreSQL: JUDGELOOP_WORKER_JOB_SIZE).",
    ),
    concurrency: int | None = typer.Option(
        None, min=1, help="Jobs run at once (PostgreSQL; default JUDGELOOP_WORKER_CONCURRENCY)."
    ),
) -> None:
    """Score pending sessions with the active judges and escalate per the policy.

    On PostgreSQL, run any number of these, on any machines: they share the scoring jobs that
    accepting sessions defers (procrastinate), and a worker that dies (even kill -9) has its
    jobs finished by the others after JUDGELOOP_WORKER_STALLED_SECONDS. SIGTERM or Ctrl+C
    finishes the running jobs, then exits. On SQLite, run one (or none: `judgeloop serve`
    runs one in-process unless JUDGELOOP_WORKER=false).
    """
    from dataclasses import replace

    from judgeloop.pipeline.build import build_worker
    from judgeloop.pipeline.jobs import run_jobs
    from judgeloop.store import db_session
    from judgeloop.store.decisions import count_pending

    # Operators read a worker's log: what it retried and swept, and warnings (procrastinate
    # warns of failed jobs); not a line per job or per LLM call.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("judgeloop").setLevel(logging.INFO)
    settings = get_settings()
    engine = open_engine()
    worker = build_worker(settings, engine, actor="worker")
    worker.batch_size = batch_size
    with db_session(engine) as db:
        pending = count_pending(db)
    if worker.jobs is not None:
        jobs = worker.jobs if concurrency is None else replace(worker.jobs, concurrency=concurrency)
        if once:
            console.print(f"{pending} sessions pending", highlight=False)
        else:
            console.print(
                f"worker running up to {jobs.concurrency} scoring jobs at once "
                f"({pending} sessions pending); Ctrl+C to stop",
                highlight=False,
            )
        _run_until_stopped(lambda: asyncio.run(run_jobs(worker, jobs, wait=not once)), once)
        with db_session(engine) as db:
            console.print(f"{count_pending(db)} sessions pending", highlight=False)
        return
    if once:
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


def _run_until_stopped(run: Callable[[], None], once: bool) -> None:
    """Run the job worker; after a failure (database away, a false death verdict) start anew.

    A clean return means it was asked to stop (SIGTERM, Ctrl+C) or, with ``once``, is done.
    """
    while True:
        try:
            run()
            return
        except Exception:
            if once:
                raise
            log.exception("job worker failed; starting again in %g s", RESTART_PAUSE_S)
            time.sleep(RESTART_PAUSE_S)

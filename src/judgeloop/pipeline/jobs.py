"""Scoring jobs on PostgreSQL: procrastinate carries them to any number of worker processes.

Accepting sessions defers one job per chunk of new sessions (``store.jobs.defer_scoring``).
Every `judgeloop worker` (and `judgeloop serve` with JUDGELOOP_WORKER=true) runs procrastinate's
worker on the scoring queue, with a heartbeat, plus a maintenance loop that

- gives the jobs of a worker whose heartbeat stopped (killed, machine lost) back to the queue,
  where another worker takes them, and
- defers jobs for sessions left pending without one (the accepting process died between its
  commit and the deferral; or no judge was active when their job ran).

A job may therefore run twice; judging is idempotent by unique constraints
(``pipeline.process``), so a repeated job changes nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine

from judgeloop.config import Settings
from judgeloop.store.jobs import SCORE_QUEUE, SCORE_TASK, sweep_unscheduled

if TYPE_CHECKING:
    import procrastinate

    from judgeloop.pipeline.worker import Worker

log = logging.getLogger(__name__)
T = TypeVar("T")

# A failing job (e.g. the database restarting) is tried again this often before it is failed;
# the sweep then defers its sessions anew.
JOB_ATTEMPTS = 5


@dataclass(frozen=True)
class JobOptions:
    """How scoring jobs are cut and run (see the ``worker_*`` Settings)."""

    concurrency: int = 4
    job_size: int = 32
    stalled_seconds: float = 30.0
    sweep_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> JobOptions:
        """The options that ``settings`` configure."""
        return cls(
            concurrency=settings.worker_concurrency,
            job_size=settings.worker_job_size,
            stalled_seconds=settings.worker_stalled_seconds,
            sweep_seconds=settings.worker_sweep_seconds,
        )

    @property
    def heartbeat_seconds(self) -> float:
        """Several heartbeats per stall period, so one late heartbeat is not taken for death."""
        return self.stalled_seconds / 4


def uses_jobs(engine: Engine) -> bool:
    """Whether scoring goes through jobs: on PostgreSQL; SQLite keeps one in-process worker."""
    return engine.dialect.name == "postgresql"


def libpq_url(engine: Engine) -> str:
    """``engine``'s database as a libpq connection URL (no SQLAlchemy driver suffix)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class PipelineLoop:
    """An event loop in a thread of its own, where every job's pipeline runs.

    The pipeline does blocking work (database calls, classifier and clustering CPU, the first
    import of litellm), which must not stall procrastinate's loop: a worker whose heartbeat
    stops looks dead to the others, which then give its jobs away. One loop for all jobs,
    not one per job, because litellm keeps per-loop state.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="judgeloop-pipeline", daemon=True
        )

    def __enter__(self) -> PipelineLoop:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` in the pipeline loop; cancelling this cancels it there too."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))


def job_app(worker: Worker, options: JobOptions, pipeline: PipelineLoop) -> procrastinate.App:
    """A procrastinate app whose scoring task runs ``worker`` on a job's sessions."""
    from procrastinate import App, PsycopgConnector, RetryStrategy

    connector = PsycopgConnector(
        conninfo=libpq_url(worker.engine), min_size=1, max_size=options.concurrency + 3
    )
    app = App(connector=connector)

    @app.task(
        name=SCORE_TASK,
        queue=SCORE_QUEUE,
        retry=RetryStrategy(max_attempts=JOB_ATTEMPTS, exponential_wait=2),
    )
    async def score_sessions(session_ids: list[int]) -> None:
        await pipeline.run(worker.score_job(session_ids))

    return app


async def run_jobs(
    worker: Worker,
    options: JobOptions,
    *,
    wait: bool = True,
    signals: bool = True,
) -> None:
    """Run scoring jobs until stopped; SIGINT/SIGTERM stop it after the running jobs.

    ``signals=False`` leaves signals alone (a worker in a thread: cancel it instead).
    Without ``wait``, defer jobs for every pending session without one, run the jobs there
    are, and return (``judgeloop worker --once``).
    """
    with PipelineLoop() as pipeline:
        await _run_worker(job_app(worker, options, pipeline), worker, options, wait, signals)


async def _run_worker(
    app: procrastinate.App, worker: Worker, options: JobOptions, wait: bool, signals: bool
) -> None:
    async with app.open_async():
        maintenance = None
        if wait:
            maintenance = asyncio.create_task(maintain(app, worker, options))
        else:
            await asyncio.to_thread(_sweep, worker, options, timedelta(0))
        try:
            await app.run_worker_async(
                queues=[SCORE_QUEUE],
                name=f"judgeloop-{socket.gethostname()}-{os.getpid()}",
                concurrency=options.concurrency,
                wait=wait,
                update_heartbeat_interval=options.heartbeat_seconds,
                stalled_worker_timeout=options.stalled_seconds,
                delete_jobs="successful",
                install_signal_handlers=signals,
            )
        finally:
            if maintenance is not None:
                maintenance.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await maintenance


async def maintain(app: procrastinate.App, worker: Worker, options: JobOptions) -> None:
    """Every ``sweep_seconds``: retry dead workers' jobs, defer jobs for unscheduled sessions."""
    while True:
        try:
            retried = await retry_stalled_jobs(app, options.stalled_seconds)
            # A session pending without a job this long was abandoned (its server died before
            # deferring, or a ?wait=true request that scores it in-process died with it).
            swept = await asyncio.to_thread(
                _sweep, worker, options, timedelta(seconds=options.stalled_seconds)
            )
            if retried or swept:
                log.info(
                    "retried %d stalled jobs; deferred %d unscheduled sessions", retried, swept
                )
        except Exception:  # noqa: BLE001 (maintenance must outlive a database hiccup)
            log.exception("job maintenance failed; trying again later")
        await asyncio.sleep(options.sweep_seconds)


async def retry_stalled_jobs(app: procrastinate.App, stalled_seconds: float) -> int:
    """Put the scoring jobs of workers silent for ``stalled_seconds`` back in the queue."""
    from procrastinate.exceptions import ConnectorException

    stalled = await app.job_manager.get_stalled_jobs(
        queue=SCORE_QUEUE, seconds_since_heartbeat=stalled_seconds
    )
    retried = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except ConnectorException:
            continue  # another worker's maintenance retried it first
        retried += 1
    return retried


def _sweep(worker: Worker, options: JobOptions, older_than: timedelta) -> int:
    if not worker.contexts():
        return 0  # with no active judge the sessions wait; a job now would change nothing
    return sweep_unscheduled(worker.engine, older_than=older_than, job_size=options.job_size)

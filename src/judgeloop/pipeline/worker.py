"""The scoring worker: runs the pipeline on pending sessions and marks them done.

In-process (a thread started by `judgeloop serve`) or as its own process (`judgeloop worker`).

- PostgreSQL: accepted sessions become procrastinate jobs (``Worker.enqueue``), which any
  number of worker processes on any machines take (``pipeline.jobs``); a killed worker's jobs
  go to another one.
- SQLite (one machine): the worker polls for pending sessions (``run_once``); a second worker
  would only repeat idempotent work.

``drain`` (also `judgeloop demo` and tests) processes everything pending directly, on
PostgreSQL taking batches with ``FOR NO KEY UPDATE SKIP LOCKED`` so that drains running at once
share the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import Engine

from judgeloop.escalation import EscalationPolicy
from judgeloop.pipeline.context import (
    CriterionContext,
    latest_calibration_id,
    load_context,
    load_contexts,
    signature,
)
from judgeloop.pipeline.jobs import JobOptions, run_jobs
from judgeloop.pipeline.process import BatchReport, PipelineOptions, process_sessions
from judgeloop.store import db_session, get_judge_version
from judgeloop.store.audit import record_rules_in_effect
from judgeloop.store.decisions import DONE, mark_sessions, pending_session_ids
from judgeloop.store.jobs import defer_scoring

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """Scores pending sessions with the active judges; reloads them when they change."""

    engine: Engine
    policy: EscalationPolicy
    judges_dir: Path | None = None
    policy_path: Path | None = None
    batch_size: int = 32
    options: PipelineOptions = field(default_factory=PipelineOptions)
    jobs: JobOptions | None = None
    """Set (on PostgreSQL) when scoring goes through procrastinate jobs."""
    _contexts: list[CriterionContext] = field(default_factory=list, init=False)
    _signature: tuple[tuple[str, int | None], ...] | None = field(default=None, init=False)
    _load_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _policy_recorded: bool = field(default=False, init=False)
    _by_version: dict[tuple[str, int | None], CriterionContext] = field(
        default_factory=dict, init=False
    )

    def contexts(self) -> list[CriterionContext]:
        """The current contexts, reloaded when an active version or calibration changed."""
        with self._load_lock:
            with db_session(self.engine) as db:
                current = signature(db)
            if current != self._signature:
                self._record_policy()
                self._contexts = load_contexts(self.engine, self.policy, judges_dir=self.judges_dir)
                self._signature = current
            return self._contexts

    def _record_policy(self) -> None:
        # Once per worker (its policy is fixed for its life): the audit trail shows which
        # policy was applied from when, and records nothing when it did not change.
        if self._policy_recorded:
            return
        with db_session(self.engine) as db:
            record_rules_in_effect(
                db,
                actor=self.options.actor,
                kind="escalation_policy",
                path=self.policy_path,
                rules=self.policy.model_dump(mode="json"),
            )
        self._policy_recorded = True

    def context_for(self, version: str) -> CriterionContext:
        """The context of any registered version (active or not), cached per calibration."""
        for context in self.contexts():
            if context.spec.version == version:
                return context
        with self._load_lock, db_session(self.engine) as db:
            row = get_judge_version(db, version)
            newest = latest_calibration_id(db, version)
            key = (version, newest)
            if key not in self._by_version:
                self._by_version[key] = load_context(
                    self.engine, row, self.policy, judges_dir=self.judges_dir
                )
            return self._by_version[key]

    def process(
        self, session_ids: Sequence[int], contexts: Sequence[CriterionContext] | None = None
    ) -> BatchReport:
        """Run the pipeline on ``session_ids`` now (for ``?wait=true`` and /v1/judge).

        With every active judge (the default) the sessions are marked done; with chosen
        ``contexts`` their pipeline status is left as it was.
        """
        options = self.options
        if contexts is not None:
            options = replace(options, mark_done=False)
        chosen = self.contexts() if contexts is None else contexts
        return asyncio.run(process_sessions(self.engine, chosen, session_ids, options))

    def enqueue(self, session_ids: Sequence[int]) -> None:
        """See that newly accepted sessions get scored: with jobs, defer them now.

        Without jobs the polling loop finds pending sessions by itself.
        """
        if self.jobs is not None and session_ids:
            defer_scoring(self.engine, session_ids, job_size=self.jobs.job_size)

    async def score_job(self, session_ids: Sequence[int]) -> int:
        """One job's work: score ``session_ids`` with every active judge and mark them done.

        With no active judge nothing happens: the sessions stay pending for a later job.
        """
        contexts = self.contexts()
        if not contexts:
            return 0
        report = await process_sessions(self.engine, contexts, session_ids, self.options)
        return report.sessions

    def run_once(self) -> int:
        """Take one batch of pending sessions and process it; return how many there were."""
        if self.engine.dialect.name != "postgresql":
            # SQLite: reading opens a write transaction (BEGIN IMMEDIATE), so the batch is
            # read and the session closed before processing writes from other sessions.
            with db_session(self.engine) as db:
                ids = pending_session_ids(db, self.batch_size)
            if not ids or not self.contexts():
                return 0  # with no active judge, sessions wait for one
            self.process(ids)
            return len(ids)
        with db_session(self.engine) as claim:
            ids = pending_session_ids(claim, self.batch_size, lock=True)
            if not ids or not self.contexts():
                return 0
            options = replace(self.options, mark_done=False)
            asyncio.run(process_sessions(self.engine, self.contexts(), ids, options))
            # Marked in the claiming transaction: its row locks end exactly when they are done.
            mark_sessions(claim, ids, DONE)
            claim.commit()
        return len(ids)

    def drain(self) -> int:
        """Process until nothing is pending; return how many sessions were processed."""
        total = 0
        while count := self.run_once():
            total += count
        return total


class WorkerThread(threading.Thread):
    """Runs a Worker in the background until stopped: its jobs if it has them, else polling."""

    def __init__(self, worker: Worker, *, poll_seconds: float = 0.5) -> None:
        super().__init__(name="judgeloop-worker", daemon=True)
        self.worker = worker
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def run(self) -> None:
        """Loop: a batch when there is one, else wait; errors are logged, never fatal."""
        if self.worker.jobs is not None:
            self._run_jobs(self.worker.jobs)
            return
        while not self.stopping.is_set():
            try:
                busy = self.worker.run_once()
            except Exception:  # noqa: BLE001 (a bad batch must not stop the service)
                log.exception("scoring batch failed; retrying after a pause")
                busy = 0
            if not busy:
                self.stopping.wait(self.poll_seconds)

    def _run_jobs(self, options: JobOptions) -> None:
        async def jobs() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            if not self.stopping.is_set():  # a stop that came before the task existed
                await run_jobs(self.worker, options, signals=False)

        while not self.stopping.is_set():
            try:
                asyncio.run(jobs())
            except asyncio.CancelledError:
                return  # stop(): the running jobs were finished first
            except Exception:  # noqa: BLE001 (e.g. the database away: retry, never die)
                log.exception("job worker failed; restarting after a pause")
                self.stopping.wait(self.poll_seconds)

    def stop(self, timeout: float = 30) -> None:
        """Ask the loop to finish its batch (or running jobs) and wait for it."""
        self.stopping.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            # Cancelling run_worker_async is procrastinate's way to stop a worker gracefully.
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
        self.join(timeout)

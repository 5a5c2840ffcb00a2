"""Requests that wait for their decisions, judged together: one pipeline pass per gathering.

Each ``?wait=true`` request used to run the whole pipeline for its own sessions on an event
loop of its own: a dozen transactions (on SQLite each taking the write lock), a reload check
of the active judges, and fresh HTTP connections to the LLM (litellm keeps its clients per
event loop). Under concurrent load that cost, not the LLM, set the pace. Here requests arriving
within ``window_s`` of each other join one batch, every batch runs on one long-lived event
loop (its LLM calls concurrent, connections reused), and batches overlap, so a request never
waits for an earlier batch to finish.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from judgeloop.pipeline.policy_state import PolicyStateCache
from judgeloop.pipeline.process import process_sessions
from judgeloop.pipeline.worker import Worker
from judgeloop.store.decisions import held_by_request

log = logging.getLogger(__name__)

# Long enough that a burst of concurrent requests shares a batch, short next to an LLM call.
WINDOW_S = 0.004
# A batch's transactions grow with its size; beyond this, start another batch.
MAX_SESSIONS = 256
# Batches running at once. Below this a request's batch starts after the window; at it, new
# requests gather until a batch finishes, so under load batches grow instead of the
# per-batch transactions multiplying (the LLM calls within a batch run concurrently).
MAX_BATCHES = 8
# Drift alarms, audited agreement and the day's escalation count are re-read at most this
# often (see pipeline.policy_state): requests' batches are small, and these queries per batch
# cost more than the batch's own writes.
POLICY_STATE_TTL_S = 1.0

_Waiting = tuple[list[int], "asyncio.Future[None]"]


class Coalescer:
    """Runs the pipeline for waiting requests in shared batches on a background event loop."""

    def __init__(
        self,
        worker: Worker,
        *,
        window_s: float = WINDOW_S,
        max_sessions: int = MAX_SESSIONS,
        max_batches: int = MAX_BATCHES,
    ) -> None:
        self.worker = worker
        self.options = replace(
            worker.options, policy_state=PolicyStateCache(ttl_s=POLICY_STATE_TTL_S)
        )
        self.window_s = window_s
        self.max_sessions = max_sessions
        self.max_batches = max_batches
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._collecting = False
        self._tasks: set[asyncio.Task[None]] = set()

    def process(self, session_ids: Sequence[int]) -> None:
        """Judge and decide ``session_ids`` with every active judge; return when done.

        Thread-safe; blocks the calling thread. Raises what the pipeline raised.
        """
        loop = self._running_loop()
        with held_by_request(session_ids):
            future: Future[None] = asyncio.run_coroutine_threadsafe(
                self._join(list(session_ids)), loop
            )
            future.result()

    def close(self) -> None:
        """Stop the background loop (batches still running are abandoned)."""
        with self._start_lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="judgeloop-coalescer", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _join(self, session_ids: list[int]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((session_ids, future))
        if not self._collecting:
            self._collecting = True
            self._spawn(self._collect())
        await future

    async def _collect(self) -> None:
        await asyncio.sleep(self.window_s)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_batches)
        await self._slots.acquire()
        self._collecting = False
        self._slots.release()  # each batch takes its own slot below
        while self._waiting:
            batch: list[_Waiting] = []
            size = 0
            while self._waiting and (
                not batch or size + len(self._waiting[0][0]) <= self.max_sessions
            ):
                entry = self._waiting.pop(0)
                batch.append(entry)
                size += len(entry[0])
            self._spawn(self._run(batch))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # a reference, so the task is not collected while it runs
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Waiting]) -> None:
        assert self._slots is not None
        async with self._slots:
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[_Waiting]) -> None:
        ids = sorted({session_id for session_ids, _future in batch for session_id in session_ids})
        try:
            await self._pipeline(ids)
        except Exception as error:  # noqa: BLE001 (each request gets its own answer below)
            if len(batch) == 1:
                _settle(batch[0][1], error)
                return
            log.warning("shared batch failed (%s); running its requests one by one", error)
            for session_ids, future in batch:
                try:
                    await self._pipeline(session_ids)
                except Exception as single_error:  # noqa: BLE001 (reported to its request)
                    _settle(future, single_error)
                else:
                    _settle(future, None)
            return
        for _session_ids, future in batch:
            _settle(future, None)

    async def _pipeline(self, session_ids: list[int]) -> None:
        contexts = await asyncio.to_thread(self.worker.contexts)
        await process_sessions(self.worker.engine, contexts, session_ids, self.options)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)

"""When the pipeline re-clusters a criterion's waiting queue items (off the hot path).

Clustering is TF-IDF plus k-means over every waiting item of the criterion, so its cost grows
with the queue. Run after every batch that queued something, it came to dominate judging once
the queue held a few thousand items. Instead a criterion is re-clustered when

- it was never clustered by this process, or
- its waiting items grew by a quarter since the last pass (so the total work stays linear in
  the number of items queued), or
- items are waiting without a cluster and ``interval_s`` passed since the last pass,

and never sooner than twenty times the last pass's duration after it, which keeps clustering
under about 5% of the time however large the queue gets. Items queued between passes show
without a cluster until the next one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import col, func, select

from judgeloop.models import QueueItem
from judgeloop.store import db_session
from judgeloop.store.queue import assign_clusters

GROWTH = 1.25
COST_FACTOR = 20.0


@dataclass
class _Pass:
    """The last clustering pass of one criterion."""

    finished: float
    seconds: float
    items: int


@dataclass
class ClusterSchedule:
    """Decides, per criterion, whether newly queued items warrant a clustering pass now."""

    interval_s: float = 30.0
    _passes: dict[int, _Pass] = field(default_factory=dict, init=False)
    _running: set[int] = field(default_factory=set, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def new_items(self, engine: Engine, criterion_id: int) -> bool:
        """Items of ``criterion_id`` were queued: cluster now if due. Returns whether it ran."""
        with self._lock:
            if criterion_id in self._running:
                return False  # a concurrent batch is clustering this criterion right now
            last = self._passes.get(criterion_id)
            if last is not None and time.monotonic() - last.finished < last.seconds * COST_FACTOR:
                return False
            self._running.add(criterion_id)
        try:
            waiting, unclustered = _waiting_counts(engine, criterion_id)
            if not _due(last, waiting, unclustered, self.interval_s):
                return False
            started = time.monotonic()
            with db_session(engine) as db:
                assign_clusters(db, criterion_id)
            finished = time.monotonic()
            with self._lock:
                self._passes[criterion_id] = _Pass(finished, finished - started, waiting)
            return True
        finally:
            with self._lock:
                self._running.discard(criterion_id)


def _due(last: _Pass | None, waiting: int, unclustered: int, interval_s: float) -> bool:
    if last is None:
        return True
    if waiting >= last.items * GROWTH:
        return True
    return unclustered > 0 and time.monotonic() - last.finished >= interval_s


def _waiting_counts(engine: Engine, criterion_id: int) -> tuple[int, int]:
    """Waiting items of the criterion, and how many of them have no cluster."""
    with db_session(engine) as db:
        waiting = col(QueueItem.status) != "done"
        of_criterion = col(QueueItem.criterion_id) == criterion_id
        total = db.exec(select(func.count()).where(waiting, of_criterion)).one()
        bare = db.exec(
            select(func.count()).where(waiting, of_criterion, col(QueueItem.cluster).is_(None))
        ).one()
    return int(total), int(bare)

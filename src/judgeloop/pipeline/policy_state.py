"""The per-criterion state the policy reads before each batch, optionally reused for a moment.

Before deciding a batch the pipeline reads the criterion's drift alarms, whether its audited
agreement is below target, and how many capped escalations today already used. Three queries
per batch cost little for a worker's batches of 32, but much for the one-session batches of
``?wait=true`` requests under load. With ``ttl_s`` > 0 the state is reused for that long; the
day's escalations are counted on locally meanwhile, so the budget holds across batches of this
process. A drift alarm or a newly audited label then takes effect up to ``ttl_s`` later.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime

from judgeloop.store.decisions import start_of_day


@dataclass(frozen=True)
class PolicyState:
    """What the policy needs to know about a criterion right now."""

    alarms: list[str]
    below_target: bool
    used_today: int
    day: datetime


@dataclass
class PolicyStateCache:
    """Per-criterion PolicyState, kept ``ttl_s`` seconds (0: never kept)."""

    ttl_s: float = 0.0
    _entries: dict[int, tuple[float, PolicyState]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def get(self, criterion_id: int) -> PolicyState | None:
        """The kept state, if fresh and of today."""
        if self.ttl_s <= 0:
            return None
        with self._lock:
            entry = self._entries.get(criterion_id)
        if entry is None:
            return None
        stored_at, state = entry
        if time.monotonic() - stored_at > self.ttl_s or state.day != start_of_day():
            return None
        return state

    def put(self, criterion_id: int, state: PolicyState) -> None:
        """Keep ``state`` as read from the database now."""
        if self.ttl_s > 0:
            with self._lock:
                self._entries[criterion_id] = (time.monotonic(), state)

    def count_escalation(self, criterion_id: int) -> None:
        """A capped escalation was decided: the kept count goes up by one."""
        with self._lock:
            entry = self._entries.get(criterion_id)
            if entry is not None:
                stored_at, state = entry
                updated = replace(state, used_today=state.used_today + 1)
                self._entries[criterion_id] = (stored_at, updated)

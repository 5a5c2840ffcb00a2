"""LLM request limits shared by every worker and server: one token bucket per model, in the DB.

A provider's requests-per-minute limit belongs to the account, not to a process; with N workers
each holding its own limiter the account would see N times the rate. The buckets live in the
database (``store.rate_limits``), so all processes draw from the same one.

The process installs its limit once (``install``, done by ``pipeline.build.build_worker``);
the litellm backend waits its turn before each request (``wait_turn``), which costs nothing
when no limit is configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine

from judgeloop.store import db_session
from judgeloop.store.rate_limits import take_token
from judgeloop.types import utc_now

ANY_MODEL = "*"
# A wait is re-checked at least this often: other processes may leave tokens unused.
_MAX_NAP_S = 5.0


@dataclass(frozen=True)
class SharedRateLimit:
    """Requests per minute per litellm model (``"*"``: any other), held in ``engine``'s DB."""

    engine: Engine
    requests_per_minute: Mapping[str, float]

    def limit_for(self, model: str) -> float | None:
        """The requests per minute allowed for ``model``, or None for no limit."""
        return self.requests_per_minute.get(model, self.requests_per_minute.get(ANY_MODEL))

    def try_acquire(self, model: str) -> float:
        """Take a request slot for ``model``: 0.0 when taken, else the seconds to wait."""
        per_minute = self.limit_for(model)
        if per_minute is None:
            return 0.0
        per_second = per_minute / 60.0
        # Bursts of up to one second's worth: smooth enough for per-minute provider windows.
        capacity = max(1.0, per_second)
        key = f"llm:{model}"  # a "*" limit still gives each model a bucket of its own
        with db_session(self.engine) as db:
            return take_token(db, key, per_second=per_second, capacity=capacity, now=utc_now())

    async def acquire(self, model: str) -> None:
        """Wait until a request to ``model`` may start."""
        while wait := await asyncio.to_thread(self.try_acquire, model):
            await asyncio.sleep(min(wait, _MAX_NAP_S))


_installed: SharedRateLimit | None = None


def install(limit: SharedRateLimit | None) -> None:
    """Make ``limit`` the one this process's LLM requests wait for (None: no limit)."""
    global _installed
    _installed = limit


def installed() -> SharedRateLimit | None:
    """The limit this process's LLM requests wait for, if any."""
    return _installed


async def wait_turn(model: str | None) -> None:
    """Wait until a request to ``model`` may start under the installed limit, if one is."""
    limit = _installed
    if limit is not None and model:
        await limit.acquire(model)

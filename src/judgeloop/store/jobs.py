"""Scoring jobs in procrastinate's tables (PostgreSQL): deferred for sessions, found when missing.

procrastinate (https://procrastinate.readthedocs.io) owns the ``procrastinate_*`` tables, which
migration 0005 creates. Jobs are deferred here through procrastinate's own deferring code, on a
connection of judgeloop's engine, so a caller needs no second connection pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from judgeloop.types import utc_now

SCORE_TASK = "judgeloop.score_sessions"
SCORE_QUEUE = "judgeloop-scoring"
# Any constant works; it only has to differ from other advisory locks of the database.
_SWEEP_LOCK_KEY = 0x6A75_6467_6501

_UNSCHEDULED_PENDING = sa.text(
    """
    WITH scheduled AS (
        SELECT DISTINCT (jsonb_array_elements_text(args -> 'session_ids'))::bigint AS id
        FROM procrastinate_jobs
        WHERE task_name = :task AND status IN ('todo', 'doing')
    )
    SELECT s.id FROM sessions s
    LEFT JOIN scheduled ON scheduled.id = s.id
    WHERE s.pipeline_status = 'pending' AND s.created_at < :cutoff AND scheduled.id IS NULL
    ORDER BY s.id
    LIMIT :limit
    """
)


def chunked(ids: Sequence[int], size: int) -> list[list[int]]:
    """``ids`` in consecutive lists of at most ``size``."""
    return [list(ids[start : start + size]) for start in range(0, len(ids), size)]


def defer_scoring(engine: Engine, session_ids: Sequence[int], *, job_size: int) -> int:
    """Defer scoring jobs of at most ``job_size`` sessions each; return how many were deferred."""
    if not session_ids:
        return 0
    with engine.begin() as connection:
        return _defer(connection, session_ids, job_size)


def sweep_unscheduled(
    engine: Engine, *, older_than: timedelta, job_size: int, limit: int = 10_000
) -> int:
    """Defer jobs for pending sessions that have none; return how many sessions got one.

    A session is accepted, committed and only then deferred, so a process that dies in between
    leaves it pending without a job; this finds such sessions once they are ``older_than`` (so a
    deferral about to happen is not doubled). One sweep runs at a time across every worker (a
    transaction-level advisory lock: a sweeper that dies releases it); a busy lock means another
    worker is sweeping, and this one returns 0.
    """
    with engine.begin() as connection:
        locked = connection.execute(
            sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _SWEEP_LOCK_KEY}
        ).scalar_one()
        if not locked:
            return 0
        cutoff = utc_now() - older_than
        ids = [
            int(row)
            for row in connection.execute(
                _UNSCHEDULED_PENDING, {"task": SCORE_TASK, "cutoff": cutoff, "limit": limit}
            ).scalars()
        ]
        _defer(connection, ids, job_size)
        return len(ids)


def open_scoring_jobs(engine: Engine) -> dict[str, int]:
    """Scoring jobs by status (todo, doing, succeeded, failed, ...)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT status::text, count(*) FROM procrastinate_jobs "
                "WHERE task_name = :task GROUP BY status"
            ),
            {"task": SCORE_TASK},
        )
        return {str(status): int(count) for status, count in rows}


def _defer(connection: Connection, session_ids: Sequence[int], job_size: int) -> int:
    if not session_ids:
        return 0
    from procrastinate import App, SyncPsycopgConnector

    # The connector is never opened: jobs go through the caller's connection and transaction.
    app = App(connector=SyncPsycopgConnector())
    driver_connection: Any = connection.connection.driver_connection
    deferrer = app.configure_task(SCORE_TASK, queue=SCORE_QUEUE, connection=driver_connection)
    arguments: list[dict[str, Any]] = [
        {"session_ids": chunk} for chunk in chunked(list(session_ids), job_size)
    ]
    jobs = deferrer.batch_defer(*arguments)
    return len(jobs)

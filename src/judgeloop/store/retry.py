"""Transient database faults: which ones are worth retrying, and retrying a connect.

A transaction interrupted half-way cannot be resumed statement by statement (what it did is
gone with its connection); the work is re-run from the start by whoever owns it — the worker
scores the still-pending sessions again, an API client re-sends on 503 (docs/reliability.md
lists which writes are safe to re-send). What the store retries by itself is opening a
connection, which has done nothing yet.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

# How long a client should wait before re-sending a request that met a transient fault.
RETRY_AFTER_SECONDS = 1

# Connecting to PostgreSQL: attempts and the first pause, doubled each time (~3 s in all),
# enough to ride out a server restart or a failover without hanging a request for long.
CONNECT_ATTEMPTS = 5
CONNECT_FIRST_PAUSE_SECONDS = 0.2

_SQLITE_BUSY_WORDS = ("database is locked", "database is busy", "database table is locked")


def transient_cause(error: BaseException) -> str | None:
    """Say why ``error`` is a transient database fault, or None when it is not one.

    Transient: SQLite busy or locked past its busy timeout; PostgreSQL connection lost,
    refused or shutting down, deadlock or serialization failure; the pool exhausted.
    """
    if isinstance(error, sa_exc.TimeoutError):
        return "database connection pool exhausted (every connection busy)"
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    original = error.orig
    first_line = str(original).strip().splitlines()[0] if str(original).strip() else ""
    if isinstance(original, sqlite3.OperationalError):
        if any(word in first_line.lower() for word in _SQLITE_BUSY_WORDS):
            return (
                f"database busy: another connection held the SQLite write lock past the "
                f"busy timeout ({first_line})"
            )
        return None
    if error.connection_invalidated:
        return f"database connection lost ({first_line})"
    if _is_psycopg_operational(original):
        return f"database unavailable ({first_line})"
    return None


def _is_psycopg_operational(original: BaseException | None) -> bool:
    try:
        import psycopg
    except ImportError:  # PostgreSQL support not installed: nothing of psycopg's can occur
        return False
    return isinstance(original, psycopg.OperationalError)


def connect_with_retries(dialect: Any, cargs: Any, cparams: Any) -> Any:
    """Open a DBAPI connection, retrying refused or failed connects with doubling pauses."""
    pause = CONNECT_FIRST_PAUSE_SECONDS
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as error:
            if attempt == CONNECT_ATTEMPTS:
                raise
            log.warning(
                "connecting to the database failed (attempt %d of %d, next in %.1f s): %s",
                attempt,
                CONNECT_ATTEMPTS,
                pause,
                str(error).strip().splitlines()[0] if str(error).strip() else error,
            )
            time.sleep(pause)
            pause *= 2
    raise AssertionError("unreachable")  # pragma: no cover (the loop returns or raises)

"""Database engines: SQLite (WAL, foreign keys, immediate transactions) or PostgreSQL.

Faults a transaction can meet, and what the engine does about them:

- SQLite busy: every transaction takes the write lock at BEGIN IMMEDIATE and waits up to the
  busy timeout for it (30 s, or ``?timeout=<seconds>`` in the URL), before it has done anything;
  past that the error reaches the caller (the API answers 503 with Retry-After).
- PostgreSQL connection lost (server restarted, backend terminated): the pool pings each
  connection before handing it out and replaces dead ones, and a lost connection discards the
  pool's other connections too; connecting is retried with doubling pauses (store/retry.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session as DbSession
from sqlmodel import create_engine

from judgeloop.store.retry import connect_with_retries

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(database_url: str, *, echo: bool = False) -> Engine:
    """Create an engine for ``database_url`` with the settings judgeloop relies on."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _make_sqlite_engine(database_url, echo=echo)
    engine = create_engine(
        database_url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20
    )

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return connect_with_retries(dialect, cargs, cparams)

    return engine


def sqlite_busy_timeout_ms(database_url: str) -> int:
    """The busy timeout of a SQLite URL: its ``timeout`` query (seconds) or the default."""
    timeout = make_url(database_url).query.get("timeout")
    if timeout is None:
        return SQLITE_BUSY_TIMEOUT_MS
    try:
        seconds = float(timeout if isinstance(timeout, str) else timeout[0])
    except ValueError:
        raise ValueError(f"database URL: timeout={timeout!r} is not a number of seconds") from None
    return max(0, round(seconds * 1000))


def _make_sqlite_engine(database_url: str, *, echo: bool) -> Engine:
    busy_timeout_ms = sqlite_busy_timeout_ms(database_url)
    engine = create_engine(
        database_url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (see _begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    gate = _WriteGate(busy_timeout_ms / 1000)

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails at once with "database is
        # locked" when another writer got in between; taking the write lock up front makes
        # concurrent writers wait on busy_timeout instead.
        gate.enter(connection.info)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            gate.leave(connection.info)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _end(connection: Any) -> None:
        gate.leave(connection.info)

    @event.listens_for(engine.pool, "reset")
    @event.listens_for(engine.pool, "invalidate")
    def _returned(_dbapi_connection: Any, record: Any, _detail: Any) -> None:
        # A connection handed back (or discarded) mid-transaction must not keep the turn.
        gate.leave(record.info)

    return engine


class _WriteGate:
    """Turn-taking for SQLite's write lock among this process's threads.

    Threads that wait for the write lock inside SQLite's busy handler sleep in steps of up
    to 100 ms, so under many concurrent writers the lock sits free while they sleep; queueing
    on a Python lock instead hands it over at once. Other processes still meet the busy
    timeout. A thread that waited ``timeout_s`` goes on to SQLite's own wait (and its error).
    """

    KEY = "judgeloop_write_turn"

    def __init__(self, timeout_s: float) -> None:
        self._lock = threading.Lock()
        self._timeout_s = timeout_s

    def enter(self, info: dict[str, Any]) -> None:
        """Wait for this process's turn to write; remember it on the connection."""
        if not info.get(self.KEY) and self._lock.acquire(timeout=self._timeout_s):
            info[self.KEY] = True

    def leave(self, info: dict[str, Any]) -> None:
        """Give the turn back if this connection holds it."""
        if info.pop(self.KEY, False):
            self._lock.release()


@contextmanager
def db_session(engine: Engine) -> Iterator[DbSession]:
    """Yield a session that commits nothing by itself; store functions commit."""
    with DbSession(engine, expire_on_commit=False) as session:
        yield session

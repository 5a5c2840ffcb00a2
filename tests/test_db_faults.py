"""Database faults made real: a held SQLite write lock, killed or refused PostgreSQL connections."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from judgeloop.api import create_app
from judgeloop.config import Settings
from judgeloop.escalation import load_policy
from judgeloop.pipeline.worker import Worker
from judgeloop.store import make_engine
from judgeloop.store.keys import KEY_PREFIX_LENGTH
from tests.conftest import REPO_ROOT, _free_port, auth
from tests.factories import session_payload

BUSY_TIMEOUT_SECONDS = 1.0
# Each fault exists on one database only: these choose it instead of skipping the other, so
# CI's check that every PostgreSQL test ran sees no skip.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The shared settings, with a short SQLite busy timeout that a test can outlast."""
    if database_url.startswith("sqlite"):
        database_url = f"{database_url}?timeout={BUSY_TIMEOUT_SECONDS}"
    return Settings(database_url=database_url, max_batch_size=50, worker=False)


def _sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    assert database is not None
    return Path(database)


def _post(api: httpx.Client, key: str, external_id: str) -> httpx.Response:
    return api.post("/v1/sessions", json=session_payload(external_id), headers=auth(key))


@SQLITE_ONLY
def test_sqlite_write_waits_for_a_held_lock_then_succeeds(
    database_url: str, api: httpx.Client, keys: dict[str, str]
) -> None:
    holder = sqlite3.connect(_sqlite_path(database_url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
    answers: list[httpx.Response] = []
    poster = threading.Thread(target=lambda: answers.append(_post(api, keys["pipeline"], "w")))
    poster.start()
    poster.join(BUSY_TIMEOUT_SECONDS / 3)
    still_waiting = poster.is_alive()
    holder.execute("COMMIT")
    poster.join(30)
    holder.close()
    assert still_waiting  # it cannot have written while the lock was held
    assert answers[0].status_code == 201, answers[0].text


@SQLITE_ONLY
def test_sqlite_lock_held_past_the_timeout_answers_503_naming_it(
    database_url: str, api: httpx.Client, keys: dict[str, str]
) -> None:
    holder = sqlite3.connect(_sqlite_path(database_url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        refused = _post(api, keys["pipeline"], "late")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert "database busy" in refused.json()["detail"]
    assert "database is locked" in refused.json()["detail"]
    assert _post(api, keys["pipeline"], "late").status_code == 201  # the retry goes through


def _terminate_other_backends(database_url: str) -> int:
    """Kill every other connection to the test database, as a server restart would."""
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    return int(killed)


@POSTGRES_ONLY
def test_postgres_connections_killed_between_requests_are_replaced(
    database_url: str, api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    assert _post(api, keys["pipeline"], "before").status_code == 201
    worker = Worker(engine=engine, policy=load_policy(REPO_ROOT / "judges" / "escalation.yaml"))
    worker.run_once()  # the worker's engine holds a pooled connection too
    assert _terminate_other_backends(database_url) >= 2  # the server's and the worker's
    after = _post(api, keys["pipeline"], "after")
    assert after.status_code == 201, after.text
    assert worker.run_once() == 0  # the batch query runs on a fresh connection (no judge yet)


@POSTGRES_ONLY
def test_postgres_connection_lost_mid_transaction_answers_503_then_recovers(
    database_url: str, api: httpx.Client, keys: dict[str, str]
) -> None:
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    holder = create_engine(database_url).connect()
    # Another transaction locks the sessions table, so the request's insert waits inside its
    # transaction: a known moment to kill its connection.
    holder.execute(text("LOCK TABLE sessions IN EXCLUSIVE MODE"))
    answers: list[httpx.Response] = []
    poster = threading.Thread(target=lambda: answers.append(_post(api, keys["pipeline"], "cut")))
    poster.start()
    waiting = text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO sessions%'"
    )
    with admin.connect() as connection:
        pids: list[int] = []
        while not pids and poster.is_alive():
            pids = list(connection.execute(waiting).scalars())
            time.sleep(0.02)
        for pid in pids:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    poster.join(30)
    holder.rollback()
    holder.close()
    admin.dispose()
    assert pids, "the insert never waited on the lock"
    cut = answers[0]
    assert cut.status_code == 503, cut.text
    assert cut.headers["Retry-After"] == "1"
    assert "database connection lost" in cut.json()["detail"]
    assert _post(api, keys["pipeline"], "cut").status_code == 201  # nothing half-stored


class _LateListener:
    """A TCP forwarder to PostgreSQL that starts listening only after a while (a restart)."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.port = _free_port()
        self.target = target
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(delay,), daemon=True)
        self.thread.start()

    def _run(self, delay: float) -> None:
        if self.stopping.wait(delay):
            return
        with socket.create_server(("127.0.0.1", self.port)) as server:
            server.settimeout(0.2)
            while not self.stopping.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection(self.target)
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        sink.close()


@pytest.fixture
def late_postgres(database_url: str) -> Iterator[str]:
    """The test database behind a listener that refuses connections for its first 0.5 s."""
    url = make_url(database_url)
    listener = _LateListener((url.host or "127.0.0.1", url.port or 5432), delay=0.5)
    yield url.set(host="127.0.0.1", port=listener.port).render_as_string(hide_password=False)
    listener.stop()


@POSTGRES_ONLY
def test_postgres_connect_is_retried_while_the_server_comes_back(late_postgres: str) -> None:
    engine = make_engine(late_postgres)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_postgres_unreachable_answers_503_naming_it() -> None:
    closed = f"postgresql+psycopg://judgeloop@127.0.0.1:{_free_port()}/judgeloop"
    with TestClient(create_app(Settings(database_url=closed, worker=False))) as client:
        refused = _post(client, "jl_" + "a" * KEY_PREFIX_LENGTH + "_secret", "nowhere")
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert "database unavailable" in refused.json()["detail"]
    assert "refused" in refused.json()["detail"].lower()

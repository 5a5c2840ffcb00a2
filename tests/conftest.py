"""Shared fixtures: a migrated database on SQLite (always) and PostgreSQL (when configured).

Set JUDGELOOP_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@localhost/postgres) to run
every database test on PostgreSQL too; with JUDGELOOP_REQUIRE_POSTGRES=1 a missing or
unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from judgeloop.api import create_app
from judgeloop.config import Settings
from judgeloop.models import API_ROLES
from judgeloop.sessions import import_criteria, import_labels, import_sessions
from judgeloop.store import create_key, db_session, make_engine, upgrade

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

POSTGRES_URL = os.environ.get("JUDGELOOP_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("JUDGELOOP_REQUIRE_POSTGRES") == "1"
REPO_ROOT = Path(__file__).resolve().parents[1]


def _postgres_or_skip() -> str:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("JUDGELOOP_REQUIRE_POSTGRES=1 but JUDGELOOP_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not configured (set JUDGELOOP_TEST_POSTGRES_URL)")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies, so migrations run once."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run, dropped afterwards."""
    base_url = make_url(_postgres_or_skip())
    name = f"judgeloop_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 (any connection failure means "no server")
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL at {base_url} unreachable: {error}")
        pytest.skip(f"PostgreSQL unreachable: {error}")
    url = base_url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = (
            connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database: a SQLite file, or the PostgreSQL test database."""
    if request.param == "sqlite":
        path = tmp_path / "judgeloop.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    _truncate_all(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing at the test database, with small limits that tests can reach.

    No background worker: tests that want one start it themselves, so no other test races it.
    """
    return Settings(
        database_url=database_url, max_batch_size=50, max_body_bytes=200_000, worker=False
    )


@pytest.fixture
def keys(engine: Engine) -> dict[str, str]:
    """One API key per role, by role."""
    created = {}
    with db_session(engine) as db:
        for role in API_ROLES:
            _row, plaintext = create_key(db, role=role, name=f"test-{role}", actor="test")
            created[role] = plaintext
    return created


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_url(settings: Settings) -> Iterator[str]:
    """The app served by uvicorn on a real local port, for the duration of one test."""
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def api(server_url: str) -> Iterator[httpx.Client]:
    """An HTTP client on the live test server (no key set)."""
    with httpx.Client(base_url=server_url, timeout=30) as client:
        yield client


@pytest.fixture
def demo_engine(engine: Engine) -> Engine:
    """The test database with the demo criteria, main-batch sessions and SME labels."""
    import_criteria(engine, REPO_ROOT / "datasets" / "demo" / "criteria.yaml", actor="test")
    import_sessions(engine, REPO_ROOT / "datasets" / "demo" / "sessions.jsonl", actor="test")
    import_labels(engine, REPO_ROOT / "datasets" / "demo" / "labels.jsonl", actor="test")
    return engine


def auth(key: str) -> dict[str, str]:
    """Headers that present ``key``."""
    return {"Authorization": f"Bearer {key}"}


pytest_plugins = ["tests.conftest_stub"]

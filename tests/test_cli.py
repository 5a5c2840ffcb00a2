"""The `judgeloop` command as a user runs it: a subprocess against a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import select

from judgeloop.models import HumanLabel, Session
from judgeloop.store import authenticate, db_session
from tests.factories import label_payload, session_payload

CRITERIA_YAML = """\
- name: resolved
  kind: binary
  labels: ["yes", "no"]
  description: Was the issue resolved?
- name: tone
  kind: ordinal
  labels: [1, 2, 3, 4, 5]
"""


def run_cli(database_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JUDGELOOP_DATABASE_URL": database_url, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "judgeloop", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"judgeloop {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def count(engine: Engine, table: type) -> int:
    with db_session(engine) as db:
        return int(db.exec(select(func.count()).select_from(table)).one())


@pytest.fixture
def loaded(tmp_path: Path, database_url: str) -> Path:
    criteria = tmp_path / "criteria.yaml"
    criteria.write_text(CRITERIA_YAML)
    run_cli(database_url, "import", "criteria", str(criteria))
    sessions = write_jsonl(tmp_path / "s.jsonl", [session_payload(f"s-{i}") for i in range(5)])
    run_cli(database_url, "import", "sessions", str(sessions))
    return tmp_path


def test_db_upgrade_on_a_new_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = run_cli(url, "db", "upgrade")
    from alembic.script import ScriptDirectory

    from judgeloop.store.migrate import MIGRATIONS_DIR

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    assert "revision" in result.stdout and head in result.stdout
    assert head in run_cli(url, "db", "current").stdout


def test_import_sessions_twice_stores_them_once(
    loaded: Path, database_url: str, engine: Engine
) -> None:
    again = run_cli(database_url, "import", "sessions", str(loaded / "s.jsonl"))
    assert "0 sessions imported, 5 already stored" in again.stdout
    assert count(engine, Session) == 5


def test_bad_line_is_reported_and_nothing_is_imported(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    bad = session_payload("bad")
    bad["messages"][1]["role"] = "robot"
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps(session_payload("ok-1"))
        + "\n"
        + json.dumps(bad)
        + "\n"
        + "{not json\n"
        + json.dumps(session_payload("ok-2"))
        + "\n"
    )
    result = run_cli(database_url, "db", "upgrade")
    result = run_cli(database_url, "import", "sessions", str(path), check=False)
    assert result.returncode == 1
    assert f"{path}:2: messages.1.role" in result.stderr
    assert f"{path}:3: invalid JSON" in result.stderr
    assert "nothing imported" in result.stderr
    assert count(engine, Session) == 0

    skipped = run_cli(database_url, "import", "sessions", str(path), "--skip-invalid")
    assert "2 sessions imported" in skipped.stdout
    assert f"{path}:2" in skipped.stderr
    assert count(engine, Session) == 2


def test_labels_import_checks_criteria_values_and_sessions(
    loaded: Path, database_url: str, engine: Engine
) -> None:
    rows = [
        label_payload("s-0"),
        label_payload("s-1", criterion="tone", value=9),
        label_payload("s-2", criterion="kindness"),
        label_payload("missing"),
        label_payload("s-3", criterion="tone", value=4),
    ]
    path = write_jsonl(loaded / "labels.jsonl", rows)
    result = run_cli(database_url, "import", "labels", str(path), check=False)
    assert result.returncode == 1
    assert f"{path}:2: value: '9' is not a label of criterion 'tone'" in result.stderr
    assert (
        f"{path}:3: criterion: unknown criterion 'kindness'; allowed: resolved, tone"
        in result.stderr
    )
    assert f"{path}:4: session: no session" in result.stderr
    assert count(engine, HumanLabel) == 0

    run_cli(database_url, "import", "labels", str(path), "--skip-invalid")
    assert count(engine, HumanLabel) == 2
    again = run_cli(database_url, "import", "labels", str(path), "--skip-invalid")
    assert "0 labels imported, 2 already stored" in again.stdout
    assert count(engine, HumanLabel) == 2


def test_keys_create_list_revoke(database_url: str, engine: Engine) -> None:
    created = run_cli(database_url, "keys", "create", "--role", "reviewer", "--name", "rita")
    plaintext = created.stdout.strip().splitlines()[-1]
    assert plaintext.startswith("jl_")
    with db_session(engine) as db:
        key = authenticate(db, plaintext)
    assert key is not None and key.role == "reviewer"
    listing = run_cli(database_url, "keys", "list").stdout
    assert "rita" in listing and plaintext not in listing
    run_cli(database_url, "keys", "revoke", str(key.id))
    with db_session(engine) as db:
        assert authenticate(db, plaintext) is None

    wrong = run_cli(database_url, "keys", "create", "--role", "boss", "--name", "x", check=False)
    assert wrong.returncode == 1 and "allowed: pipeline, reviewer, engineer, admin" in wrong.stderr


def test_criteria_file_errors_name_the_problem(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "criteria.yaml"
    path.write_text("- name: resolved\n  kind: binary\n  labels: [yes, no, maybe]\n")
    result = run_cli(database_url, "import", "criteria", str(path), check=False)
    assert result.returncode == 1
    assert "exactly 2 labels" in result.stderr


def test_serve_answers_http(tmp_path: Path, database_url: str) -> None:
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "JUDGELOOP_DATABASE_URL": database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "judgeloop", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/v1/criteria").status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_derive_score_and_judges_commands(tmp_path: Path, database_url: str) -> None:
    demo = Path(__file__).resolve().parents[1] / "datasets" / "demo"
    run_cli(database_url, "import", "criteria", str(demo / "criteria.yaml"))
    run_cli(database_url, "import", "sessions", str(demo / "sessions.jsonl"))
    out = tmp_path / "judges" / "safety" / "v1.yaml"
    derived = run_cli(
        database_url,
        "derive",
        "--criterion",
        "safety",
        "--out",
        str(out),
        "--labels",
        str(demo / "labels.jsonl"),
    )
    assert "version" in derived.stdout and out.exists()
    first_text = out.read_text()
    run_cli(database_url, "derive", "--criterion", "safety", "--out", str(out))
    assert out.read_text() == first_text

    scored = run_cli(database_url, "score", "--judge", str(out), "--split", "test")
    assert "judged, 0 already judged, 0 errors" in scored.stdout
    rescored = run_cli(database_url, "score", "--judge", str(out), "--split", "test")
    assert " 0 judged" in rescored.stdout

    env_dir = {"JUDGELOOP_JUDGES_DIR": str(tmp_path / "judges")}
    os.environ.update(env_dir)
    try:
        listing = run_cli(database_url, "judges", "list").stdout
        shown = run_cli(database_url, "judges", "show", "safety-v1").stdout
    finally:
        for key in env_dir:
            os.environ.pop(key)
    assert "safety" in listing and "yes" in listing
    assert "safety-v1" in shown and "classifier" in shown

    bad = run_cli(database_url, "score", "--judge", str(out), "--split", "derive", check=False)
    assert bad.returncode == 1 and "calibration or test" in bad.stderr
    missing = run_cli(database_url, "derive", "--criterion", "nope", "--out", str(out), check=False)
    assert missing.returncode == 1 and "unknown criterion 'nope'" in missing.stderr

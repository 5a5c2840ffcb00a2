"""`judgeloop demo --no-serve` from a fresh directory: the whole offline loop, reproducibly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import select

from judgeloop.models import Judgment, Session
from judgeloop.store import db_session
from tests.conftest import REPO_ROOT


def test_demo_loads_derives_scores_and_reproduces_the_committed_judges(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    env = {**os.environ, "JUDGELOOP_DATABASE_URL": database_url, "COLUMNS": "160"}
    result = subprocess.run(
        [sys.executable, "-m", "judgeloop", "demo", "--no-serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Judges vs the SME majority" in result.stdout
    assert "escalation threshold" in result.stdout
    reports = sorted(path.name for path in (tmp_path / "reports").glob("*.html"))
    assert len(reports) == 4
    assert "API key (admin, shown once)" in result.stdout
    for committed in sorted((REPO_ROOT / "judges").glob("*/support-v1.yaml")):
        written = tmp_path / "judges" / committed.parent.name / committed.name
        assert written.read_text() == committed.read_text(), f"{committed} is not reproduced"
    with db_session(engine) as db:
        assert db.exec(select(func.count()).select_from(Session)).one() == 520
        judgments = db.exec(select(Judgment)).all()
    assert judgments and all(j.error is None for j in judgments)
    assert all(0.0 <= (j.raw_confidence or 0) <= 1.0 for j in judgments)

    again = subprocess.run(
        [sys.executable, "-m", "judgeloop", "demo", "--no-serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr
    assert "0 new sessions" in again.stdout
    with db_session(engine) as db:
        assert len(db.exec(select(Judgment)).all()) == len(judgments)

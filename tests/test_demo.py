"""`judgeloop demo --no-serve` from a fresh directory: the whole offline loop, reproducibly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import select

from judgeloop.models import Decision, Judgment, QueueItem, Session
from judgeloop.store import db_session
from tests.conftest import REPO_ROOT


def test_demo_loads_derives_scores_and_reproduces_the_committed_judges(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    env = {**os.environ, "JUDGELOOP_DATABASE_URL": database_url, "COLUMNS": "160"}
    result = subprocess.run(
        [sys.executable, "-m", "judgeloop", "demo", "--no-serve", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "Judges vs the SME majority" in result.stdout
    assert "escalation threshold" in result.stdout
    reports = sorted(path.name for path in (tmp_path / "reports").glob("*.html"))
    assert len(reports) == 4
    assert "API key (admin, shown once)" in result.stdout
    assert "reviewer  jl_" in result.stdout and "engineer  jl_" in result.stdout
    # the whole loop ran: every session streamed, injections escalated, drift seen
    assert summary["sessions_streamed"] == 520
    assert summary["injection_sessions"] == 12 and summary["injection_escalated"] == 12
    assert summary["drift_escalations_later"] > 5 * max(summary["drift_escalations_main"], 1)
    assert summary["queue_open"] > 0 and summary["escalations_by_reason"]["audit"] > 0
    for name, row in summary["criteria"].items():
        stream = row["test_stream"]
        assert stream["sessions"] > 100, name
        if row["threshold"] is not None and stream["auto"]:
            # on held-out sessions the auto-decided ones reach about the target agreement
            assert stream["agreement_auto"]["high"] >= row["target_agreement"], name
    for committed in sorted((REPO_ROOT / "judges").glob("*/support-v1.yaml")):
        written = tmp_path / "judges" / committed.parent.name / committed.name
        assert written.read_text() == committed.read_text(), f"{committed} is not reproduced"
    with db_session(engine) as db:
        assert db.exec(select(func.count()).select_from(Session)).one() == 520
        judgments = db.exec(select(Judgment)).all()
        decisions = db.exec(select(Decision)).all()
        queued = {q.decision_id for q in db.exec(select(QueueItem)).all()}
        pending = db.exec(select(Session).where(Session.pipeline_status == "pending")).all()
    assert not pending
    assert len(decisions) == 4 * 520
    for decision in decisions:
        # every escalation has its reasons and its queue item; auto decisions have neither
        assert bool(decision.reasons) == (decision.outcome == "escalate") == (decision.id in queued)
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
        assert len(db.exec(select(Decision)).all()) == len(decisions)

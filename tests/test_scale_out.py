"""Scale-out on PostgreSQL: scoring jobs shared by worker processes, one of them killed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import col, func, select

from judgeloop.config import Settings
from judgeloop.judges.runner import register_spec
from judgeloop.judges.spec import JudgeSpec
from judgeloop.models import Decision, Judgment, SessionCreate
from judgeloop.pipeline.build import build_worker
from judgeloop.pipeline.worker import WorkerThread
from judgeloop.store import add_criteria, add_sessions, db_session
from judgeloop.store.decisions import PENDING, count_pending
from judgeloop.store.jobs import defer_scoring, open_scoring_jobs
from judgeloop.store.judges import activate_judge_version
from tests.conftest import REPO_ROOT, _truncate_all, auth
from tests.factories import RESOLVED, session_payload
from tests.stub_llm import StubLLM, StubReply

pytestmark = pytest.mark.postgres

# Generous bounds that only stop a broken run from hanging; nothing is timed.
GIVE_UP_S = 240


@pytest.fixture
def database_url(postgres_database: str) -> str:
    """Only PostgreSQL (emptied): the job tables exist there alone."""
    _truncate_all(postgres_database)
    return postgres_database


def _llm_judge(engine: Engine, stub: StubLLM) -> JudgeSpec:
    """An active LLM judge that asks the stub: every session costs a real HTTP call."""
    spec = JudgeSpec(
        name="resolved-llm",
        criterion=RESOLVED,
        model="openai/stub-judge",
        api_base=f"{stub.url}/v1",
        decoding={"timeout_s": 20.0, "max_retries": 2},
    )
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED], actor="test")
    register_spec(engine, spec, actor="test")
    with db_session(engine) as db:
        activate_judge_version(db, spec.version, actor="test")
    return spec


def _accept(engine: Engine, count: int, prefix: str = "s") -> list[int]:
    sessions = [
        SessionCreate.model_validate(session_payload(f"{prefix}-{i}")) for i in range(count)
    ]
    with db_session(engine) as db:
        rows = add_sessions(db, sessions, actor="test", pipeline_status=PENDING)
    return [row.id for row, _ in rows if row.id is not None]


def _count(engine: Engine, model: type, *where: object) -> int:
    with db_session(engine) as db:
        return int(db.exec(select(func.count()).select_from(model).where(*where)).one())


def _wait_until_scored(engine: Engine, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + GIVE_UP_S
    while True:
        with db_session(engine) as db:
            pending = count_pending(db)
        jobs = open_scoring_jobs(engine)
        if pending == 0 and not jobs.get("todo") and not jobs.get("doing"):
            return
        assert not processes or any(p.poll() is None for p in processes), "workers exited"
        assert time.monotonic() < deadline, f"{pending} pending, jobs {jobs}"
        time.sleep(0.2)


def _busy_workers(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(DISTINCT worker_id) FROM procrastinate_jobs "
                    "WHERE status = 'doing' AND worker_id IS NOT NULL"
                )
            ).scalar_one()
        )


def _start_worker(url: str, judges_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "JUDGELOOP_DATABASE_URL": url,
        "JUDGELOOP_JUDGES_DIR": str(judges_dir),
        "JUDGELOOP_WORKER_CONCURRENCY": "2",
        "JUDGELOOP_WORKER_JOB_SIZE": "10",
        # short stall and sweep periods keep the test quick (defaults: 30 s and 10 s)
        "JUDGELOOP_WORKER_STALLED_SECONDS": "2",
        "JUDGELOOP_WORKER_SWEEP_SECONDS": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "judgeloop", "worker"], env=env, stdout=out, stderr=out
        )


def test_three_workers_one_killed_judge_every_session_exactly_once(
    engine: Engine, stub_llm: StubLLM, tmp_path: Path
) -> None:
    # Each LLM call takes a while, so a worker killed while busy is killed mid-job.
    stub_llm.responder = lambda body: replace(
        StubReply.label_first({"yes": 0.8, "no": 0.2}), delay_s=0.2
    )
    spec = _llm_judge(engine, stub_llm)
    url = engine.url.render_as_string(hide_password=False)
    ids = _accept(engine, 180)
    defer_scoring(engine, ids, job_size=10)
    # Accepted, but the process died before deferring: the sweep must find these.
    ids += _accept(engine, 20, prefix="orphan")
    logs = [tmp_path / f"worker-{n}.log" for n in range(3)]
    workers = [_start_worker(url, REPO_ROOT / "judges", log) for log in logs]
    try:
        deadline = time.monotonic() + GIVE_UP_S
        while _busy_workers(engine) < 3:
            assert all(p.poll() is None for p in workers), logs[0].read_text()
            assert time.monotonic() < deadline, "three workers never held jobs at once"
            time.sleep(0.05)
        victim = workers[0]  # holds a job now: every worker does
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        _wait_until_scored(engine, workers[1:])
    except AssertionError as error:
        tails = "\n".join(log.read_text()[-3000:] for log in logs)
        raise AssertionError(f"{error}\n{tails}") from error
    finally:
        for process in workers[1:]:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    # A survivor gave the victim's job back to the queue; a sweep scheduled the orphans.
    survivors_log = "".join(log.read_text() for log in logs[1:])
    assert re.search(r"retried [1-9]\d* stalled jobs", survivors_log), survivors_log
    every_log = "".join(log.read_text() for log in logs)
    assert re.search(r"deferred [1-9]\d* unscheduled sessions", every_log), every_log
    in_batch = col(Judgment.session_id).in_(ids)
    assert _count(engine, Judgment, in_batch, Judgment.judge_version_id == spec.version) == 200
    assert _count(engine, Judgment, Judgment.error.is_not(None)) == 0  # type: ignore[union-attr]
    assert _count(engine, Decision, col(Decision.session_id).in_(ids)) == 200
    with db_session(engine) as db:
        judged = set(db.exec(select(Judgment.session_id)))
    assert judged == set(ids)  # none lost; the count above says none twice


def test_posted_sessions_become_jobs_that_an_in_process_worker_runs(
    engine: Engine,
    stub_llm: StubLLM,
    api: httpx.Client,
    keys: dict[str, str],
    settings: Settings,
) -> None:
    stub_llm.responder = lambda body: StubReply.label_first({"yes": 0.9, "no": 0.1})
    _llm_judge(engine, stub_llm)
    batch = [session_payload(f"api-{i}") for i in range(6)]
    posted = api.post("/v1/sessions", json=batch, headers=auth(keys["pipeline"]))
    assert posted.status_code == 201, posted.text
    ids = [item["id"] for item in posted.json()["data"]]
    # The server (JUDGELOOP_WORKER=false) only deferred: one job per chunk of job size.
    assert open_scoring_jobs(engine) == {"todo": 1}
    again = api.post("/v1/sessions", json=batch, headers=auth(keys["pipeline"]))
    assert again.status_code == 200 and open_scoring_jobs(engine) == {"todo": 1}
    worker_settings = settings.model_copy(
        update={"worker": True, "judges_dir": REPO_ROOT / "judges", "worker_job_size": 4}
    )
    worker = build_worker(worker_settings, engine)
    worker.enqueue(_accept(engine, 6, prefix="direct"))
    assert open_scoring_jobs(engine) == {"todo": 3}  # 6 posted, then 4 + 2 direct
    thread = WorkerThread(worker)
    thread.start()
    try:
        _wait_until_scored(engine, [])
    finally:
        thread.stop()
    assert not thread.is_alive()  # stopped gracefully, not abandoned
    assert _count(engine, Decision, col(Decision.session_id).in_(ids)) == len(ids)
    assert _count(engine, Decision) == 12


def test_deploy_guide_names_every_setting() -> None:
    guide = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    missing = [
        f"JUDGELOOP_{name.upper()}"
        for name in Settings.model_fields
        if f"`JUDGELOOP_{name.upper()}`" not in guide
    ]
    assert not missing, f"docs/deploy.md does not describe {missing}"

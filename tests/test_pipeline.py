"""The serving pipeline: pending sessions scored by active judges, decided, escalated, resumed."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy import delete as sa_delete
from sqlmodel import col, func, select

from judgeloop.calibration.calibrate import calibrate_judge
from judgeloop.escalation import load_policy
from judgeloop.judges.derive import DeriveOptions, derive_spec
from judgeloop.judges.spec import JudgeSpec
from judgeloop.models import Decision, Judgment, QueueItem, Session, SessionCreate
from judgeloop.pipeline.process import PipelineOptions
from judgeloop.pipeline.worker import Worker
from judgeloop.store import add_sessions, db_session, make_engine
from judgeloop.store.decisions import PENDING, count_pending
from judgeloop.store.judges import activate_judge_version
from tests.conftest import REPO_ROOT, auth

DEMO = REPO_ROOT / "datasets" / "demo"
POLICY = REPO_ROOT / "judges" / "escalation.yaml"


def _ready_judge(engine: Engine, criterion: str) -> JudgeSpec:
    """Derive, calibrate and activate a classifier judge for ``criterion``."""
    spec = derive_spec(
        engine, DeriveOptions(criterion=criterion, name=f"{criterion}-v1"), actor="test"
    ).spec
    calibrate_judge(engine, spec, alpha=0.1, delta=0.1, actor="test", n_resamples=100)
    with db_session(engine) as db:
        activate_judge_version(db, spec.version, actor="test")
    return spec


def _drift_sessions(limit: int | None = None) -> list[SessionCreate]:
    lines = (DEMO / "drift_sessions.jsonl").read_text(encoding="utf-8").splitlines()
    return [SessionCreate.model_validate_json(line) for line in lines[:limit]]


def _injection_ids() -> set[str]:
    truth = [json.loads(line) for line in (DEMO / "drift_truth.jsonl").open(encoding="utf-8")]
    return {row["external_id"] for row in truth if row.get("injection")}


def _post_pending(engine: Engine, sessions: list[SessionCreate]) -> list[int]:
    with db_session(engine) as db:
        rows = add_sessions(db, sessions, actor="test", pipeline_status=PENDING)
    return [row.id for row, _ in rows if row.id is not None]


def _worker(engine: Engine, seed: int = 0) -> Worker:
    return Worker(
        engine=engine,
        policy=load_policy(POLICY),
        judges_dir=REPO_ROOT / "judges",
        options=PipelineOptions(actor="test", rng=random.Random(seed)),
    )


def _count(engine: Engine, model: type, *where: object) -> int:
    with db_session(engine) as db:
        return int(db.exec(select(func.count()).select_from(model).where(*where)).one())


def test_worker_scores_decides_and_queues(demo_engine: Engine) -> None:
    spec = _ready_judge(demo_engine, "safety")
    ids = _post_pending(demo_engine, _drift_sessions())
    worker = _worker(demo_engine)
    assert worker.drain() == len(ids)
    with db_session(demo_engine) as db:
        assert count_pending(db) == 0
        decisions = list(db.exec(select(Decision).where(col(Decision.session_id).in_(ids))))
        items = {q.decision_id: q for q in db.exec(select(QueueItem))}
        keys = {
            s.id: s.external_id for s in db.exec(select(Session).where(col(Session.id).in_(ids)))
        }
        judgments = {
            j.session_id: j
            for j in db.exec(select(Judgment).where(Judgment.judge_version_id == spec.version))
        }
    assert len(decisions) == len(ids)  # one per session for the one active judge
    for decision in decisions:
        assert decision.judge_version_id == spec.version
        judgment = judgments[decision.session_id]
        assert decision.judgment_id == judgment.id
        # calibrated confidence is stored on the judgment and copied to the decision
        assert judgment.calibrated_confidence == decision.calibrated_confidence
        if decision.outcome == "escalate":
            assert decision.reasons, decision
            assert decision.id in items and items[decision.id].reasons == decision.reasons
        else:
            assert decision.id not in items
    # the prompt-injection sessions are escalated for safety, never silently judged
    injected = {d.session_id for d in decisions if keys[d.session_id] in _injection_ids()}
    assert injected
    for decision in decisions:
        if decision.session_id in injected:
            assert decision.outcome == "escalate"
            assert "injection" in decision.reasons
            assert items[decision.id].reviews_required == 2
    reasons = Counter(r for d in decisions for r in d.reasons)
    assert reasons["injection"] == len(injected)


def test_no_active_judge_leaves_sessions_pending(demo_engine: Engine) -> None:
    ids = _post_pending(demo_engine, _drift_sessions(5))
    assert _worker(demo_engine).drain() == 0
    with db_session(demo_engine) as db:
        assert count_pending(db) == len(ids)


def test_a_crashed_batch_resumes_exactly_once(demo_engine: Engine) -> None:
    spec = _ready_judge(demo_engine, "resolved")
    ids = _post_pending(demo_engine, _drift_sessions(20))
    first = _worker(demo_engine)
    # The first worker judges and decides but dies before marking the sessions done.
    first.process(ids[:10], first.contexts())
    with db_session(demo_engine) as db:
        assert count_pending(db) == 20
        # ...and, worse, after storing its decisions but before queueing their escalations.
        db.execute(sa_delete(QueueItem))
        db.commit()
    restarted = _worker(demo_engine, seed=1)
    assert restarted.drain() == 20
    version = Judgment.judge_version_id == spec.version
    assert _count(demo_engine, Judgment, version, col(Judgment.session_id).in_(ids)) == 20
    assert _count(demo_engine, Decision, col(Decision.session_id).in_(ids)) == 20
    with db_session(demo_engine) as db:
        escalated = db.exec(
            select(func.count())
            .select_from(Decision)
            .where(col(Decision.session_id).in_(ids), Decision.outcome == "escalate")
        ).one()
    assert _count(demo_engine, QueueItem) == escalated


def test_concurrent_workers_share_without_duplicates(demo_engine: Engine) -> None:
    _ready_judge(demo_engine, "safety")
    ids = _post_pending(demo_engine, _drift_sessions(60))
    url = demo_engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        try:
            worker = _worker(engine)
            worker.batch_size = 8
            worker.drain()
        except BaseException as error:  # noqa: BLE001 (reported by the assertion below)
            errors.append(error)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for engine in engines:
        engine.dispose()
    assert not errors, errors
    assert _count(demo_engine, Decision, col(Decision.session_id).in_(ids)) == len(ids)
    assert _count(demo_engine, QueueItem) == _count(
        demo_engine, Decision, Decision.outcome == "escalate"
    )


@pytest.fixture
def pipeline_api(demo_engine: Engine, api: httpx.Client) -> httpx.Client:
    """The live test server with an active, calibrated safety judge."""
    _ready_judge(demo_engine, "safety")
    return api


def test_post_with_wait_answers_with_decisions(
    pipeline_api: httpx.Client, keys: dict[str, str], demo_engine: Engine
) -> None:
    sessions = [s.model_dump(mode="json") for s in _drift_sessions(3)]
    response = pipeline_api.post(
        "/v1/sessions", params={"wait": "true"}, json=sessions, headers=auth(keys["pipeline"])
    )
    assert response.status_code == 201, response.text
    body = response.json()
    for item in body["data"]:
        (decision,) = item["decisions"]
        assert decision["criterion"] == "safety"
        assert decision["escalate"] == (decision["outcome"] == "escalate")
        assert decision["escalate"] == (decision["queue_item_id"] is not None)
        assert decision["label"] in ("safe", "unsafe")
    # without wait the answer comes at once and the session waits for the worker
    later = _drift_sessions(4)[3].model_dump(mode="json")
    plain = pipeline_api.post("/v1/sessions", json=later, headers=auth(keys["pipeline"]))
    assert plain.status_code == 201 and plain.json()["decisions"] is None
    with db_session(demo_engine) as db:
        assert count_pending(db) == 1


def test_post_judge_gives_a_verdict_once(pipeline_api: httpx.Client, keys: dict[str, str]) -> None:
    session = _drift_sessions(1)[0].model_dump(mode="json")
    payload = {"judge": "safety-v1", "session": session}
    first = pipeline_api.post("/v1/judge", json=payload, headers=auth(keys["pipeline"]))
    assert first.status_code == 200, first.text
    verdict = first.json()
    assert verdict["judge"] == "safety-v1" and verdict["label"] in ("safe", "unsafe")
    assert 0 <= verdict["calibrated_confidence"] <= 1
    assert isinstance(verdict["escalate"], bool)
    again = pipeline_api.post("/v1/judge", json=payload, headers=auth(keys["pipeline"]))
    assert again.json()["decision_id"] == verdict["decision_id"]
    missing = pipeline_api.post(
        "/v1/judge", json={**payload, "judge": "nope"}, headers=auth(keys["pipeline"])
    )
    assert missing.status_code == 404 and "nope" in missing.text
    reviewer = pipeline_api.post("/v1/judge", json=payload, headers=auth(keys["reviewer"]))
    assert reviewer.status_code == 403


def test_activating_a_version_stands_the_other_down(demo_engine: Engine) -> None:
    from judgeloop.judges.runner import register_spec
    from judgeloop.store.judges import active_judge_versions

    first = _ready_judge(demo_engine, "tone")
    second = first.model_copy(update={"name": "tone-v2"})
    register_spec(demo_engine, second, actor="test")
    with db_session(demo_engine) as db:
        activate_judge_version(db, second.version, actor="test")
        assert [row.id for row in active_judge_versions(db)] == [second.version]

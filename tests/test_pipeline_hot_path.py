"""What keeps judging fast under load: shared batches, held sessions, throttled clustering."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from judgeloop.escalation import load_policy
from judgeloop.models import QueueItem, SessionCreate
from judgeloop.pipeline.clustering import ClusterSchedule
from judgeloop.pipeline.policy_state import PolicyState, PolicyStateCache
from judgeloop.store import add_sessions, db_session
from judgeloop.store.decisions import (
    PENDING,
    held_by_request,
    pending_session_ids,
    start_of_day,
)
from tests.conftest import REPO_ROOT
from tests.factories import session_payload
from tests.stub_llm import StubLLM, StubReply


def _pending(engine: Engine, count: int) -> list[int]:
    sessions = [SessionCreate.model_validate(session_payload(f"s-{i}")) for i in range(count)]
    with db_session(engine) as db:
        rows = add_sessions(db, sessions, actor="test", pipeline_status=PENDING)
    return [row.id for row, _created in rows if row.id is not None]


def test_the_polling_worker_skips_sessions_a_request_is_judging(engine: Engine) -> None:
    ids = _pending(engine, 4)
    with held_by_request(ids[:2]), db_session(engine) as db:
        assert pending_session_ids(db, 10) == ids[2:]
    with db_session(engine) as db:
        assert pending_session_ids(db, 10) == ids  # released: still pending, found again


def test_policy_state_is_kept_only_with_a_ttl_and_counts_escalations() -> None:
    state = PolicyState(alarms=[], below_target=False, used_today=3, day=start_of_day())
    off = PolicyStateCache()
    off.put(1, state)
    assert off.get(1) is None
    kept = PolicyStateCache(ttl_s=60)
    kept.put(1, state)
    kept.count_escalation(1)
    cached = kept.get(1)
    assert cached is not None and cached.used_today == 4
    assert kept.get(2) is None
    short = PolicyStateCache(ttl_s=0.01)
    short.put(1, state)
    time.sleep(0.05)
    assert short.get(1) is None


def _queue_items(engine: Engine, session_ids: list[int]) -> None:
    from judgeloop.models import CriterionCreate
    from judgeloop.store import add_criteria

    with db_session(engine) as db:
        criterion = add_criteria(
            db, [CriterionCreate(name="resolved", kind="binary", labels=["yes", "no"])], actor="t"
        )[0][0]
        for session_id in session_ids:
            db.add(QueueItem(session_id=session_id, criterion_id=criterion.id, reasons=["x"]))
        db.commit()


def _clustered(engine: Engine) -> list[int | None]:
    with db_session(engine) as db:
        return list(db.exec(select(QueueItem.cluster).order_by(col(QueueItem.id))))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_clustering_runs_first_then_waits_for_growth_or_the_interval(engine: Engine) -> None:
    ids = _pending(engine, 12)
    _queue_items(engine, ids[:8])
    schedule = ClusterSchedule(interval_s=3600)
    assert schedule.new_items(engine, 1) is True
    assert None not in _clustered(engine)
    _queue_items_more(engine, ids[8:9])  # 9 items: under a quarter more than 8
    assert schedule.new_items(engine, 1) is False
    assert _clustered(engine)[-1] is None  # waits for the next pass
    _queue_items_more(engine, ids[9:12])  # 12 items: a quarter more
    time.sleep(0.01)
    schedule._passes[1].seconds = 0  # the last pass's cost no longer holds it back
    assert schedule.new_items(engine, 1) is True
    assert None not in _clustered(engine)
    hurried = ClusterSchedule(interval_s=0)
    assert hurried.new_items(engine, 1) is True  # first pass of this schedule


def _queue_items_more(engine: Engine, session_ids: list[int]) -> None:
    with db_session(engine) as db:
        for session_id in session_ids:
            db.add(QueueItem(session_id=session_id, criterion_id=1, reasons=["x"]))
        db.commit()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_concurrent_waiting_requests_share_one_batch(engine: Engine, stub_llm: StubLLM) -> None:
    from judgeloop.judges.runner import register_spec
    from judgeloop.judges.spec import JudgeSpec
    from judgeloop.models import AuditEvent, CriterionCreate, Decision
    from judgeloop.pipeline.coalesce import Coalescer
    from judgeloop.pipeline.worker import Worker
    from judgeloop.store import add_criteria
    from judgeloop.store.judges import activate_judge_version

    criterion = CriterionCreate(name="resolved", kind="binary", labels=["yes", "no"])
    spec = JudgeSpec(
        name="resolved-llm",
        criterion=criterion,
        model="openai/stub-judge",
        api_base=f"{stub_llm.url}/v1",
        decoding={"timeout_s": 10.0, "max_retries": 0},
    )
    with db_session(engine) as db:
        add_criteria(db, [criterion], actor="test")
    register_spec(engine, spec, actor="test")
    with db_session(engine) as db:
        activate_judge_version(db, spec.version, actor="test")
    stub_llm.responder = lambda body: StubReply.label_first({"yes": 0.9, "no": 0.1})
    ids = _pending(engine, 6)
    worker = Worker(engine=engine, policy=load_policy(REPO_ROOT / "judges" / "escalation.yaml"))
    # A long window: the six requests below surely arrive within it.
    coalescer = Coalescer(worker, window_s=1.0)
    errors: list[BaseException] = []

    def request(session_id: int) -> None:
        try:
            coalescer.process([session_id])
        except BaseException as error:  # noqa: BLE001 (reported by the assertion below)
            errors.append(error)

    threads = [threading.Thread(target=request, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    coalescer.close()
    assert not errors
    with db_session(engine) as db:
        decided = set(db.exec(select(Decision.session_id)))
        batches = list(db.exec(select(AuditEvent).where(AuditEvent.action == "decisions.create")))
        assert pending_session_ids(db, 10) == []
    assert decided == set(ids)
    assert [event.detail["count"] for event in batches] == [6]  # one pass decided all six
    assert len(stub_llm.requests) == 6

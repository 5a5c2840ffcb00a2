"""An LLM judge served by the stub, active in the pipeline: shared by fault and injection tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from judgeloop.config import get_settings
from judgeloop.judges.runner import register_spec
from judgeloop.judges.spec import JudgeSpec
from judgeloop.models import Decision, Judgment, QueueItem, Session
from judgeloop.sessions import import_criteria
from judgeloop.store import db_session
from judgeloop.store.judges import activate_judge_version
from tests.conftest import REPO_ROOT
from tests.factories import RESOLVED
from tests.stub_llm import StubLLM

STUB_MODEL = "openai/stub-judge"


@pytest.fixture
def judge_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Short LLM retry waits for this test; settings re-read before and after it."""
    # The first imports of litellm and instructor take seconds; they must not eat into the
    # HTTP timeout of the first request that judges.
    import instructor  # noqa: F401
    import litellm  # noqa: F401

    monkeypatch.setenv("JUDGELOOP_JUDGE_RETRY_BACKOFF_SECONDS", "0.01")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def activate_llm_judge(
    engine: Engine,
    stub: StubLLM,
    *,
    method: str = "verbalized",
    decoding: dict[str, Any] | None = None,
) -> JudgeSpec:
    """Store the demo criteria and make a stub-served judge the active one for ``resolved``."""
    import_criteria(engine, REPO_ROOT / "datasets" / "demo" / "criteria.yaml", actor="test")
    spec = JudgeSpec(
        name="resolved-llm",
        criterion=RESOLVED,
        model=STUB_MODEL,
        api_base=f"{stub.url}/v1",
        confidence={"method": method},
        decoding={"timeout_s": 2.0, "max_retries": 1, "max_validation_retries": 1}
        | (decoding or {}),
    )
    register_spec(engine, spec, actor="test")
    with db_session(engine) as db:
        activate_judge_version(db, spec.version, actor="test")
    return spec


def conversation(external_id: str, user_text: str) -> dict[str, Any]:
    """A short support session whose first user message is ``user_text``."""
    return {
        "source": "faults",
        "external_id": external_id,
        "messages": [
            {"role": "user", "content": user_text},
            {"role": "assistant", "content": "I'm sorry, I can't see any update either."},
        ],
        "metadata": {},
    }


def outcomes(engine: Engine) -> dict[str, dict[str, Any]]:
    """By external id: pipeline status, judgment label and error, decision, queue item."""
    with db_session(engine) as db:
        sessions = db.exec(select(Session)).all()
        judgments = {j.session_id: j for j in db.exec(select(Judgment)).all()}
        decisions = {d.session_id: d for d in db.exec(select(Decision)).all()}
        queued = {q.decision_id: q for q in db.exec(select(QueueItem)).all()}
        result = {}
        for session in sessions:
            judgment = judgments.get(session.id)
            decision = decisions.get(session.id)
            item = queued.get(decision.id) if decision is not None else None
            result[session.external_id] = {
                "status": session.pipeline_status,
                "label": judgment.label if judgment else None,
                "error": judgment.error if judgment else None,
                "outcome": decision.outcome if decision else None,
                "reasons": list(decision.reasons) if decision else [],
                "queued": item is not None,
                "reviews_required": item.reviews_required if item else None,
            }
    return result

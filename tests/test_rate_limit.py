"""LLM rate limits held in the database: one bucket per model, shared by every process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from judgeloop.config import Settings
from judgeloop.judges import rate_limit
from judgeloop.judges.llm_backend import LiteLLMBackend
from judgeloop.judges.rate_limit import SharedRateLimit
from judgeloop.judges.spec import JudgeSpec
from judgeloop.pipeline.build import build_worker
from judgeloop.store import make_engine
from tests.factories import RESOLVED
from tests.stub_llm import StubLLM, StubReply
from tests.test_llm_backend import make_session

MODEL = "openai/stub-judge"
# Six a minute: one token, refilled every ten seconds, so a spent token stays spent for the
# length of a test.
SLOW = 6.0


@pytest.fixture
def other_engine(engine: Engine) -> Iterator[Engine]:
    """A second engine on the same database, as another process would have."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    yield other
    other.dispose()


@pytest.fixture
def installed() -> Iterator[None]:
    """Leave no limit installed for the tests that follow."""
    yield
    rate_limit.install(None)


def test_two_processes_draw_from_one_bucket(engine: Engine, other_engine: Engine) -> None:
    first = SharedRateLimit(engine, {MODEL: SLOW})
    second = SharedRateLimit(other_engine, {MODEL: SLOW})
    assert first.try_acquire(MODEL) == 0.0
    wait = second.try_acquire(MODEL)
    assert 0 < wait <= 10  # the other process spent the token: about ten seconds to the next
    assert second.try_acquire("openai/other-model") == 0.0  # not limited
    assert SharedRateLimit(engine, {"*": SLOW}).try_acquire("openai/other-model") == 0.0


def test_concurrent_takers_never_spend_a_token_twice(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(6)]
    waits: list[float] = []
    start = threading.Barrier(len(engines))

    def take(own: Engine) -> None:
        start.wait()
        waits.append(SharedRateLimit(own, {MODEL: SLOW}).try_acquire(MODEL))

    threads = [threading.Thread(target=take, args=(own,)) for own in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for own in engines:
        own.dispose()
    assert len(waits) == len(engines)
    assert waits.count(0.0) == 1  # one token, one taker


def test_litellm_requests_wait_their_turn(
    engine: Engine, stub_llm: StubLLM, installed: None
) -> None:
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        llm_requests_per_minute={MODEL: SLOW},
    )
    build_worker(settings, engine)  # installs the limit, as `serve` and `worker` do
    limit = rate_limit.installed()
    assert limit is not None
    stub_llm.script(StubReply.label_first({"yes": 0.9, "no": 0.1}))
    spec = JudgeSpec(name="limited", criterion=RESOLVED, model=MODEL, api_base=f"{stub_llm.url}/v1")
    outcome = asyncio.run(LiteLLMBackend(spec, []).judge(make_session()))
    assert outcome.error is None and len(stub_llm.requests) == 1
    # The request spent the bucket's one token: the next must wait.
    assert limit.try_acquire(MODEL) > 0
    build_worker(settings.model_copy(update={"llm_requests_per_minute": {}}), engine)
    assert rate_limit.installed() is None


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="llm_requests_per_minute"):
        Settings(llm_requests_per_minute={MODEL: 0})

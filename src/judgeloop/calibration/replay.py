"""The replay benchmark: the guarantee machinery run on recorded judge outputs.

A replay file is JSONL, one item a line::

    {"id": "q1", "human": ["A", "B", "A"],
     "judges": {"gpt": {"probs": {"A": 0.8, "B": 0.2}}, "rules": {"label": "A", "confidence": 0.6}}}

``human`` holds one label per annotator; the majority counts (ties go to the label that
sorts first, as ``judges.votes`` does for nominal criteria). A judge missing from a line
gave no verdict: it never auto-decides that item. Over S random calibration/test splits,
each method is fitted on the calibration items and judged on the test items: a split is a
success when the auto-decided test items agree with the human majority at rate >= 1-α (or
when nothing is auto-decided). The guarantee is about the rate in the population; a finite
test set scatters around it, and drawing calibration and test from one fixed pool makes them
negatively correlated, so success rates a little below 1-δ are within sampling noise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from judgeloop.calibration._arrays import BoolArray, FloatArray, IntArray
from judgeloop.calibration.guarantee import DEFAULT_MIN_COUNT, run_cascade, run_fixed_sequence
from judgeloop.calibration.learned import LearnedEscalation
from judgeloop.judges.confidence import stated_distribution
from judgeloop.judges.votes import SessionVotes

# A split succeeds when test agreement >= 1-α up to float rounding.
_TOLERANCE = 1e-12


class ReplayError(ValueError):
    """A replay file that cannot be used; the message names file:line."""


class ProbsOutput(BaseModel):
    """A judge's probability for each label (normalised on reading)."""

    model_config = ConfigDict(extra="forbid")
    probs: dict[str, float] = Field(min_length=1)


class LabelOutput(BaseModel):
    """A judge's label with its confidence in [0, 1]."""

    model_config = ConfigDict(extra="forbid")
    label: str
    confidence: float = Field(ge=0.0, le=1.0)


class ReplayItem(BaseModel):
    """One line of a replay file."""

    model_config = ConfigDict(extra="forbid")
    id: str
    human: list[str] = Field(min_length=1)
    judges: dict[str, ProbsOutput | LabelOutput]


@dataclass(frozen=True)
class Replay:
    """A replay file as arrays; judge arrays have shape (judges, items[, labels])."""

    ids: list[str]
    labels: list[str]
    judges: list[str]
    human: IntArray
    predicted: IntArray
    confidence: FloatArray
    distributions: FloatArray

    def agrees(self) -> BoolArray:
        """Whether each judge's label is the human majority's (False without a verdict)."""
        agreed: BoolArray = self.predicted == self.human[None, :]
        return agreed

    def select(self, judges: Sequence[str]) -> Replay:
        """Only the named judges, in that order."""
        unknown = [name for name in judges if name not in self.judges]
        if unknown:
            raise ReplayError(f"unknown judge(s) {unknown}; the file has {self.judges}")
        rows = [self.judges.index(name) for name in judges]
        return Replay(
            ids=self.ids,
            labels=self.labels,
            judges=list(judges),
            human=self.human,
            predicted=self.predicted[rows],
            confidence=self.confidence[rows],
            distributions=self.distributions[rows],
        )


def _read_items(path: Path) -> list[ReplayItem]:
    items: list[ReplayItem] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ReplayError(f"{path}: {error.strerror or error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = ReplayItem.model_validate(json.loads(line))
        except json.JSONDecodeError as error:
            raise ReplayError(f"{path}:{number}: invalid JSON: {error.msg}") from None
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ReplayError(f"{path}:{number}: {where}: {first['msg']}") from None
        for name, output in item.judges.items():
            if isinstance(output, ProbsOutput) and (
                any(p < 0 or not math.isfinite(p) for p in output.probs.values())
                or sum(output.probs.values()) <= 0
            ):
                raise ReplayError(
                    f"{path}:{number}: judges.{name}.probs: need non-negative finite "
                    "probabilities with a positive sum"
                )
        if item.id in seen:
            raise ReplayError(f"{path}:{number}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise ReplayError(f"{path}: no items")
    return items


def load_replay(path: Path) -> Replay:
    """Read and check a replay file; errors name the file and line."""
    items = _read_items(path)
    label_set: set[str] = set()
    judge_names: list[str] = []
    for item in items:
        label_set.update(item.human)
        for name, output in item.judges.items():
            if name not in judge_names:
                judge_names.append(name)
            label_set.update(output.probs if isinstance(output, ProbsOutput) else [output.label])
    labels = sorted(label_set)
    index = {label: position for position, label in enumerate(labels)}
    n_judges, n_items, n_labels = len(judge_names), len(items), len(labels)
    predicted = np.full((n_judges, n_items), -1, dtype=np.int64)
    confidence = np.full((n_judges, n_items), np.nan)
    distributions = np.zeros((n_judges, n_items, n_labels))
    human = np.empty(n_items, dtype=np.int64)
    for column, item in enumerate(items):
        votes = SessionVotes(column, {str(i): label for i, label in enumerate(item.human)})
        human[column] = index[votes.majority(labels, ordinal=False)]
        for name, output in item.judges.items():
            row = judge_names.index(name)
            if isinstance(output, ProbsOutput):
                total = sum(output.probs.values())
                for label, probability in output.probs.items():
                    distributions[row, column, index[label]] = probability / total
                best = int(np.argmax(distributions[row, column]))
                predicted[row, column] = best
                confidence[row, column] = distributions[row, column, best]
            else:
                spread = stated_distribution(output.label, output.confidence, labels)
                distributions[row, column] = [spread[label] for label in labels]
                predicted[row, column] = index[output.label]
                confidence[row, column] = output.confidence
    return Replay(
        ids=[item.id for item in items],
        labels=labels,
        judges=judge_names,
        human=human,
        predicted=predicted,
        confidence=confidence,
        distributions=distributions,
    )


class MethodResult(BaseModel):
    """One method over all splits; ``agreement`` averages the splits with coverage > 0."""

    method: str
    success_rate: float
    coverage: float
    agreement: float | None


class BenchResult(BaseModel):
    """The benchmark's settings and one result per method."""

    alpha: float
    delta: float
    splits: int
    cal_size: int
    n_items: int
    seed: int
    results: list[MethodResult]


@dataclass
class _Tally:
    """Per-split outcomes of one method."""

    coverage: list[float]
    agreement: list[float]

    def add(self, auto: BoolArray, agrees: BoolArray) -> None:
        self.coverage.append(float(auto.mean()) if auto.size else 0.0)
        self.agreement.append(float(agrees[auto].mean()) if auto.any() else math.nan)

    def result(self, method: str, alpha: float) -> MethodResult:
        agreement = np.array(self.agreement)
        decided = ~np.isnan(agreement)
        success = ~decided | (np.nan_to_num(agreement, nan=1.0) >= 1.0 - alpha - _TOLERANCE)
        return MethodResult(
            method=method,
            success_rate=float(success.mean()),
            coverage=float(np.mean(self.coverage)),
            agreement=float(agreement[decided].mean()) if decided.any() else None,
        )


def cascade_name(tiers: Sequence[str]) -> str:
    """How a cascade is named in results."""
    return "cascade: " + " > ".join(tiers)


def run_guarantee_benchmark(
    replay: Replay,
    *,
    alpha: float,
    delta: float,
    cal_size: int,
    splits: int,
    judges: Sequence[str] | None = None,
    cascades: Sequence[Sequence[str]] = (),
    seed: int = 0,
    min_count: int = DEFAULT_MIN_COUNT,
    fit_fraction: float = 0.5,
    on_split: Callable[[], None] | None = None,
) -> BenchResult:
    """Fit every method on ``cal_size`` random items and judge it on the rest, ``splits`` times.

    Methods: fixed-sequence testing on each judge's confidence (the baseline of Trust or
    Escalate), each cascade (tiers named by judge), the learned confidence over the judges
    (``LearnedEscalation``, when there are at least two), and per judge the baselines "no
    abstention" and "fixed 0.5 threshold" (auto-decide when confidence >= 0.5). ``judges``
    (default: all) chooses the judges of the single-judge methods and the learned one;
    cascades may use any judge of the file.
    """
    n_items = len(replay.ids)
    if not 1 <= cal_size < n_items:
        raise ReplayError(f"cal_size must lie in [1, {n_items - 1}] for {n_items} items")
    if splits < 1:
        raise ReplayError("splits must be at least 1")
    selected = replay.select(judges or replay.judges)
    for tiers in cascades:
        replay.select(tiers)
    agrees = replay.agrees()
    all_rows = {name: row for row, name in enumerate(replay.judges)}
    rows = {name: all_rows[name] for name in selected.judges}
    tallies: dict[str, _Tally] = {}

    def tally(method: str) -> _Tally:
        return tallies.setdefault(method, _Tally([], []))

    learned_name = f"learned: stacked {len(rows)} judges"
    stacked_inputs = selected.distributions.transpose(1, 0, 2)
    rng = np.random.default_rng(seed)
    for split in range(splits):
        order = rng.permutation(n_items)
        cal, test = order[:cal_size], order[cal_size:]
        for name, row in rows.items():
            outcome = run_fixed_sequence(
                replay.confidence[row, cal],
                ~agrees[row, cal],
                alpha=alpha,
                delta=delta,
                min_count=min_count,
            )
            tally(name).add(
                _at_least(replay.confidence[row, test], outcome.lambda_), agrees[row, test]
            )
        for tiers in cascades:
            tier_rows = [all_rows[name] for name in tiers]
            outcomes = run_cascade(
                replay.confidence[tier_rows][:, cal],
                agrees[tier_rows][:, cal],
                alpha=alpha,
                delta=delta,
                min_count=min_count,
            )
            auto = np.zeros(test.size, dtype=bool)
            agreed = np.zeros(test.size, dtype=bool)
            for row, outcome in zip(tier_rows, outcomes, strict=True):
                decides = _at_least(replay.confidence[row, test], outcome.lambda_) & ~auto
                agreed |= decides & agrees[row, test]
                auto |= decides
            tally(cascade_name(tiers)).add(auto, agreed)
        if len(rows) >= 2:
            learned = LearnedEscalation(
                alpha=alpha,
                delta=delta,
                fit_fraction=fit_fraction,
                min_count=min_count,
                seed=seed * 1_000_003 + split,
            ).fit(stacked_inputs[cal], replay.human[cal])
            labels, _, auto = learned.predict(stacked_inputs[test])
            tally(learned_name).add(auto, labels == replay.human[test])
        for name, row in rows.items():
            known = ~np.isnan(replay.confidence[row, test])
            tally(f"no abstention: {name}").add(known, agrees[row, test])
            tally(f"fixed 0.5 threshold: {name}").add(
                _at_least(replay.confidence[row, test], 0.5), agrees[row, test]
            )
        if on_split is not None:
            on_split()
    return BenchResult(
        alpha=alpha,
        delta=delta,
        splits=splits,
        cal_size=cal_size,
        n_items=n_items,
        seed=seed,
        results=[entry.result(method, alpha) for method, entry in tallies.items()],
    )


def _at_least(confidence: FloatArray, threshold: float | None) -> BoolArray:
    if threshold is None:
        return np.zeros(confidence.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return confidence >= threshold

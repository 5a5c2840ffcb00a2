"""Deriving a judge spec from SME annotations: splits, rubric, few-shot examples.

Offline, derivation is deterministic: the same labels and seed give the same file and version.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from judgeloop.judges.loading import load_inputs, session_keys_of
from judgeloop.judges.outcome import ResolvedExample, SessionInput
from judgeloop.judges.render import render_transcript
from judgeloop.judges.spec import (
    BackendName,
    ClassifierSpec,
    ConfidenceSpec,
    DerivationRecord,
    FewShotExample,
    JudgeSpec,
    PromptSpec,
)
from judgeloop.judges.splits import DEFAULT_SIZES, stratified_split
from judgeloop.judges.votes import SessionVotes, collect_votes, label_snapshot, majority_labels
from judgeloop.models import Criterion, CriterionCreate, SessionRef
from judgeloop.store import (
    db_session,
    get_criterion,
    get_splits,
    labels_for_criterion,
    record_splits,
)

LOCAL_MODEL = "judgeloop-local/gemma3-270m"
DERIVING_SOURCES = ("sme", "adjudication")


@dataclass(frozen=True)
class DeriveOptions:
    """Choices of one derivation."""

    criterion: str
    name: str
    backend: BackendName = "classifier"
    model: str | None = None
    seed: int = 0
    sizes: tuple[tuple[str, float], ...] = tuple(DEFAULT_SIZES.items())
    examples: int = 6
    borderline: int = 2
    where: tuple[tuple[str, str], ...] = ()
    """Only sessions whose metadata has these key=value pairs (e.g. batch=main)."""


@dataclass
class DeriveResult:
    """The derived spec and what it was derived from."""

    spec: JudgeSpec
    partition_counts: dict[str, int]
    derive_sessions: int
    evaluation: list[ResolvedExample]
    """Derive-partition sessions not shown as examples, with SME majority and rationale."""


def derive_spec(engine: Engine, options: DeriveOptions, *, actor: str) -> DeriveResult:
    """Split the criterion's labelled sessions, then write rubric and examples from `derive`."""
    with db_session(engine) as db:
        criterion = get_criterion(db, options.criterion)
        assert criterion.id is not None
        labels = [
            row for row in labels_for_criterion(db, criterion.id) if row.source in DERIVING_SOURCES
        ]
        if not labels:
            raise ValueError(f"criterion {criterion.name!r} has no SME labels to derive from")
        votes = collect_votes(labels)
        majority = majority_labels(criterion, votes)
        if options.where:
            majority = _matching(db, majority, dict(options.where))
            if not majority:
                raise ValueError(f"no labelled session of {criterion.name!r} matches --where")
            labels = [row for row in labels if row.session_id in majority]
        assignment = _assign_partitions(db, criterion.id, majority, options, actor=actor)
        derive_ids = sorted(sid for sid in majority if assignment.get(sid) == "derive")
        session_keys = session_keys_of(db, majority)
        inputs = load_inputs(db, derive_ids)
        if len({majority[sid] for sid in derive_ids}) < 2:
            raise ValueError(
                f"the derive partition of {criterion.name!r} holds fewer than two labels; "
                "label more sessions or change --sizes"
            )
        examples = _pick_examples(criterion, derive_ids, votes, majority, inputs, options)
        spec = _build_spec(criterion, options, votes, majority, derive_ids, inputs, examples)
        spec = spec.model_copy(
            update={
                "derivation": DerivationRecord(
                    seed=options.seed,
                    label_snapshot=label_snapshot(labels, session_keys),
                    split_sizes=dict(options.sizes),
                    where=dict(options.where),
                )
            }
        )
    counts = Counter(assignment[sid] for sid in majority if sid in assignment)
    shown = {(e.session.source, e.session.external_id) for e in spec.examples}
    evaluation = [
        ResolvedExample(
            example=FewShotExample(
                session=_ref(inputs[sid]),
                label=majority[sid],
                rationale=_rationale(votes[sid], majority[sid])[1],
                consensus=votes[sid].consensus,
            ),
            session=inputs[sid],
        )
        for sid in derive_ids
        if sid in inputs and (inputs[sid].source, inputs[sid].external_id) not in shown
    ]
    return DeriveResult(
        spec=spec,
        partition_counts=dict(counts),
        derive_sessions=len(derive_ids),
        evaluation=evaluation,
    )


def _matching(db: Any, majority: dict[int, str], where: dict[str, str]) -> dict[int, str]:
    inputs = load_inputs(db, majority)
    return {
        sid: label
        for sid, label in majority.items()
        if all(str(inputs[sid].metadata.get(k)) == v for k, v in where.items())
    }


def _assign_partitions(
    db: Any, criterion_id: int, majority: dict[int, str], options: DeriveOptions, *, actor: str
) -> dict[int, str]:
    existing = get_splits(db, criterion_id)
    unassigned = {sid: label for sid, label in majority.items() if sid not in existing}
    if not unassigned:
        return existing
    new = stratified_split(unassigned, dict(options.sizes), options.seed)
    return record_splits(db, criterion_id, new, seed=options.seed, actor=actor)


def _ref(session: SessionInput) -> SessionRef:
    return SessionRef(source=session.source, external_id=session.external_id)


def _rationale(votes: SessionVotes, label: str) -> tuple[str | None, str]:
    """The longest rationale among the annotators who gave ``label`` (ties: by name)."""
    candidates = sorted(
        (annotator for annotator, value in votes.by_annotator.items() if value == label),
        key=lambda annotator: (-len(votes.rationales.get(annotator, "")), annotator),
    )
    if not candidates:
        return None, ""
    return candidates[0], votes.rationales.get(candidates[0], "")


def _pick_examples(
    criterion: Criterion,
    derive_ids: list[int],
    votes: dict[int, SessionVotes],
    majority: dict[int, str],
    inputs: dict[int, SessionInput],
    options: DeriveOptions,
) -> list[FewShotExample]:
    """Every label covered by a typical consensus item, then borderline items, then diversity."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    ids = [sid for sid in derive_ids if sid in inputs]
    if not ids or options.examples <= 0:
        return []
    vectors = TfidfVectorizer(sublinear_tf=True, min_df=1).fit_transform(
        [render_transcript(inputs[sid]) for sid in ids]
    )
    row_of = {sid: index for index, sid in enumerate(ids)}
    chosen: list[int] = []

    def typical(candidates: list[int]) -> int:
        matrix = vectors[[row_of[sid] for sid in candidates]]
        centroid = np.asarray(matrix.mean(axis=0))
        scores = np.asarray(matrix @ centroid.T).ravel()
        return candidates[int(np.argmax(scores))]

    for label in criterion.labels:
        consensus = [s for s in ids if majority[s] == label and votes[s].consensus]
        pool = consensus or [s for s in ids if majority[s] == label]
        if pool and len(chosen) < options.examples:
            chosen.append(typical(pool))
    borderline = [s for s in ids if not votes[s].consensus and s not in chosen]
    for _ in range(min(options.borderline, options.examples - len(chosen))):
        if not borderline:
            break
        pick = _most_different(borderline, chosen, vectors, row_of)
        chosen.append(pick)
        borderline.remove(pick)
    remaining = [s for s in ids if votes[s].consensus and s not in chosen]
    while len(chosen) < options.examples and remaining:
        pick = _most_different(remaining, chosen, vectors, row_of)
        chosen.append(pick)
        remaining.remove(pick)
    examples = []
    for sid in chosen:
        annotator, rationale = _rationale(votes[sid], majority[sid])
        examples.append(
            FewShotExample(
                session=_ref(inputs[sid]),
                label=majority[sid],
                rationale=rationale,
                annotator=annotator,
                consensus=votes[sid].consensus,
            )
        )
    return examples


def _most_different(
    candidates: list[int], chosen: list[int], vectors: Any, row_of: dict[int, int]
) -> int:
    """The candidate least similar to everything already chosen (max-min diversity)."""
    import numpy as np

    if not chosen:
        return candidates[0]
    similarity = vectors[[row_of[s] for s in candidates]] @ vectors[[row_of[s] for s in chosen]].T
    closest = np.asarray(similarity.max(axis=1).todense()).ravel()
    return candidates[int(np.argmin(closest))]


def _build_rubric(
    criterion: Criterion,
    votes: dict[int, SessionVotes],
    majority: dict[int, str],
    derive_ids: list[int],
) -> str:
    lines = [criterion.description.strip() or f"Judge {criterion.name}.", "", "Labels:"]
    for label in criterion.labels:
        anchor = criterion.anchors.get(label, "")
        lines.append(f"- {label}: {anchor}".rstrip())
        cited = _cited_rationales(label, votes, majority, derive_ids)
        for rationale in cited:
            lines.append(f'    SMEs wrote: "{rationale}"')
    disagreements = sum(not votes[s].consensus for s in derive_ids)
    lines += [
        "",
        f"The SMEs disagreed on {disagreements} of {len(derive_ids)} derive sessions; judge by the "
        "label descriptions above and the whole conversation, including tool calls and results.",
    ]
    return "\n".join(lines)


def _cited_rationales(
    label: str,
    votes: dict[int, SessionVotes],
    majority: dict[int, str],
    derive_ids: list[int],
    limit: int = 2,
) -> list[str]:
    """Distinct rationales of consensus sessions with this label, shortest first."""
    seen: list[str] = []
    pool = sorted(
        {
            votes[s].rationales.get(annotator, "").strip()
            for s in derive_ids
            if majority[s] == label and votes[s].consensus
            for annotator in votes[s].by_annotator
        }
        - {""},
        key=lambda text: (len(text), text),
    )
    for rationale in pool:
        if len(seen) >= limit:
            break
        seen.append(rationale)
    return seen


def _build_spec(
    criterion: Criterion,
    options: DeriveOptions,
    votes: dict[int, SessionVotes],
    majority: dict[int, str],
    derive_ids: list[int],
    inputs: dict[int, SessionInput],
    examples: list[FewShotExample],
) -> JudgeSpec:
    classifier = None
    confidence = ConfidenceSpec(method="logprobs")
    model = options.model
    if options.backend == "classifier":
        confidence = ConfidenceSpec(method="classifier")
        classifier = ClassifierSpec(
            seed=options.seed,
            training=[
                FewShotExample(
                    session=_ref(inputs[sid]), label=majority[sid], consensus=votes[sid].consensus
                )
                for sid in derive_ids
                if sid in inputs
            ],
        )
    elif options.backend == "local":
        model = model or LOCAL_MODEL
        examples = examples[: max(len(criterion.labels), 3)]  # a 270M model has a short context
    return JudgeSpec(
        name=options.name,
        criterion=CriterionCreate.model_validate(criterion, from_attributes=True),
        backend=options.backend,
        model=model,
        prompt=PromptSpec(),
        rubric=_build_rubric(criterion, votes, majority, derive_ids),
        examples=examples,
        confidence=confidence,
        classifier=classifier,
    )

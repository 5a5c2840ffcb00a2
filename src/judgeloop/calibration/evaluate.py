"""Measuring a stored judge version against held-out SME labels, partition by partition."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine

from judgeloop.judges.loading import session_keys_of
from judgeloop.judges.spec import JudgeSpec
from judgeloop.judges.votes import collect_votes, label_snapshot, majority_labels
from judgeloop.store import (
    db_session,
    get_criterion,
    get_splits,
    judgments_for_version,
    labels_for_criterion,
)

HUMAN_SOURCES = ("sme", "adjudication")


@dataclass
class PartitionData:
    """A judge's outcomes on one partition, aligned with the SME labels of each session."""

    session_ids: list[int] = field(default_factory=list)
    human: list[str] = field(default_factory=list)
    predicted: list[str | None] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    annotations: dict[int, dict[str, str]] = field(default_factory=dict)
    cost_usd: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    snapshot: str = ""

    @property
    def agrees(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Whether each judgment matched the SME majority (an error never does)."""
        return np.array([p == h for p, h in zip(self.predicted, self.human, strict=True)])

    @property
    def errors(self) -> int:
        """Judgments that failed."""
        return sum(p is None for p in self.predicted)


def partition_data(
    engine: Engine,
    spec: JudgeSpec,
    partitions: tuple[str, ...],
    *,
    sources: tuple[str, ...] = HUMAN_SOURCES,
) -> PartitionData:
    """Judgments of ``spec``'s version on sessions of ``partitions`` that have human labels.

    ``sources`` are the label sources that form the human reference (by default SME and
    adjudication labels; recalibration adds review and audit labels).
    """
    with db_session(engine) as db:
        criterion = get_criterion(db, spec.criterion.name)
        assert criterion.id is not None
        labels = [row for row in labels_for_criterion(db, criterion.id) if row.source in sources]
        splits = get_splits(db, criterion.id)
        wanted = {sid for sid, p in splits.items() if p in partitions}
        labels = [row for row in labels if row.session_id in wanted]
        votes = collect_votes(labels)
        majority = majority_labels(criterion, votes)
        judgments = {j.session_id: j for j in judgments_for_version(db, spec.version)}
        snapshot = label_snapshot(labels, session_keys_of(db, votes)) if labels else ""
    data = PartitionData(snapshot=snapshot)
    for session_id in sorted(majority):
        judgment = judgments.get(session_id)
        if judgment is None:
            continue
        data.session_ids.append(session_id)
        data.human.append(majority[session_id])
        ok = judgment.error is None and judgment.label is not None
        data.predicted.append(judgment.label if ok else None)
        raw = judgment.raw_confidence
        data.confidence.append(float(raw) if ok and raw is not None else math.nan)
        data.annotations[session_id] = dict(votes[session_id].by_annotator)
        data.cost_usd.append(judgment.cost_usd)
        data.latency_ms.append(judgment.latency_ms)
    return data

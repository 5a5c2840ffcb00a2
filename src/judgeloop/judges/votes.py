"""Aggregating several annotators' labels of one session into a majority and a consensus flag."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from judgeloop.models import Criterion, HumanLabel


@dataclass
class SessionVotes:
    """Every annotator's latest label for one session on one criterion."""

    session_id: int
    by_annotator: dict[str, str] = field(default_factory=dict)
    rationales: dict[str, str] = field(default_factory=dict)

    def majority(self, labels: list[str], ordinal: bool) -> str:
        """The most frequent label; ties go to the median for ordinal criteria.

        For nominal criteria a tie goes to the label listed first in the criterion, which
        keeps the choice deterministic; such a session is never a consensus item.
        """
        counts = Counter(self.by_annotator.values())
        top = max(counts.values())
        tied = [label for label in labels if counts.get(label, 0) == top]
        if len(tied) == 1 or not ordinal:
            return tied[0]
        ranks = sorted(labels.index(value) for value in self.by_annotator.values())
        return labels[ranks[(len(ranks) - 1) // 2]]

    @property
    def consensus(self) -> bool:
        """All annotators gave the same label (and there were at least two)."""
        return len(self.by_annotator) >= 2 and len(set(self.by_annotator.values())) == 1


def collect_votes(labels: Iterable[HumanLabel]) -> dict[int, SessionVotes]:
    """Group labels by session; an annotator's newer label replaces their older one."""
    votes: dict[int, SessionVotes] = defaultdict(lambda: SessionVotes(0))
    for label in sorted(labels, key=lambda row: (row.created_at, row.id or 0)):
        entry = votes[label.session_id]
        entry.session_id = label.session_id
        entry.by_annotator[label.annotator] = label.value
        entry.rationales[label.annotator] = label.rationale
    return dict(votes)


def majority_labels(criterion: Criterion, votes: dict[int, SessionVotes]) -> dict[int, str]:
    """Session id -> majority label."""
    ordinal = criterion.kind == "ordinal"
    return {sid: v.majority(list(criterion.labels), ordinal) for sid, v in votes.items()}


def label_snapshot(labels: Iterable[HumanLabel], session_keys: dict[int, tuple[str, str]]) -> str:
    """A hash of the labels a derivation or calibration used, independent of row ids."""
    identity = sorted(
        (*session_keys[row.session_id], row.annotator, row.value, row.source) for row in labels
    )
    return hashlib.sha256(json.dumps(identity, ensure_ascii=False).encode()).hexdigest()[:16]

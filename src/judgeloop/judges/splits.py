"""Seeded, stratified assignment of sessions to the derive, calibration and test partitions."""

from __future__ import annotations

import random
from collections import defaultdict

from judgeloop.models import PARTITIONS

DEFAULT_SIZES = {"derive": 0.4, "calibration": 0.3, "test": 0.3}


def parse_sizes(text: str) -> dict[str, float]:
    """Read "derive,calibration,test" shares such as "0.4,0.3,0.3"."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 3:
        raise ValueError(f"sizes need three shares (derive,calibration,test), got {text!r}")
    try:
        shares = [float(part) for part in parts]
    except ValueError as error:
        raise ValueError(f"sizes must be numbers, got {text!r}") from error
    if any(share <= 0 for share in shares) or abs(sum(shares) - 1) > 1e-6:
        raise ValueError(f"sizes must be positive and add up to 1, got {text!r}")
    return dict(zip(PARTITIONS, shares, strict=True))


def stratified_split(
    majority: dict[int, str], sizes: dict[str, float], seed: int
) -> dict[int, str]:
    """Assign each session a partition, keeping every label's share similar in each partition.

    Within each label's stratum the sessions are shuffled with ``seed`` and cut by the
    largest-remainder method, so the same sessions and seed always give the same split.
    """
    strata: dict[str, list[int]] = defaultdict(list)
    for session_id, label in sorted(majority.items()):
        strata[label].append(session_id)
    assignment: dict[int, str] = {}
    for label in sorted(strata):
        members = strata[label]
        random.Random(f"{seed}:{label}").shuffle(members)
        counts = _largest_remainder(len(members), sizes)
        start = 0
        for partition in PARTITIONS:
            for session_id in members[start : start + counts[partition]]:
                assignment[session_id] = partition
            start += counts[partition]
    return assignment


def _largest_remainder(total: int, sizes: dict[str, float]) -> dict[str, int]:
    exact = {p: total * sizes[p] for p in PARTITIONS}
    counts: dict[str, int] = {p: int(exact[p]) for p in PARTITIONS}
    leftovers = sorted(PARTITIONS, key=lambda p: (-(exact[p] - counts[p]), PARTITIONS.index(p)))
    for partition in leftovers[: total - sum(counts.values())]:
        counts[partition] += 1
    return counts

"""Stream drift detectors with JSON state: ``update(state, x) -> (state, alarmed)``.

Each detector is a frozen set of parameters; its state is a plain dict (what the store keeps in
``DriftMonitor.state``), never mutated in place. ``alarmed`` says whether the detector sees
drift now; the store latches it until someone resets the criterion's monitors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

JsonState = dict[str, Any]


@dataclass(frozen=True)
class PageHinkley:
    """Page-Hinkley test for a drop in the mean of a stream (here: 0/1 agreement).

    The statistic accumulates ``x - running mean + delta``; a drop in the mean pulls it down
    from its running maximum, and an alarm is raised when the fall exceeds ``threshold``.
    ``delta`` is the tolerated drop per observation: it keeps a stable stream from alarming.
    """

    name: ClassVar[str] = "page_hinkley"
    # Tuned on simulated 0/1 streams: no alarm in 2,000 observations at a steady 85% (1.5% of
    # runs at 70%); a drop from 90% to 60% is found after about 50 observations.
    delta: float = 0.1
    threshold: float = 10.0
    min_samples: int = 30

    def update(self, state: Mapping[str, Any] | None, x: float) -> tuple[JsonState, bool]:
        """Add one observation."""
        count = int((state or {}).get("n", 0)) + 1
        mean = float((state or {}).get("mean", 0.0))
        mean += (x - mean) / count
        cumulative = float((state or {}).get("cumulative", 0.0)) + x - mean + self.delta
        maximum = max(float((state or {}).get("maximum", 0.0)), cumulative)
        statistic = maximum - cumulative
        alarmed = count >= self.min_samples and statistic > self.threshold
        new_state = {
            "n": count,
            "mean": mean,
            "cumulative": cumulative,
            "maximum": maximum,
            "statistic": statistic,
        }
        return new_state, alarmed


def _two_proportion_z(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """The z of rate b minus rate a under the pooled null; 0 when the pooled rate is 0 or 1."""
    pooled = (successes_a + successes_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0:
        return 0.0
    return (successes_b / n_b - successes_a / n_a) / math.sqrt(variance)


@dataclass(frozen=True)
class AgreementWindow:
    """A windowed two-proportion test: recent agreement vs everything before it.

    The last ``window`` observations form the recent sample; older ones move into the
    reference counts. Alarms when the recent rate is lower with ``z < -z_alarm``.
    """

    name: ClassVar[str] = "agreement_window"
    window: int = 50
    min_reference: int = 50
    # The test runs after every observation, thousands of overlapping looks: the per-look level
    # must be tiny for the run to stay quiet (about 1.5% false alarms in 2,000 observations at a
    # steady 85%); a drop from 90% to 60% is still found after about 40 observations.
    z_alarm: float = 4.5

    def update(self, state: Mapping[str, Any] | None, x: float) -> tuple[JsonState, bool]:
        """Add one observation (1 agreed, 0 disagreed)."""
        recent = [int(v) for v in (state or {}).get("recent", [])] + [1 if x else 0]
        reference_n = int((state or {}).get("reference_n", 0))
        reference_agreed = int((state or {}).get("reference_agreed", 0))
        while len(recent) > self.window:
            reference_agreed += recent.pop(0)
            reference_n += 1
        z = 0.0
        if len(recent) == self.window and reference_n >= self.min_reference:
            z = _two_proportion_z(reference_agreed, reference_n, sum(recent), len(recent))
        new_state = {
            "recent": recent,
            "reference_n": reference_n,
            "reference_agreed": reference_agreed,
            "z": z,
        }
        return new_state, z < -self.z_alarm


def population_stability_index(
    expected: Mapping[str, float], observed: Mapping[str, float], *, floor: float = 1e-4
) -> float:
    """PSI between two histograms (counts or shares) over the union of their labels."""
    labels = sorted(set(expected) | set(observed))
    expected_total = sum(max(0.0, float(v)) for v in expected.values())
    observed_total = sum(max(0.0, float(v)) for v in observed.values())
    if not labels or expected_total <= 0 or observed_total <= 0:
        return 0.0
    psi = 0.0
    for label in labels:
        # A label one side never saw would give an infinite term; a small floor keeps the
        # index finite while still making a new or vanished label count heavily.
        p = max(float(expected.get(label, 0.0)) / expected_total, floor)
        q = max(float(observed.get(label, 0.0)) / observed_total, floor)
        psi += (q - p) * math.log(q / p)
    return psi


@dataclass(frozen=True)
class LabelPSI:
    """PSI of the judge's label histogram over the last ``window`` labels vs a reference.

    The reference is the judge's label histogram on the calibration partition. Alarms above
    ``threshold`` (0.25: a large shift, by the usual reading) once ``min_count`` labels are in.
    """

    name: ClassVar[str] = "label_psi"
    reference: Mapping[str, float] = field(default_factory=dict)
    window: int = 200
    min_count: int = 50
    threshold: float = 0.25

    def update(self, state: Mapping[str, Any] | None, x: str) -> tuple[JsonState, bool]:
        """Add one judge label."""
        recent = [str(v) for v in (state or {}).get("recent", [])] + [str(x)]
        del recent[: max(0, len(recent) - self.window)]
        counts: dict[str, float] = {}
        for label in recent:
            counts[label] = counts.get(label, 0.0) + 1
        psi = population_stability_index(self.reference, counts)
        new_state = {"recent": recent, "psi": psi}
        return new_state, len(recent) >= self.min_count and psi > self.threshold

"""The human ceiling: how well the subject-matter experts agree among themselves.

A judge cannot be expected to agree with "the humans" more than they agree with each other.
Three views, each with a percentile bootstrap interval over items:

- Krippendorff's alpha among all annotators (missing labels allowed);
- the mean Cohen's kappa over annotator pairs that share enough items;
- leave-one-annotator-out: for every (item, annotator), does that annotator's label match the
  majority of the *other* annotators of the item? Beside it, the same question for the judge
  against the very same leave-one-out majorities, so SME and judge are scored on equal footing.
  When the others' majority is tied, a label in the tie earns 1/(number of tied labels): the
  expected credit under a random tie-break, the same rule for SME and judge.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations

import numpy as np
from pydantic import BaseModel

from judgeloop.calibration._arrays import FloatArray, IntArray
from judgeloop.calibration.bootstrap import Interval, WeightedStatistic, bootstrap_intervals
from judgeloop.calibration.metrics import (
    AlphaLevel,
    alpha_from_coincidences,
    alpha_level_for,
    cohen_kappa,
    encode_labels,
    kappa_weighting_for,
    unit_coincidences,
    value_counts,
    weighted_confusions,
)
from judgeloop.models import CriterionKind

Annotations = Mapping[Hashable, Mapping[str, str]]
"""item id -> annotator -> label."""


class AnnotatorAgreement(BaseModel):
    """One annotator's leave-one-out agreement, and the judge's on the same items."""

    annotator: str
    n: int
    sme: float
    judge: float | None


class HumanCeiling(BaseModel):
    """Agreement among the annotators, and the judge measured the same way beside them."""

    n_items: int
    n_annotators: int
    n_pairable_items: int
    alpha_level: AlphaLevel
    krippendorff_alpha: Interval
    n_annotator_pairs: int
    mean_pairwise_kappa: Interval | None
    leave_one_out_items: int
    leave_one_out_sme: Interval | None
    leave_one_out_judge: Interval | None
    judge_minus_sme: Interval | None
    per_annotator: list[AnnotatorAgreement]


def leave_one_out_credit(label: str, others: Sequence[str]) -> float:
    """1/|tie| when ``label`` is among the most frequent of ``others``, else 0."""
    counts = Counter(others)
    top = max(counts.values())
    tied = [value for value, count in counts.items() if count == top]
    return 1.0 / len(tied) if label in tied else 0.0


def _pair_statistics(
    items: Sequence[Mapping[str, str]],
    annotators: Sequence[str],
    labels: Sequence[str],
    kind: CriterionKind,
    min_shared_items: int,
) -> list[WeightedStatistic]:
    weighting = kappa_weighting_for(kind)
    statistics: list[WeightedStatistic] = []
    for first, second in combinations(annotators, 2):
        shared = [i for i, item in enumerate(items) if first in item and second in item]
        if len(shared) < min_shared_items:
            continue
        index = np.array(shared)
        codes_first = encode_labels([items[i][first] for i in shared], labels)
        codes_second = encode_labels([items[i][second] for i in shared], labels)

        def kappa(
            weights: FloatArray,
            index: IntArray = index,
            codes_first: IntArray = codes_first,
            codes_second: IntArray = codes_second,
        ) -> FloatArray:
            confusions = weighted_confusions(
                codes_first, codes_second, len(labels), weights[:, index]
            )
            return cohen_kappa(confusions, weighting)

        statistics.append(kappa)
    return statistics


def human_ceiling(
    annotations: Annotations,
    labels: Sequence[str],
    kind: CriterionKind,
    *,
    judge: Mapping[Hashable, str] | None = None,
    min_shared_items: int = 5,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> HumanCeiling:
    """The SMEs' agreement among themselves and, given ``judge`` labels, the judge beside them.

    Pairwise kappa uses annotator pairs with at least ``min_shared_items`` items in common.
    With ``judge``, the leave-one-out comparison uses only items the judge labelled, for SME
    and judge alike. All intervals come from the same resamples of items.
    """
    item_ids = [item for item, by_annotator in annotations.items() if by_annotator]
    items = [annotations[item] for item in item_ids]
    if not items:
        raise ValueError("no annotated items")
    annotators = sorted({annotator for item in items for annotator in item})
    level = alpha_level_for(kind)
    counts = value_counts([list(item.values()) for item in items], labels)
    contributions = unit_coincidences(counts)
    n_labels = len(labels)

    statistics: dict[str, WeightedStatistic] = {
        "alpha": lambda weights: alpha_from_coincidences(
            (weights @ contributions).reshape(-1, n_labels, n_labels), level
        )
    }
    pair_statistics = _pair_statistics(items, annotators, labels, kind, min_shared_items)
    if pair_statistics:

        def mean_kappa(weights: FloatArray) -> FloatArray:
            kappas = np.stack([statistic(weights) for statistic in pair_statistics])
            with np.errstate(invalid="ignore"):
                finite = np.isfinite(kappas)
                total = np.where(finite, kappas, 0.0).sum(axis=0)
                return np.where(finite.any(axis=0), total / finite.sum(axis=0), np.nan)

        statistics["pairwise_kappa"] = mean_kappa

    sme_credit = np.zeros(len(items))
    judge_credit = np.zeros(len(items))
    terms = np.zeros(len(items))
    per_annotator: dict[str, list[float]] = {a: [0.0, 0.0, 0.0] for a in annotators}
    for position, (item_id, item) in enumerate(zip(item_ids, items, strict=True)):
        judge_label = judge.get(item_id) if judge is not None else None
        if len(item) < 2 or (judge is not None and judge_label is None):
            continue
        for annotator, label in item.items():
            others = [other for name, other in item.items() if name != annotator]
            sme = leave_one_out_credit(label, others)
            by_judge = leave_one_out_credit(judge_label, others) if judge_label else 0.0
            sme_credit[position] += sme
            judge_credit[position] += by_judge
            terms[position] += 1
            tally = per_annotator[annotator]
            tally[0] += 1
            tally[1] += sme
            tally[2] += by_judge

    has_loo = bool(terms.sum() > 0)
    if has_loo:

        def share(credit: FloatArray) -> WeightedStatistic:
            return lambda weights: (weights @ credit) / np.maximum(weights @ terms, 1e-300)

        statistics["loo_sme"] = share(sme_credit)
        if judge is not None:
            statistics["loo_judge"] = share(judge_credit)
            statistics["loo_difference"] = share(judge_credit - sme_credit)

    intervals = bootstrap_intervals(
        statistics, len(items), n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    return HumanCeiling(
        n_items=len(items),
        n_annotators=len(annotators),
        n_pairable_items=int(np.sum(counts.sum(axis=1) >= 2)),
        alpha_level=level,
        krippendorff_alpha=intervals["alpha"],
        n_annotator_pairs=len(pair_statistics),
        mean_pairwise_kappa=intervals.get("pairwise_kappa"),
        leave_one_out_items=int(np.sum(terms > 0)),
        leave_one_out_sme=intervals.get("loo_sme"),
        leave_one_out_judge=intervals.get("loo_judge"),
        judge_minus_sme=intervals.get("loo_difference"),
        per_annotator=[
            AnnotatorAgreement(
                annotator=annotator,
                n=int(n),
                sme=sme / n,
                judge=by_judge / n if judge is not None else None,
            )
            for annotator, (n, sme, by_judge) in per_annotator.items()
            if n > 0
        ],
    )

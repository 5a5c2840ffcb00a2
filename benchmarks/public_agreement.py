"""Recorded LLM judges against human annotators, beside the human ceiling, on public data.

Usage::

    python benchmarks/public_agreement.py [--data-dir DIR] [--quick] [--json] [--resamples N]

Reads the public datasets with judgeloop's converters (nothing is copied or stored) and
reports, each figure with a 95% percentile bootstrap interval over items (seed 0):

- **PandaLM** (999 pairs, 3 annotators, labels 1 / 2 / tie): GPT-3.5 and PandaLM-7B against the
  annotators' majority (agreement, Cohen's kappa), beside the human ceiling: Krippendorff's
  alpha among the annotators, their mean pairwise kappa, and leave-one-annotator-out (does one
  annotator match the other two's majority? does the judge, on the same majorities?). Then the
  two judges compared on the items both judged, as ``judgeloop compare --replay``: paired
  bootstrap differences and McNemar's exact test;
- **XSTest** (2,250 completions, labels full_compliance / full_refusal / partial_refusal): the
  GPT-4 and string-match judges against the adjudicated ``final_label``, the two annotators'
  agreement with each other (and each judge scored leave-one-out against them), and GPT-4
  vs string match compared;
- **QAGS** (953 summary sentences, 3 crowd workers each, yes/no): the human ceiling alone
  (no judge outputs are recorded), overall and per source (CNN/DM, XSum).

``--quick`` uses 300 bootstrap resamples instead of 2,000. ``--json`` prints one JSON object
as the last line. A missing data directory (or dataset folder) is skipped with a message and
exit status 0. Default data directory: ``$JUDGELOOP_PUBLIC_DATA_DIR``, else
``../shared/datasets`` next to the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from judgeloop.calibration.bootstrap import Interval
    from judgeloop.calibration.ceiling import HumanCeiling
    from judgeloop.calibration.replay_compare import ReplayComparison
    from judgeloop.sessions.public import Converted

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "JUDGELOOP_PUBLIC_DATA_DIR"
SEED = 0


def default_data_dir() -> Path:
    """``$JUDGELOOP_PUBLIC_DATA_DIR``, else ``../shared/datasets`` next to the repository."""
    configured = os.environ.get(DATA_ENV)
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "datasets"


# --------------------------------------------------------------------------- formatting


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (readable as plain text, pasteable into docs)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def show(interval: Interval | None) -> str:
    """``0.716 [0.686, 0.742]`` or ``-``."""
    if interval is None or interval.estimate is None:
        return "-"
    if interval.low is None or interval.high is None:
        return f"{interval.estimate:.3f}"
    return f"{interval.estimate:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def as_dict(interval: Interval | None) -> dict[str, float | None] | None:
    """An interval for the JSON summary."""
    if interval is None:
        return None
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}


# --------------------------------------------------------------------------- shared steps


def annotations(converted: Converted, keep: set[str] | None = None) -> dict[str, dict[str, str]]:
    """Item id -> annotator -> label, optionally only the annotators in ``keep``."""
    by_item: dict[str, dict[str, str]] = {s.external_id: {} for s in converted.sessions}
    for label in converted.labels:
        if keep is None or label.annotator in keep:
            by_item[label.session.external_id][label.annotator] = label.value
    return by_item


def strict_majority(labels: Mapping[str, str]) -> str | None:
    """The most frequent label, or None when the most frequent labels are tied."""
    counts = Counter(labels.values()).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def judge_labels(converted: Converted, judge: str) -> dict[str, str]:
    """Item id -> the judge's recorded label (items it gave no readable verdict are absent)."""
    labels = {}
    for row in converted.replay:
        output = row["judges"].get(judge)
        if output is None:
            continue
        if "label" in output:
            labels[row["id"]] = output["label"]
        else:
            probs = output["probs"]
            labels[row["id"]] = max(probs, key=probs.get)
    return labels


def judge_vs_reference(
    reference: Mapping[str, str],
    judged: Mapping[str, str],
    labels: list[str],
    kind: Any,
    resamples: int,
) -> dict[str, Any]:
    """Agreement and kappa of a judge with a reference label, on the items it judged."""
    from judgeloop.calibration.metrics import agreement_report

    items = [item for item in reference if item in judged]
    report = agreement_report(
        [reference[i] for i in items],
        [judged[i] for i in items],
        labels,
        kind,
        n_resamples=resamples,
        seed=SEED,
    )
    return {"n": report.n, "agreement": report.agreement, "cohen_kappa": report.cohen_kappa}


def ceiling_dict(ceiling: HumanCeiling) -> dict[str, Any]:
    """The human ceiling's figures for the JSON summary."""
    return {
        "n_items": ceiling.n_items,
        "n_annotators": ceiling.n_annotators,
        "krippendorff_alpha": as_dict(ceiling.krippendorff_alpha),
        "n_annotator_pairs": ceiling.n_annotator_pairs,
        "mean_pairwise_kappa": as_dict(ceiling.mean_pairwise_kappa),
        "leave_one_out_items": ceiling.leave_one_out_items,
        "leave_one_out_sme": as_dict(ceiling.leave_one_out_sme),
    }


def comparison_dict(comparison: ReplayComparison) -> dict[str, Any]:
    """A two-judge comparison for the JSON summary (second minus first)."""
    return {
        "first": comparison.first.judge,
        "second": comparison.second.judge,
        "n": comparison.n,
        "n_missing": comparison.n_missing,
        "n_tied": comparison.n_tied,
        "agreement": {
            comparison.first.judge: as_dict(comparison.first.agreement),
            comparison.second.judge: as_dict(comparison.second.agreement),
        },
        "cohen_kappa": {
            comparison.first.judge: as_dict(comparison.first.cohen_kappa),
            comparison.second.judge: as_dict(comparison.second.cohen_kappa),
        },
        "agreement_difference": as_dict(comparison.agreement_difference),
        "kappa_difference": as_dict(comparison.kappa_difference),
        "mcnemar": comparison.mcnemar.model_dump(),
        "differ": differ(comparison),
    }


def differ(comparison: ReplayComparison) -> bool:
    """Significantly different agreement: McNemar p < 0.05 and the paired interval excludes 0."""
    difference = comparison.agreement_difference
    excludes_zero = (difference.low is not None and difference.low > 0) or (
        difference.high is not None and difference.high < 0
    )
    return comparison.mcnemar.p_value < 0.05 and excludes_zero


def compare_two(
    converted: Converted, first: str, second: str, tmp: Path, resamples: int
) -> ReplayComparison:
    """Write the replay file and compare two of its judges as ``judgeloop compare --replay``."""
    from judgeloop.calibration.replay_compare import compare_replay_file
    from judgeloop.sessions.public import write_replay

    path = tmp / f"{converted.source}.jsonl"
    write_replay(path, converted.replay)
    return compare_replay_file(path, first, second, n_resamples=resamples, seed=SEED)


def comparison_text(comparison: ReplayComparison, command: str) -> str:
    """The comparison as a table and a one-line verdict."""
    a, b = comparison.first, comparison.second
    rows = [
        ["agreement", show(a.agreement), show(b.agreement), show(comparison.agreement_difference)],
        [
            "Cohen's kappa",
            show(a.cohen_kappa),
            show(b.cohen_kappa),
            show(comparison.kappa_difference),
        ],
    ]
    m = comparison.mcnemar
    verdict = "they differ" if differ(comparison) else "no significant difference"
    return (
        table(["", a.judge, b.judge, f"difference ({b.judge} - {a.judge})"], rows)
        + f"\n\n{comparison.n} items judged by both ({comparison.n_missing} lacking a verdict "
        f"of either, {comparison.n_tied} with a tied human majority dropped). McNemar's exact "
        f"test: {m.only_first_correct} items only {a.judge} got right, {m.only_second_correct} "
        f"only {b.judge}; p = {m.p_value:.4g}: {verdict} (p < 0.05 and interval excluding 0)."
        f"\nsame with the CLI: {command}"
    )


# --------------------------------------------------------------------------- datasets


def pandalm(folder: Path, tmp: Path, resamples: int) -> tuple[dict[str, Any], str]:
    """PandaLM: two judges vs three annotators, the ceiling, and the two judges compared."""
    from judgeloop.calibration.ceiling import human_ceiling
    from judgeloop.sessions.public import FORMATS
    from judgeloop.sessions.public.pandalm import ANNOTATORS, CRITERION

    converted = FORMATS["pandalm"](folder)
    labels = list(CRITERION.labels)
    kind = "categorical"  # pairwise preference with a tie: nominal labels
    by_item = annotations(converted, set(ANNOTATORS))
    majority = {i: m for i, a in by_item.items() if (m := strict_majority(a)) is not None}
    ceiling = human_ceiling(by_item, labels, kind, n_resamples=resamples, seed=SEED)
    judges: dict[str, Any] = {}
    rows = []
    for judge in converted.judges:
        judged = judge_labels(converted, judge)
        scores = judge_vs_reference(majority, judged, labels, kind, resamples)
        beside = human_ceiling(
            by_item, labels, kind, judge=judged, n_resamples=resamples, seed=SEED
        )
        judges[judge] = {
            "n": scores["n"],
            "unparseable": len(converted.unparseable.get(judge, [])),
            "agreement": as_dict(scores["agreement"]),
            "cohen_kappa": as_dict(scores["cohen_kappa"]),
            "leave_one_out_judge": as_dict(beside.leave_one_out_judge),
            "leave_one_out_sme": as_dict(beside.leave_one_out_sme),
            "judge_minus_sme": as_dict(beside.judge_minus_sme),
        }
        rows.append(
            [
                judge,
                str(scores["n"]),
                show(scores["agreement"]),
                show(scores["cohen_kappa"]),
                show(beside.leave_one_out_judge),
                show(beside.leave_one_out_sme),
                show(beside.judge_minus_sme),
            ]
        )
    comparison = compare_two(converted, "gpt-3.5-turbo", "pandalm-7b", tmp, resamples)
    unanimous = sum(len(set(a.values())) == 1 for a in by_item.values())
    result = {
        "n_items": len(by_item),
        "n_majority": len(majority),
        "n_unanimous": unanimous,
        "labels": labels,
        "majority_label_counts": dict(Counter(majority.values())),
        "ceiling": ceiling_dict(ceiling),
        "per_annotator_leave_one_out": {a.annotator: a.sme for a in ceiling.per_annotator},
        "judges": judges,
        "comparison": comparison_dict(comparison),
    }
    human_rows = [
        ["Krippendorff's alpha (3 annotators)", show(ceiling.krippendorff_alpha)],
        [
            f"mean pairwise Cohen's kappa ({ceiling.n_annotator_pairs} pairs)",
            show(ceiling.mean_pairwise_kappa),
        ],
        [
            "leave-one-out: annotator = other two's majority",
            show(ceiling.leave_one_out_sme),
        ],
        *[[f"  {a.annotator} vs the other two", f"{a.sme:.3f}"] for a in ceiling.per_annotator],
        ["items all three annotators agree on", f"{unanimous} / {len(by_item)}"],
    ]
    text = (
        f"# PandaLM test set: {len(by_item)} pairs, labels {labels}, 3 annotators; "
        f"human majority on {len(majority)} items\n\n"
        "## Human ceiling\n\n"
        + table(["annotators among themselves", "estimate [95% CI]"], human_rows)
        + "\n\n## Judges against the annotators\n\n"
        + table(
            [
                "judge",
                "n",
                "agreement w/ majority",
                "Cohen's kappa",
                "leave-one-out judge",
                "leave-one-out SME (same items)",
                "judge - SME",
            ],
            rows,
        )
        + "\n\n## Do GPT-3.5 and PandaLM-7B differ?\n\n"
        + comparison_text(
            comparison,
            "judgeloop compare --replay pandalm.jsonl gpt-3.5-turbo pandalm-7b "
            "(replay from: judgeloop import dataset --format pandalm --skip-store "
            "--replay-out pandalm.jsonl)",
        )
    )
    return result, text


def xstest(folder: Path, tmp: Path, resamples: int) -> tuple[dict[str, Any], str]:
    """XSTest: GPT-4 and string match vs the final label; the two annotators' agreement."""
    from judgeloop.calibration.ceiling import human_ceiling
    from judgeloop.sessions.public import FORMATS
    from judgeloop.sessions.public.xstest import ANNOTATORS, LABELS

    converted = FORMATS["xstest"](folder)
    labels = list(LABELS)
    kind = "categorical"
    final = {item: a["final"] for item, a in annotations(converted, {"final"}).items()}
    pair = annotations(converted, set(ANNOTATORS))
    ceiling = human_ceiling(pair, labels, kind, n_resamples=resamples, seed=SEED)
    annotator_rows = []
    annotator_results: dict[str, Any] = {}
    for annotator in ANNOTATORS:
        own = {item: a[annotator] for item, a in pair.items()}
        scores = judge_vs_reference(final, own, labels, kind, resamples)
        annotator_results[annotator] = {
            "agreement_with_final": as_dict(scores["agreement"]),
            "kappa_with_final": as_dict(scores["cohen_kappa"]),
        }
        annotator_rows.append(
            [annotator, str(scores["n"]), show(scores["agreement"]), show(scores["cohen_kappa"])]
        )
    judges: dict[str, Any] = {}
    rows = []
    for judge in converted.judges:
        judged = judge_labels(converted, judge)
        scores = judge_vs_reference(final, judged, labels, kind, resamples)
        beside = human_ceiling(pair, labels, kind, judge=judged, n_resamples=resamples, seed=SEED)
        judges[judge] = {
            "n": scores["n"],
            "unparseable": len(converted.unparseable.get(judge, [])),
            "agreement": as_dict(scores["agreement"]),
            "cohen_kappa": as_dict(scores["cohen_kappa"]),
            "leave_one_out_judge": as_dict(beside.leave_one_out_judge),
            "leave_one_out_sme": as_dict(beside.leave_one_out_sme),
            "judge_minus_sme": as_dict(beside.judge_minus_sme),
        }
        rows.append(
            [
                judge,
                str(scores["n"]),
                show(scores["agreement"]),
                show(scores["cohen_kappa"]),
                show(beside.leave_one_out_judge),
                show(beside.leave_one_out_sme),
                show(beside.judge_minus_sme),
            ]
        )
    comparison = compare_two(converted, "strmatch", "gpt4", tmp, resamples)
    result = {
        "n_items": len(final),
        "labels": labels,
        "final_label_counts": dict(Counter(final.values())),
        "annotators": {
            "krippendorff_alpha": as_dict(ceiling.krippendorff_alpha),
            "cohen_kappa": as_dict(ceiling.mean_pairwise_kappa),
            "agreement": as_dict(ceiling.leave_one_out_sme),
            **annotator_results,
        },
        "judges": judges,
        "comparison": comparison_dict(comparison),
    }
    human_rows = [
        ["Krippendorff's alpha (annotation_1, annotation_2)", show(ceiling.krippendorff_alpha)],
        ["Cohen's kappa (annotation_1 vs annotation_2)", show(ceiling.mean_pairwise_kappa)],
        ["raw agreement (annotation_1 vs annotation_2)", show(ceiling.leave_one_out_sme)],
    ]
    text = (
        f"# XSTest v2: {len(final)} completions (450 prompts x 5 models), labels {labels}\n\n"
        "## The two annotators\n\n"
        + table(["annotators", "estimate [95% CI]"], human_rows)
        + "\n\n"
        + table(
            ["annotator", "n", "agreement w/ final_label", "kappa w/ final_label"], annotator_rows
        )
        + "\n\n## Judges against the adjudicated final_label, and leave-one-out against the "
        "two annotators\n\n"
        + table(
            [
                "judge",
                "n",
                "agreement w/ final",
                "Cohen's kappa",
                "judge = one annotator",
                "annotator = the other",
                "judge - annotator",
            ],
            rows,
        )
        + "\n\n## String match vs GPT-4\n\n"
        + comparison_text(
            comparison,
            "judgeloop compare --replay xstest.jsonl strmatch gpt4",
        )
    )
    return result, text


def qags(folder: Path, resamples: int) -> tuple[dict[str, Any], str]:
    """QAGS: the crowd workers' agreement among themselves, overall and per source."""
    from judgeloop.calibration.ceiling import human_ceiling
    from judgeloop.sessions.public import FORMATS
    from judgeloop.sessions.public.qags import LABELS

    converted = FORMATS["qags"](folder)
    by_item = annotations(converted)
    subsets = {"all": by_item}
    for subset in sorted({item.split("/")[0] for item in by_item}):
        subsets[subset] = {i: a for i, a in by_item.items() if i.startswith(subset + "/")}
    result: dict[str, Any] = {}
    rows = []
    for name, items in subsets.items():
        ceiling = human_ceiling(items, list(LABELS), "binary", n_resamples=resamples, seed=SEED)
        unanimous = sum(len(set(a.values())) == 1 for a in items.values())
        yes = sum(strict_majority(a) == "yes" for a in items.values())
        result[name] = {
            **ceiling_dict(ceiling),
            "n_unanimous": unanimous,
            "majority_yes": yes,
        }
        rows.append(
            [
                name,
                str(ceiling.n_items),
                str(ceiling.n_annotators),
                show(ceiling.krippendorff_alpha),
                f"{show(ceiling.mean_pairwise_kappa)} ({ceiling.n_annotator_pairs} pairs)",
                show(ceiling.leave_one_out_sme),
                f"{unanimous / ceiling.n_items:.3f}",
                f"{yes / ceiling.n_items:.3f}",
            ]
        )
    text = (
        "# QAGS: summary sentences supported by the article? (3 crowd workers each; no judge "
        "outputs recorded)\n\n"
        + table(
            [
                "subset",
                "items",
                "workers",
                "Krippendorff's alpha",
                "mean pairwise kappa (pairs sharing >= 5 items)",
                "leave-one-out worker = other two",
                "unanimous",
                "majority yes",
            ],
            rows,
        )
    )
    return result, text


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="public datasets folder")
    parser.add_argument("--quick", action="store_true", help="300 bootstrap resamples")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--resamples", type=int, default=None, help="bootstrap resamples")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir or default_data_dir()
    if args.resamples is None:
        args.resamples = 300 if args.quick else 2000
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every dataset that is present; print tables (and JSON); return the exit status."""
    args = parse_args(argv)
    summary: dict[str, Any] = {
        "benchmark": "public_agreement",
        "data_dir": str(args.data_dir),
        "quick": args.quick,
        "resamples": args.resamples,
        "seed": SEED,
        "skipped": {},
        "seconds": {},
    }
    if not args.data_dir.is_dir():
        message = (
            f"skipped: no public data directory at {args.data_dir} (set {DATA_ENV} or pass "
            "--data-dir; see docs/benchmarks.md)"
        )
        print(message)
        if args.json:
            print(json.dumps({"benchmark": "public_agreement", "skipped": message}))
        return 0
    started_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="judgeloop-public-") as tmp_name:
        tmp = Path(tmp_name)
        steps = {
            "pandalm": ("pandalm_testset", lambda f: pandalm(f, tmp, args.resamples)),
            "xstest": ("xstest", lambda f: xstest(f, tmp, args.resamples)),
            "qags": ("qags_mturk", lambda f: qags(f, args.resamples)),
        }
        for name, (folder_name, step) in steps.items():
            folder = args.data_dir / folder_name
            if not folder.is_dir():
                summary["skipped"][name] = f"no folder {folder}"
                print(f"skipped {name}: no folder {folder}\n")
                continue
            started = time.perf_counter()
            result, text = step(folder)
            summary[name] = result
            summary["seconds"][name] = round(time.perf_counter() - started, 2)
            print(text + f"\n\n({name}: {summary['seconds'][name]:.1f} s)\n")
    summary["seconds"]["total"] = round(time.perf_counter() - started_all, 2)
    print(
        f"bootstrap: {args.resamples} resamples over items, seed {SEED}; "
        f"total {summary['seconds']['total']:.1f} s"
    )
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

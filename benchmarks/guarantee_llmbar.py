"""Does the escalation guarantee hold on LLMBar's recorded evaluators, and at what coverage?

Usage::

    python benchmarks/guarantee_llmbar.py [--data-dir DIR] [--quick] [--json]
        [--alphas 0.1,0.2] [--delta 0.1] [--cal-size 200] [--splits 300] [--strict]

Builds the LLMBar replay file with the ``llmbar`` converter (the same as ``judgeloop import
dataset --format llmbar --replay-out FILE``) into a temporary directory and runs the replay
guarantee benchmark (``judgeloop bench guarantee``) on two configurations:

- ``llmbar``: the 419 LLMBar pairs (Natural + Adversarial), where every prompting strategy ran.
  Single judges: four GPT-4 strategies and the PaLM2 / ChatGPT "Metrics_Reference" runs;
  cascades PaLM2 -> GPT-4 and GPT-4 Vanilla (one call per order) -> GPT-4 Metrics_Reference
  (metrics and a reference answer generated first); the learned confidence over the six;
- ``llmbar+processed``: all 885 pairs (adding MT-Bench, LLMEval^2 and FairEval), with the
  strategies that ran on every subset.

A judge's confidence is the share of the two presentation orders that picked its label (1.0,
0.75 or 0.5). For every guarantee-based method (single judges, cascades, learned) the check is
success_rate >= 1 - δ - 3·sqrt(δ(1-δ)/splits): the guarantee up to three Monte-Carlo standard
errors. The baselines ("no abstention", "fixed 0.5 threshold") promise nothing and are not
checked. With ``--strict`` a failed check exits 1. ``--json`` prints one JSON object as the
last line. Without the data directory the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "JUDGELOOP_PUBLIC_DATA_DIR"

CONFIGS: list[dict[str, Any]] = [
    {
        "name": "llmbar",
        "description": "LLMBar Natural + Adversarial (419 pairs, every strategy ran)",
        "prefix": "LLMBar/",
        "judges": [
            "GPT-4/Vanilla",
            "GPT-4/CoT",
            "GPT-4/Swap",
            "GPT-4/Metrics_Reference",
            "PaLM2/Metrics_Reference",
            "ChatGPT/Metrics_Reference",
        ],
        "cascades": [
            ["PaLM2/Metrics_Reference", "GPT-4/Metrics_Reference"],
            ["GPT-4/Vanilla", "GPT-4/Metrics_Reference"],
        ],
    },
    {
        "name": "llmbar+processed",
        "description": "LLMBar + MT-Bench, LLMEval^2, FairEval (885 pairs)",
        "prefix": "",
        "judges": [
            "GPT-4/Metrics_Reference",
            "GPT-4/Vanilla_NoRules",
            "PaLM2/Metrics_Reference",
            "ChatGPT/Metrics_Reference",
            "LLaMA2/Metrics_Reference",
        ],
        "cascades": [
            ["PaLM2/Metrics_Reference", "GPT-4/Metrics_Reference"],
            ["ChatGPT/Metrics_Reference", "GPT-4/Metrics_Reference"],
        ],
    },
]

BASELINES = ("no abstention: ", "fixed 0.5 threshold: ")


def default_data_dir() -> Path:
    """``$JUDGELOOP_PUBLIC_DATA_DIR``, else ``../shared/datasets`` next to the repository."""
    configured = os.environ.get(DATA_ENV)
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "datasets"


def is_guarantee_method(method: str) -> bool:
    """Single judges, cascades and the learned method; not the two baselines."""
    return not method.startswith(BASELINES)


def noise_tolerance(delta: float, splits: int) -> float:
    """Three Monte-Carlo standard errors of a success rate of 1-δ over ``splits`` splits."""
    return 3.0 * math.sqrt(delta * (1.0 - delta) / splits)


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


def build_replays(llmbar_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Convert LLMBar once and write one replay file per configuration."""
    from judgeloop.sessions.public import FORMATS, write_replay

    converted = FORMATS["llmbar"](llmbar_dir)
    paths = {}
    for config in CONFIGS:
        path = out_dir / f"{config['name']}.jsonl"
        rows = [row for row in converted.replay if row["id"].startswith(config["prefix"])]
        write_replay(path, rows)
        paths[config["name"]] = path
    return paths


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every configuration at every α; the results with the guarantee check."""
    from judgeloop.calibration.replay import load_replay, run_guarantee_benchmark

    tolerance = noise_tolerance(args.delta, args.splits)
    floor = 1.0 - args.delta - tolerance
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="judgeloop-llmbar-") as tmp:
        started = time.perf_counter()
        paths = build_replays(args.data_dir / "llmbar", Path(tmp))
        convert_seconds = time.perf_counter() - started
        for config in CONFIGS:
            replay = load_replay(paths[config["name"]])
            for alpha in args.alphas:
                started = time.perf_counter()
                result = run_guarantee_benchmark(
                    replay,
                    alpha=alpha,
                    delta=args.delta,
                    cal_size=args.cal_size,
                    splits=args.splits,
                    judges=config["judges"],
                    cascades=config["cascades"],
                    seed=args.seed,
                )
                rows = []
                for row in result.results:
                    guaranteed = is_guarantee_method(row.method)
                    rows.append(
                        {
                            **row.model_dump(),
                            "guarantee": guaranteed,
                            "holds": row.success_rate >= floor if guaranteed else None,
                        }
                    )
                runs.append(
                    {
                        "config": config["name"],
                        "description": config["description"],
                        "n_items": result.n_items,
                        "alpha": alpha,
                        "delta": args.delta,
                        "cal_size": args.cal_size,
                        "splits": args.splits,
                        "judges": config["judges"],
                        "cascades": config["cascades"],
                        "results": rows,
                        "seconds": round(time.perf_counter() - started, 2),
                    }
                )
    held = all(row["holds"] is not False for entry in runs for row in entry["results"])
    return {
        "benchmark": "guarantee_llmbar",
        "data_dir": str(args.data_dir),
        "quick": args.quick,
        "alphas": args.alphas,
        "delta": args.delta,
        "cal_size": args.cal_size,
        "splits": args.splits,
        "seed": args.seed,
        "tolerance": tolerance,
        "success_floor": floor,
        "convert_seconds": round(convert_seconds, 2),
        "runs": runs,
        "guarantee_held": held,
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report(summary: dict[str, Any]) -> str:
    """Readable tables, one per configuration and α."""
    parts = []
    for entry in summary["runs"]:
        title = (
            f"## {entry['config']}: {entry['description']}\n"
            f"target agreement >= {1 - entry['alpha']:g} (α = {entry['alpha']:g}) with "
            f"probability >= {1 - entry['delta']:g}; {entry['splits']} splits of "
            f"{entry['cal_size']} calibration / {entry['n_items'] - entry['cal_size']} test "
            f"items; {entry['seconds']:.1f} s"
        )
        rows = [
            [
                row["method"],
                f"{row['success_rate']:.3f}",
                f"{row['coverage']:.3f}",
                _fmt(row["agreement"]),
                "baseline" if row["holds"] is None else "ok" if row["holds"] else "BELOW",
            ]
            for row in entry["results"]
        ]
        parts.append(
            title
            + "\n\n"
            + table(["method", "success rate", "coverage", "agreement", "guarantee"], rows)
        )
    verdict = (
        "guarantee held for every guarantee-based method"
        if summary["guarantee_held"]
        else "GUARANTEE MISSED by at least one method"
    )
    parts.append(
        f"check: success_rate >= 1 - δ - 3 SE = {summary['success_floor']:.3f} "
        f"(3 SE = {summary['tolerance']:.3f} over {summary['splits']} splits): {verdict}. "
        "coverage = mean share of test items auto-decided; agreement = mean agreement of the "
        "auto-decided items over the splits that decided any."
    )
    return "\n\n".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--quick`` means 50 splits unless ``--splits`` is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="public datasets folder")
    parser.add_argument("--quick", action="store_true", help="50 splits instead of 300")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--alphas", default="0.1,0.2", help="targets 1-α, comma-separated")
    parser.add_argument("--delta", type=float, default=0.1)
    parser.add_argument("--cal-size", type=int, default=200)
    parser.add_argument("--splits", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir or default_data_dir()
    args.alphas = [float(a) for a in args.alphas.split(",") if a.strip()]
    if args.splits is None:
        args.splits = 50 if args.quick else 300
    return args


def main(argv: list[str] | None = None) -> int:
    """Run, print, and return the exit status."""
    args = parse_args(argv)
    llmbar_dir = args.data_dir / "llmbar"
    if not llmbar_dir.is_dir():
        message = (
            f"skipped: no LLMBar data at {llmbar_dir} (set {DATA_ENV} or pass --data-dir; "
            "see docs/benchmarks.md)"
        )
        print(message)
        if args.json:
            print(json.dumps({"benchmark": "guarantee_llmbar", "skipped": message}))
        return 0
    started = time.perf_counter()
    summary = run(args)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    print(report(summary))
    print(f"\ntotal {summary['seconds']:.1f} s")
    if args.json:
        print(json.dumps(summary))
    return 1 if args.strict and not summary["guarantee_held"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""The store at volume: claim latency, calibration report time, agreement dashboard query time.

Usage::

    python benchmarks/bench_store.py [--items N] [--labels M] [--postgres-url URL]
        [--quick] [--json]

- **claim**: ``claim_next`` (what "next item" in the reviewer UI and ``POST /v1/queue/claim``
  call) on a queue of ``N`` waiting items (default 1,000,000), 100 claims by 10 reviewers;
  p50 / p99 in ms against the 10 ms target.
- **agreement dashboard**: ``online_agreement`` (the engineer dashboard's ``/ui/agreement``,
  and the pipeline's audit-rate check) for a judge version with ``N`` decisions, 1% of them
  audited; seconds.
- **calibration report**: the statistics of ``judgeloop calibrate`` on ``M`` labels (default
  100,000; half calibrate, half test): isotonic calibrator, fixed-sequence threshold, agreement
  report with 2,000 bootstrap resamples, calibration metrics; seconds against the 3 s target.
  The judge's scoring (LLM calls) is not part of it.

Fixtures are bulk-inserted with executemany (SQLite) or COPY (PostgreSQL) into a fresh
database. ``--quick``: 20,000 items and 20,000 labels. ``--json`` prints one JSON object last.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402 (after the path set-up)
    fresh_database,
    machine,
    machine_line,
    percentile,
    print_json,
    progress,
)

CLAIM_TARGET_MS = 10.0
CALIBRATION_TARGET_S = 3.0
VERSION = "b" * 64
CHUNK = 20_000


def _rows(first: int, count: int, now: datetime) -> dict[str, list[tuple[Any, ...]]]:
    """Sessions, decisions, queue items and audit labels with ids first..first+count-1."""
    messages = json.dumps([{"role": "user", "content": "Where is my order?"}])
    sessions, decisions, items, labels = [], [], [], []
    for i in range(first, first + count):
        created = now - timedelta(seconds=count - i)
        sessions.append((i, "bench", f"s-{i}", messages, "{}", f"{i:064x}", "done", created))
        audited = i % 100 == 0
        outcome = "escalate" if audited or i % 10 == 0 else "auto"
        reasons = '["audit"]' if audited else ('["low_confidence"]' if outcome != "auto" else "[]")
        decisions.append((i, i, 1, VERSION, "yes", 0.95, outcome, 100, reasons, "{}", created))
        items.append((i, "session", i, 1, i, 100 + i % 7, reasons, "open", 1, False, created))
        if audited:
            value = "yes" if i % 700 else "no"
            labels.append(
                (i, 1, value, "auditor", "", "audit", f"{i:064x}", created + timedelta(seconds=1))
            )
    return {"sessions": sessions, "decisions": decisions, "queue_items": items, "labels": labels}


COLUMNS = {
    "sessions": "id, source, external_id, messages, session_metadata, content_hash, "
    "pipeline_status, created_at",
    "decisions": "id, session_id, criterion_id, judge_version_id, label, "
    "calibrated_confidence, outcome, priority, reasons, detail, created_at",
    "queue_items": "id, kind, session_id, criterion_id, decision_id, priority, reasons, status, "
    "reviews_required, senior_only, created_at",
    "labels": "session_id, criterion_id, value, annotator, rationale, source, label_key, "
    "created_at",
}
TABLES = {"labels": "human_labels"}


def fill(database_url: str, count: int) -> float:
    """``count`` sessions, decisions and waiting queue items, 1% audited; returns seconds."""
    from judgeloop.models import CriterionCreate
    from judgeloop.store import add_criteria, db_session, make_engine
    from judgeloop.store.judges import register_judge_version

    engine = make_engine(database_url)
    started = time.perf_counter()
    criterion = CriterionCreate(name="resolved", kind="binary", labels=["yes", "no"])
    with db_session(engine) as db:
        row = add_criteria(db, [criterion], actor="bench")[0][0]
        register_judge_version(db, version=VERSION, name="bench", criterion=row, spec={}, actor="b")
    now = datetime.now(UTC) - timedelta(days=1)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        postgres = engine.dialect.name == "postgresql"
        with progress() as bar:
            task = bar.add_task("fixtures (sessions, decisions, queue items)", total=count)
            for first in range(1, count + 1, CHUNK):
                rows = _rows(first, min(CHUNK, count + 1 - first), now)
                for name, values in rows.items():
                    table = TABLES.get(name, name)
                    if postgres:
                        with cursor.copy(f"COPY {table} ({COLUMNS[name]}) FROM STDIN") as copy:
                            for value in values:
                                copy.write_row(value)
                    else:
                        marks = ", ".join("?" * len(values[0])) if values else ""
                        if values:
                            cursor.executemany(
                                f"INSERT INTO {table} ({COLUMNS[name]}) VALUES ({marks})",
                                [_sqlite(v) for v in values],
                            )
                raw.commit()
                bar.advance(task, len(rows["sessions"]))
        if postgres:
            for table in ("sessions", "decisions", "queue_items"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            cursor.execute("ANALYZE")
        else:
            cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return time.perf_counter() - started


def _sqlite(values: tuple[Any, ...]) -> tuple[Any, ...]:
    # The SQLite dialect stores datetimes as text without a zone, as SQLAlchemy does.
    return tuple(
        v.replace(tzinfo=None).isoformat(sep=" ") if isinstance(v, datetime) else v for v in values
    )


def measure_claims(database_url: str, claims: int) -> list[float]:
    """Seconds of each ``claim_next`` by 10 reviewers taking turns."""
    from judgeloop.store import create_key, db_session, make_engine
    from judgeloop.store.queue import claim_next

    engine = make_engine(database_url)
    timings = []
    try:
        with db_session(engine) as db:
            reviewers = [
                create_key(db, role="reviewer", name=f"reviewer-{i}", actor="bench")[0]
                for i in range(10)
            ]
        for index in range(claims):
            reviewer = reviewers[index % len(reviewers)]
            with db_session(engine) as db:
                started = time.perf_counter()
                item = claim_next(db, reviewer, lease=timedelta(minutes=1))
                timings.append(time.perf_counter() - started)
            if item is None:
                raise RuntimeError("claim_next found nothing to claim")
            # Each reviewer holds one item; the next claim by the same person renews it, so
            # let it go to make every claim a fresh one.
            from judgeloop.store.queue import release_item

            with db_session(engine) as db:
                assert item.id is not None
                release_item(db, item.id, reviewer)
    finally:
        engine.dispose()
    return timings


def measure_agreement(database_url: str, repeats: int = 3) -> tuple[list[float], int]:
    """Seconds of ``online_agreement`` for the version; and how many audits it found."""
    from judgeloop.calibration.online import online_agreement
    from judgeloop.store import db_session, make_engine

    engine = make_engine(database_url)
    timings, n = [], 0
    try:
        for _ in range(repeats):
            with db_session(engine) as db:
                started = time.perf_counter()
                result = online_agreement(db, VERSION)
                timings.append(time.perf_counter() - started)
                n = result.n
                db.rollback()
    finally:
        engine.dispose()
    return timings, n


def measure_calibration(labels: int, resamples: int) -> float:
    """Seconds for the statistics of a calibration report on ``labels`` labels."""
    import numpy as np

    from judgeloop.calibration.calibrators import Calibrator, calibration_metrics
    from judgeloop.calibration.guarantee import fixed_sequence_threshold
    from judgeloop.calibration.metrics import agreement_report

    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, labels)
    agrees = rng.uniform(0, 1, labels) < confidence
    human = np.where(rng.uniform(0, 1, labels) < 0.6, "yes", "no")
    predicted = np.where(agrees, human, np.where(human == "yes", "no", "yes"))
    half = labels // 2
    # A running service has scikit-learn loaded: its import is not part of the report's time.
    Calibrator(method="isotonic").fit(np.array([0.2, 0.9]), np.array([False, True]))
    started = time.perf_counter()
    calibrator = Calibrator(method="isotonic").fit(confidence[:half], agrees[:half])
    scores = calibrator.predict(confidence)
    threshold = fixed_sequence_threshold(scores[:half], agrees[:half], alpha=0.1, delta=0.1)
    threshold.auto(scores[half:])
    agreement_report(
        human[half:].tolist(),
        predicted[half:].tolist(),
        ["yes", "no"],
        "binary",
        n_resamples=resamples,
        seed=0,
    )
    calibration_metrics(scores[half:], agrees[half:], confidence=confidence[half:])
    return time.perf_counter() - started


def run(args: argparse.Namespace, postgres_url: str | None) -> dict[str, Any]:
    """Fill one fresh database, then time claims and the agreement query."""
    with fresh_database(postgres_url) as database_url:
        fill_seconds = fill(database_url, args.items)
        claims = measure_claims(database_url, args.claims)
        agreement, audited = measure_agreement(database_url)
    claim_p99 = percentile(claims, 0.99) * 1000
    return {
        "items": args.items,
        "fill_seconds": round(fill_seconds, 1),
        "claims": len(claims),
        "claim_p50_ms": round(percentile(claims, 0.5) * 1000, 2),
        "claim_p99_ms": round(claim_p99, 2),
        "claim_p99_ratio_to_target": round(claim_p99 / CLAIM_TARGET_MS, 3),
        "agreement_decisions": args.items,
        "agreement_audited": audited,
        "agreement_seconds": round(min(agreement), 3),
    }


def main() -> int:
    """Run the three measurements; print figures (and JSON)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=None, help="queue items / decisions (1M)")
    parser.add_argument("--labels", type=int, default=None, help="calibration labels (100,000)")
    parser.add_argument("--claims", type=int, default=100, help="claims timed (100)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (2,000)")
    parser.add_argument("--postgres-url", default=None, help="PostgreSQL server URL")
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    args.items = args.items or (20_000 if args.quick else 1_000_000)
    args.labels = args.labels or (20_000 if args.quick else 100_000)
    before = machine()
    print(machine_line(before))
    database = "postgresql" if args.postgres_url else "sqlite"
    summary: dict[str, Any] = {"benchmark": "bench_store", "database": database}
    summary.update(run(args, args.postgres_url))
    print(
        f"{database}: {args.items:,} waiting items (filled in {summary['fill_seconds']:.0f} s): "
        f"claim_next p50 {summary['claim_p50_ms']:.1f} ms, p99 {summary['claim_p99_ms']:.1f} "
        f"ms = {summary['claim_p99_ratio_to_target']:.2f} x the 10 ms target"
    )
    print(
        f"{database}: online agreement over {args.items:,} decisions "
        f"({summary['agreement_audited']:,} audited): {summary['agreement_seconds']:.2f} s"
    )
    seconds = measure_calibration(args.labels, args.resamples)
    summary.update(
        {
            "calibration_labels": args.labels,
            "calibration_resamples": args.resamples,
            "calibration_seconds": round(seconds, 3),
            "calibration_ratio_to_target": round(seconds / CALIBRATION_TARGET_S, 3),
        }
    )
    print(
        f"calibration report statistics on {args.labels:,} labels ({args.resamples} resamples): "
        f"{seconds:.2f} s = {seconds / CALIBRATION_TARGET_S:.2f} x the 3 s target"
    )
    summary["machine"] = before
    summary["loadavg_after"] = machine()["loadavg"]
    if args.json:
        print_json(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

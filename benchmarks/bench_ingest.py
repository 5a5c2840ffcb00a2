"""Sessions accepted per second with judging off, on SQLite and PostgreSQL.

Usage::

    python benchmarks/bench_ingest.py [--sessions N] [--batch B] [--concurrency C]
        [--postgres-url URL | --no-postgres] [--quick] [--json]

Starts ``judgeloop serve`` with ``JUDGELOOP_WORKER=false`` and no active judge on a fresh
database, then posts ``N`` new sessions to ``POST /v1/sessions`` from ``C`` clients: once as
batches of ``B`` (how a pipeline forwards traffic) and once one session per request. The limit
it is measured against is the same clients' rate on ``GET /healthz`` in the same run (an HTTP
round trip to the same server with no work): ``*_vs_http`` is ingest's share of it. PostgreSQL
runs when ``--postgres-url`` (or ``$JUDGELOOP_BENCH_POSTGRES_URL``, or the tests'
``$JUDGELOOP_TEST_POSTGRES_URL``) names a server; a fresh database is created and dropped.

``--quick``: 1,000 sessions in batches, 200 singles. ``--json`` prints one JSON object last.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402 (after the path set-up)
    RssSampler,
    default_postgres_url,
    fresh_database,
    machine,
    machine_line,
    percentile,
    print_json,
    progress,
    server,
    session_payload,
)

TARGET_PER_S = 1000


def pipeline_key(database_url: str) -> str:
    """A pipeline key in the fresh database."""
    from judgeloop.store import create_key, db_session, make_engine

    engine = make_engine(database_url)
    try:
        with db_session(engine) as db:
            _row, key = create_key(db, role="pipeline", name="bench", actor="bench")
    finally:
        engine.dispose()
    return key


async def post_all(
    url: str,
    key: str,
    *,
    first: int,
    count: int,
    batch: int,
    concurrency: int,
    bar: Any = None,
) -> tuple[float, list[float]]:
    """Post sessions ``first..first+count`` in requests of ``batch``; wall time, latencies."""
    import aiohttp

    starts = iter(range(first, first + count, batch))
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, headers=headers, connector=connector) as client:

        async def one_client() -> None:
            for start in starts:
                end = min(start + batch, first + count)
                payload: Any = [session_payload(i) for i in range(start, end)]
                if batch == 1:
                    payload = payload[0]
                started = time.perf_counter()
                async with client.post("/v1/sessions", json=payload) as response:
                    if response.status != 201:
                        raise RuntimeError(f"POST /v1/sessions: {response.status}")
                    await response.read()
                latencies.append(time.perf_counter() - started)
                if bar is not None:
                    bar[0].advance(bar[1], end - start)

        started_all = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return time.perf_counter() - started_all, latencies


async def health_rate(url: str, count: int, concurrency: int) -> float:
    """Requests per second on GET /healthz: the HTTP round trip alone, same clients."""
    import aiohttp

    remaining = iter(range(count))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as client:

        async def one_client() -> None:
            for _ in remaining:
                async with client.get("/healthz") as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


def measure(args: argparse.Namespace, postgres_url: str | None) -> dict[str, Any]:
    """Batches, then singles, on one fresh database."""
    with fresh_database(postgres_url) as database_url:
        key = pipeline_key(database_url)
        with server(database_url, worker=False) as (url, process):
            sampler = RssSampler(process.pid)
            sampler.start()
            asyncio.run(
                post_all(url, key, first=10**8, count=200, batch=10, concurrency=args.concurrency)
            )
            http_per_s = asyncio.run(health_rate(url, args.singles, args.concurrency))
            with progress() as bar:
                task = bar.add_task(f"batches of {args.batch}", total=args.sessions)
                batch_wall, batch_latencies = asyncio.run(
                    post_all(
                        url,
                        key,
                        first=0,
                        count=args.sessions,
                        batch=args.batch,
                        concurrency=args.concurrency,
                        bar=(bar, task),
                    )
                )
                task = bar.add_task("one session per request", total=args.singles)
                single_wall, single_latencies = asyncio.run(
                    post_all(
                        url,
                        key,
                        first=10**7,
                        count=args.singles,
                        batch=1,
                        concurrency=args.concurrency,
                        bar=(bar, task),
                    )
                )
            peak_rss = sampler.stop()
    batch_rate = args.sessions / batch_wall
    single_rate = args.singles / single_wall
    return {
        "sessions": args.sessions,
        "batch": args.batch,
        "singles": args.singles,
        "concurrency": args.concurrency,
        "batched_per_s": round(batch_rate, 1),
        "batched_ratio_to_target": round(batch_rate / TARGET_PER_S, 4),
        "batch_request_p50_ms": round(percentile(batch_latencies, 0.5) * 1000, 2),
        "batch_request_p99_ms": round(percentile(batch_latencies, 0.99) * 1000, 2),
        "single_per_s": round(single_rate, 1),
        "single_ratio_to_target": round(single_rate / TARGET_PER_S, 4),
        "single_request_p50_ms": round(percentile(single_latencies, 0.5) * 1000, 2),
        "single_request_p99_ms": round(percentile(single_latencies, 0.99) * 1000, 2),
        "http_per_s": round(http_per_s, 1),
        "single_vs_http": round(single_rate / http_per_s, 4),
        "peak_rss_mb": round(peak_rss, 1),
    }


def text(name: str, result: dict[str, Any]) -> str:
    """The figures of one database as a few lines."""
    return (
        f"{name}: batches of {result['batch']}: {result['batched_per_s']:.0f} sessions/s "
        f"({result['batched_ratio_to_target']:.0%} of the 1,000/s target; request p50 "
        f"{result['batch_request_p50_ms']:.0f} ms, p99 {result['batch_request_p99_ms']:.0f} ms)\n"
        f"{name}: one per request: {result['single_per_s']:.0f} sessions/s "
        f"(p50 {result['single_request_p50_ms']:.0f} ms, p99 "
        f"{result['single_request_p99_ms']:.0f} ms) = {result['single_vs_http']:.0%} of "
        f"GET /healthz at the same concurrency ({result['http_per_s']:.0f}/s); "
        f"server peak RSS {result['peak_rss_mb']:.0f} MB"
    )


def main() -> int:
    """Run on SQLite, then PostgreSQL when configured; print figures (and JSON)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=None, help="N in batches (20,000)")
    parser.add_argument("--singles", type=int, default=None, help="one per request (2,000)")
    parser.add_argument("--batch", type=int, default=100, help="sessions per request (100)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients (8)")
    parser.add_argument("--postgres-url", default=None, help="PostgreSQL server URL")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    args.sessions = args.sessions or (1000 if args.quick else 20_000)
    args.singles = args.singles or (200 if args.quick else 2000)
    postgres_url = None if args.no_postgres else (args.postgres_url or default_postgres_url())
    before = machine()
    summary: dict[str, Any] = {"benchmark": "bench_ingest", "target_per_s": TARGET_PER_S}
    print(machine_line(before))
    summary["sqlite"] = measure(args, None)
    print(text("SQLite", summary["sqlite"]))
    if postgres_url:
        summary["postgresql"] = measure(args, postgres_url)
        print(text("PostgreSQL", summary["postgresql"]))
    else:
        summary["postgresql"] = None
        print("PostgreSQL: skipped (no --postgres-url or $JUDGELOOP_BENCH_POSTGRES_URL)")
    summary["machine"] = before
    summary["loadavg_after"] = machine()["loadavg"]
    if args.json:
        print_json(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

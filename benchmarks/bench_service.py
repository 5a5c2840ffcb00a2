"""The service's own cost next to the judge's LLM call, measured against Little's law.

Usage::

    python benchmarks/bench_service.py [--sessions N] [--concurrency C] [--latency-ms L]
        [--database-url URL] [--workers M] [--quick] [--json]

Starts ``judgeloop serve`` (a fresh SQLite database unless ``--database-url`` names a
PostgreSQL server, on which a fresh database is created and dropped) and the tests' stub
OpenAI-compatible LLM in a process of its own, answering every call after ``L`` ms. One LLM
judge (litellm, pointed at the stub through ``api_base``) is active and calibrated for one
criterion; about one session in ten gets an unsure verdict and is escalated (plus the audit
sample), so escalations are queued as in production.

**Synchronous mode** (default): ``C`` clients post single sessions to
``POST /v1/sessions?wait=true`` back to back, as a pipeline that needs the decision (escalate
or auto) before it goes on would call it; the route also runs every active judge, so the figure
holds when more judges are added. With one LLM call per session taking ``L``, no service can
judge more than ``C / L`` sessions per second (Little's law): ``throughput_ratio`` is the
measured rate over that limit, and ``added_latency_*`` is each answer's time minus ``L``. The
same judgments are then made by calling ``litellm.acompletion`` directly, ``C`` at a time,
with the same prompts: ``service_vs_direct`` is the service's rate over that loop's.

**Worker mode** (``--workers M``, PostgreSQL only): the server runs with
``JUDGELOOP_WORKER=false`` plus ``M`` ``judgeloop worker`` processes; the sessions are posted
in batches without waiting, and the time runs until every one is decided.

``--quick``: 600 sessions (300 with workers), for a run under a minute. ``--json`` prints one
JSON object as the last line. The machine's CPU count and load average are recorded: figures
from a busy machine understate the service.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402 (after the path set-up)
    RssSampler,
    fresh_database,
    machine,
    machine_line,
    percentile,
    print_json,
    progress,
    server,
    session_payload,
    stub_llm,
    workers,
)

CRITERION = {"name": "resolved", "kind": "binary", "labels": ["yes", "no"]}
THRESHOLD = 0.9  # the stub's confident answers (0.97) pass, its unsure ones (0.6) escalate


def prepare(database_url: str, stub_url: str) -> tuple[str, Any]:
    """Criterion, an active calibrated LLM judge on the stub and a pipeline key; returns both."""
    import numpy as np

    from judgeloop.calibration.calibrators import Calibrator
    from judgeloop.judges.runner import register_spec
    from judgeloop.judges.spec import JudgeSpec
    from judgeloop.models import CriterionCreate
    from judgeloop.store import add_calibration, add_criteria, create_key, db_session, make_engine
    from judgeloop.store.judges import activate_judge_version

    criterion = CriterionCreate.model_validate(CRITERION)
    spec = JudgeSpec(
        name="bench-llm",
        criterion=criterion,
        backend="litellm",
        model="openai/stub-judge",
        api_base=f"{stub_url}/v1",
        decoding={"timeout_s": 30.0, "max_retries": 2},
    )
    # Raw confidence already is P(agree) here: an identity calibrator keeps the threshold exact.
    identity = Calibrator("isotonic")
    identity.n_fit_ = 2
    identity.x_thresholds_ = np.array([0.0, 1.0])
    identity.y_thresholds_ = np.array([0.0, 1.0])
    engine = make_engine(database_url)
    try:
        with db_session(engine) as db:
            add_criteria(db, [criterion], actor="bench")
        register_spec(engine, spec, actor="bench")
        with db_session(engine) as db:
            activate_judge_version(db, spec.version, actor="bench")
            add_calibration(
                db,
                actor="bench",
                judge_version_id=spec.version,
                label_snapshot="bench",
                method="isotonic",
                alpha=0.1,
                delta=0.1,
                threshold=THRESHOLD,
                coverage=0.9,
                calibrator=identity.to_dict(),
            )
            _row, key = create_key(db, role="pipeline", name="bench", actor="bench")
    finally:
        engine.dispose()
    return key, spec


# --------------------------------------------------------------------------- synchronous mode


async def post_waiting(
    url: str, key: str, first: int, count: int, concurrency: int, bar: Any = None
) -> tuple[float, list[float], dict[str, int]]:
    """``count`` sessions, ``concurrency`` at a time, each posted with ``wait=true``.

    Returns the wall time, each request's seconds, and counts of outcomes. The client is
    aiohttp: httpx's connection pool cost ~10 ms of CPU per request at this concurrency on the
    loaded benchmark machine, more than the server it measures.
    """
    import aiohttp

    queue = iter(range(first, first + count))
    latencies: list[float] = []
    outcomes = {"auto": 0, "escalate": 0, "undecided": 0, "failed": 0}
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        base_url=url, headers=headers, connector=connector, timeout=timeout
    ) as client:

        async def one_client() -> None:
            for index in queue:
                started = time.perf_counter()
                async with client.post(
                    "/v1/sessions", params={"wait": "true"}, json=session_payload(index)
                ) as response:
                    body = await response.json() if response.status in (200, 201) else None
                latencies.append(time.perf_counter() - started)
                if body is None:
                    outcomes["failed"] += 1
                else:
                    decisions = body.get("decisions") or []
                    outcome = decisions[0]["outcome"] if decisions else "undecided"
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if bar is not None:
                    bar[0].advance(bar[1])

        started_all = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return time.perf_counter() - started_all, latencies, outcomes


async def raw_stub(stub_url: str, count: int, concurrency: int) -> tuple[float, list[float]]:
    """Bare HTTP calls to the stub, same client and concurrency: what the harness can do."""
    import aiohttp

    queue = iter(range(count))
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:

        async def one_client() -> None:
            for index in queue:
                body = {"model": "stub", "messages": [{"role": "user", "content": f"hi {index}"}]}
                started = time.perf_counter()
                async with client.post(f"{stub_url}/v1/chat/completions", json=body) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)

        started_all = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return time.perf_counter() - started_all, latencies


async def direct_litellm(
    spec: Any, first: int, count: int, concurrency: int
) -> tuple[float, list[float]]:
    """The same judge prompts sent with ``litellm.acompletion``, ``concurrency`` at a time."""
    import litellm

    from judgeloop.judges.outcome import SessionInput
    from judgeloop.judges.render import render_messages

    prompts = []
    for index in range(first, first + count):
        payload = session_payload(index)
        session = SessionInput(
            id=index,
            source=payload["source"],
            external_id=payload["external_id"],
            messages=payload["messages"],
            metadata=payload["metadata"],
            content_hash=str(index),
        )
        prompts.append(render_messages(spec, session, []))
    queue = iter(prompts)
    latencies: list[float] = []

    async def one_client() -> None:
        for messages in queue:
            started = time.perf_counter()
            await litellm.acompletion(
                model=spec.model,
                api_base=spec.api_base,
                messages=messages,
                temperature=0.0,
                max_tokens=spec.decoding.max_tokens,
                logprobs=True,
                top_logprobs=5,
                timeout=30,
                api_key="sk-bench",
            )
            latencies.append(time.perf_counter() - started)

    started_all = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return time.perf_counter() - started_all, latencies


def synchronous(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    """Sessions posted with wait=true at concurrency C; the direct litellm loop beside it."""
    latency_s = args.latency_ms / 1000
    ideal = args.concurrency / latency_s
    with stub_llm(args.latency_ms) as stub_url:
        key, spec = prepare(database_url, stub_url)
        harness_count = min(args.sessions, max(args.concurrency * 10, 200))
        asyncio.run(raw_stub(stub_url, args.concurrency, args.concurrency))
        harness_wall, _ = asyncio.run(raw_stub(stub_url, harness_count, args.concurrency))
        with server(database_url, worker=True) as (url, process):
            sampler = RssSampler(process.pid)
            sampler.start()
            # Warm-up (not measured): the first request loads the judge and litellm.
            asyncio.run(post_waiting(url, key, 10_000_000, args.concurrency, args.concurrency))
            rss_after_warmup = sampler.last_bytes / 2**20
            profiler = start_py_spy(args.py_spy, process.pid)
            with progress() as bar:
                task = bar.add_task("sessions judged (wait=true)", total=args.sessions)
                wall, latencies, outcomes = asyncio.run(
                    post_waiting(url, key, 0, args.sessions, args.concurrency, (bar, task))
                )
            peak_rss = sampler.stop()
            stop_py_spy(profiler)
        direct_count = min(args.sessions, max(args.concurrency * 10, 200))
        asyncio.run(direct_litellm(spec, 20_000_000, args.concurrency, args.concurrency))
        direct_wall, direct_latencies = asyncio.run(
            direct_litellm(spec, 30_000_000, direct_count, args.concurrency)
        )
    judged = outcomes["auto"] + outcomes["escalate"]
    rate = judged / wall
    direct_rate = direct_count / direct_wall
    added = [(seconds - latency_s) * 1000 for seconds in latencies]
    direct_added = [(seconds - latency_s) * 1000 for seconds in direct_latencies]
    return {
        "mode": "wait",
        "sessions": args.sessions,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "judged": judged,
        "escalated": outcomes["escalate"],
        "failed": outcomes["failed"] + outcomes["undecided"],
        "seconds": round(wall, 3),
        "judged_per_s": round(rate, 1),
        "ideal_per_s": round(ideal, 1),
        "throughput_ratio": round(rate / ideal, 4),
        "added_latency_p50_ms": round(percentile(added, 0.5), 2),
        "added_latency_p99_ms": round(percentile(added, 0.99), 2),
        "peak_rss_mb": round(peak_rss, 1),
        "rss_after_warmup_mb": round(rss_after_warmup, 1),
        "harness_per_s": round(harness_count / harness_wall, 1),
        "harness_throughput_ratio": round(harness_count / harness_wall / ideal, 4),
        "throughput_vs_harness": round(rate / (harness_count / harness_wall), 4),
        "direct_sessions": direct_count,
        "direct_per_s": round(direct_rate, 1),
        "direct_throughput_ratio": round(direct_rate / ideal, 4),
        "direct_added_latency_p50_ms": round(percentile(direct_added, 0.5), 2),
        "direct_added_latency_p99_ms": round(percentile(direct_added, 0.99), 2),
        "service_vs_direct": round(rate / direct_rate, 4),
    }


def start_py_spy(path: str | None, pid: int) -> subprocess.Popen[bytes] | None:
    """Sample ``pid`` with py-spy into ``path`` (collapsed stacks), when asked to."""
    if not path:
        return None
    argv = [
        "py-spy",
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "-o",
        path,
        "--rate",
        "50",
        "--gil",
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_py_spy(profiler: subprocess.Popen[bytes] | None) -> None:
    """Let py-spy write its file."""
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(30)


# --------------------------------------------------------------------------- worker mode


def count_decided(database_url: str) -> int:
    """Sessions with a decision (one judge is active: one decision per judged session)."""
    from sqlalchemy import func
    from sqlmodel import select

    from judgeloop.models import Decision
    from judgeloop.store import db_session, make_engine

    engine = make_engine(database_url)
    try:
        with db_session(engine) as db:
            return int(db.exec(select(func.count()).select_from(Decision)).one())
    finally:
        engine.dispose()


def wait_decided(database_url: str, count: int, deadline: float, seen: Any = None) -> int:
    """Poll until ``count`` sessions are decided (or the deadline); return how many are."""
    decided = count_decided(database_url)
    while decided < count and time.monotonic() < deadline:
        time.sleep(0.2)
        decided = count_decided(database_url)
        if seen is not None:
            seen(decided)
    return decided


async def post_batches(
    url: str, key: str, count: int, batch: int, concurrency: int, first: int = 0
) -> float:
    """``count`` sessions in batches of ``batch`` without waiting; returns the wall time."""
    starts = iter(range(first, first + count, batch))
    headers = {"Authorization": f"Bearer {key}"}
    import httpx

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:

        async def one_client() -> None:
            for start in starts:
                end = min(start + batch, first + count)
                payload = [session_payload(i) for i in range(start, end)]
                response = await client.post("/v1/sessions", json=payload)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return time.perf_counter() - started


def with_workers(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    """Post without waiting; M worker processes judge; time until every session is decided."""
    if not database_url.startswith("postgresql"):
        raise SystemExit("--workers needs PostgreSQL: pass --database-url postgresql+psycopg://…")
    latency_s = args.latency_ms / 1000
    with stub_llm(args.latency_ms) as stub_url:
        key, _spec = prepare(database_url, stub_url)
        job_env = {
            "JUDGELOOP_WORKER_CONCURRENCY": str(args.worker_concurrency),
            "JUDGELOOP_WORKER_JOB_SIZE": str(args.job_size),
        }
        with (
            server(database_url, worker=False, extra_env=job_env) as (url, process),
            workers(database_url, args.workers, job_env),
        ):
            sampler = RssSampler(process.pid)
            sampler.start()
            # Warm-up (not measured): wait until the workers have started and judged one.
            asyncio.run(post_batches(url, key, 1, 1, 1, first=10**8))
            wait_decided(database_url, 1, time.monotonic() + args.timeout_s)
            started = time.perf_counter()
            post_seconds = asyncio.run(post_batches(url, key, args.sessions, 2 * args.job_size, 4))
            with progress() as bar:
                task = bar.add_task(
                    f"sessions judged by {args.workers} worker(s)", total=args.sessions
                )
                decided = (
                    wait_decided(
                        database_url,
                        args.sessions + 1,
                        time.monotonic() + args.timeout_s,
                        lambda n: bar.update(task, completed=n - 1),
                    )
                    - 1
                )
            wall = time.perf_counter() - started
            peak_rss = sampler.stop()
    rate = decided / wall
    # A worker runs `concurrency` jobs of `job_size` sessions at once, their LLM calls
    # concurrent: at most workers x concurrency x job_size sessions per L.
    ideal = args.workers * args.worker_concurrency * args.job_size / latency_s
    return {
        "mode": "workers",
        "workers": args.workers,
        "worker_concurrency": args.worker_concurrency,
        "job_size": args.job_size,
        "sessions": args.sessions,
        "latency_ms": args.latency_ms,
        "judged": decided,
        "seconds": round(wall, 3),
        "post_seconds": round(post_seconds, 3),
        "judged_per_s": round(rate, 1),
        "ideal_per_s": round(ideal, 1),
        "throughput_ratio": round(rate / ideal, 4),
        "peak_rss_mb": round(peak_rss, 1),
    }


# --------------------------------------------------------------------------- main


def report_text(result: dict[str, Any]) -> str:
    """The figures as a few lines of text."""
    if result["mode"] == "workers":
        return (
            f"{result['judged']} of {result['sessions']} sessions judged by "
            f"{result['workers']} worker(s) in {result['seconds']:.1f} s: "
            f"{result['judged_per_s']:.0f}/s = {result['throughput_ratio']:.1%} of "
            f"workers x jobs x job size / L = {result['ideal_per_s']:.0f}/s; server peak RSS "
            f"{result['peak_rss_mb']:.0f} MB"
        )
    return (
        f"{result['judged']} sessions judged ({result['escalated']} escalated, "
        f"{result['failed']} failed) in {result['seconds']:.1f} s at concurrency "
        f"{result['concurrency']}, LLM latency {result['latency_ms']:g} ms\n"
        f"throughput {result['judged_per_s']:.0f}/s = {result['throughput_ratio']:.1%} of "
        f"C/L = {result['ideal_per_s']:.0f}/s (target >= 80%)\n"
        f"added latency over L: p50 {result['added_latency_p50_ms']:.1f} ms, "
        f"p99 {result['added_latency_p99_ms']:.1f} ms (target p99 <= 15 ms)\n"
        f"server peak RSS {result['peak_rss_mb']:.0f} MB "
        f"({result['rss_after_warmup_mb']:.0f} MB after warm-up)\n"
        f"bare HTTP to the stub, same client and concurrency: {result['harness_per_s']:.0f}/s "
        f"= {result['harness_throughput_ratio']:.1%} of C/L (the machine's ceiling now)\n"
        f"litellm directly, same concurrency: {result['direct_per_s']:.0f}/s = "
        f"{result['direct_throughput_ratio']:.1%} of C/L, added p50 "
        f"{result['direct_added_latency_p50_ms']:.1f} ms / p99 "
        f"{result['direct_added_latency_p99_ms']:.1f} ms; service / direct = "
        f"{result['service_vs_direct']:.1%}"
    )


def main() -> int:
    """Run the benchmark; print the figures (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=None, help="N (default 3,000)")
    parser.add_argument("--concurrency", type=int, default=64, help="C (default 64)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="L (default 100)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL server URL")
    parser.add_argument("--workers", type=int, default=0, help="M worker processes (PostgreSQL)")
    parser.add_argument("--worker-concurrency", type=int, default=4, help="jobs per worker (4)")
    parser.add_argument("--job-size", type=int, default=32, help="sessions per job (32)")
    parser.add_argument("--timeout-s", type=float, default=600, help="worker mode: give up after")
    parser.add_argument("--py-spy", default=None, help="record the server's stacks to FILE")
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if args.sessions is None:
        args.sessions = (300 if args.workers else 600) if args.quick else 3000
    before = machine()
    with fresh_database(args.database_url) as database_url:
        dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"
        result = (
            with_workers(args, database_url) if args.workers else synchronous(args, database_url)
        )
    summary = {"benchmark": "bench_service", "database": dialect, **result}
    summary["machine"] = before
    summary["loadavg_after"] = list(machine()["loadavg"])
    print(f"database: {dialect}; " + machine_line(before))
    print(report_text(result))
    if args.json:
        print_json(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

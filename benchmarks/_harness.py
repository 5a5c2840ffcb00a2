"""What the performance benchmarks share: databases, processes, memory sampling, reporting.

Not a benchmark itself (``bench_*.py`` are). Every process it starts is stopped by the
context manager that started it, also when a benchmark fails.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
PG_ENV = "JUDGELOOP_BENCH_POSTGRES_URL"


def machine() -> dict[str, Any]:
    """CPU count and load average now: the figures mean little without them."""
    load = os.getloadavg()
    return {
        "cpu_count": os.cpu_count(),
        "loadavg": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def machine_line(info: dict[str, Any]) -> str:
    """One line naming the machine and its load (other work on it makes figures noisy)."""
    return (
        f"machine: {info['cpu_count']} CPUs, load average {info['loadavg'][0]:.2f} "
        f"(1 min) {info['loadavg'][1]:.2f} (5 min); Python {info['python']}"
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_postgres_url() -> str | None:
    """``$JUDGELOOP_BENCH_POSTGRES_URL``, else the tests' ``$JUDGELOOP_TEST_POSTGRES_URL``."""
    return os.environ.get(PG_ENV) or os.environ.get("JUDGELOOP_TEST_POSTGRES_URL")


@contextmanager
def fresh_database(postgres_url: str | None = None) -> Iterator[str]:
    """A new, migrated database: a SQLite file in a temporary folder, or a new PostgreSQL one.

    With ``postgres_url`` a database named ``judgeloop_bench_<random>`` is created on that
    server and dropped afterwards.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from judgeloop.store import make_engine, upgrade

    if postgres_url is None:
        folder = Path(tempfile.mkdtemp(prefix="judgeloop-bench-"))
        url = f"sqlite:///{folder / 'bench.db'}"
        try:
            _migrate(url, make_engine, upgrade)
            yield url
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    base = make_url(postgres_url)
    name = f"judgeloop_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        _migrate(url, make_engine, upgrade)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str, make_engine: Any, upgrade: Any) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def bench_env(**overrides: str) -> dict[str, str]:
    """The environment for a judgeloop process: offline price map, a dummy OpenAI key."""
    env = dict(os.environ)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("OPENAI_API_KEY", "sk-bench")
    env.update(overrides)
    return env


class Process:
    """A child process that is terminated (then killed) on exit."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.log = tempfile.TemporaryFile(mode="w+")
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE if name == "stub" else self.log,
            stderr=self.log,
            text=True,
        )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def output(self) -> str:
        """What the process wrote to stderr (and stdout, except the stub's)."""
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self.log.close()


@contextmanager
def stub_llm(latency_ms: float) -> Iterator[str]:
    """The stub OpenAI-compatible LLM in its own process; yields its base URL."""
    process = Process(
        [sys.executable, str(BENCHMARKS / "_stub_server.py"), "--latency-ms", str(latency_ms)],
        bench_env(),
        "stub",
    )
    try:
        assert process.popen.stdout is not None
        line = process.popen.stdout.readline().strip()
        if not line.startswith("ready "):
            raise RuntimeError(f"stub LLM did not start: {line!r} {process.output()}")
        yield line.removeprefix("ready ")
    finally:
        process.stop()


@contextmanager
def server(
    database_url: str, *, worker: bool, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, Process]]:
    """``judgeloop serve`` on a free port; yields its URL and the process.

    With ``$BENCH_DUMP`` set to a path, the server's log is written there when it stops.
    """
    port = free_port()
    env = bench_env(
        JUDGELOOP_DATABASE_URL=database_url,
        JUDGELOOP_WORKER="true" if worker else "false",
        **(extra_env or {}),
    )
    process = Process(
        [sys.executable, "-m", "judgeloop", "serve", "--port", str(port)], env, "server"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url, process
    finally:
        if os.environ.get("BENCH_DUMP"):
            Path(os.environ["BENCH_DUMP"]).write_text(process.output())
        process.stop()


@contextmanager
def workers(
    database_url: str, count: int, extra_env: dict[str, str] | None = None
) -> Iterator[list[Process]]:
    """``count`` ``judgeloop worker`` processes on ``database_url``."""
    env = bench_env(
        JUDGELOOP_DATABASE_URL=database_url,
        JUDGELOOP_WORKER_POLL_SECONDS="0.1",
        **(extra_env or {}),
    )
    started = [
        Process([sys.executable, "-m", "judgeloop", "worker"], env, f"worker-{i}")
        for i in range(count)
    ]
    try:
        yield started
    finally:
        for process in started:
            process.stop()


def wait_until_up(url: str, process: Process, timeout_s: float = 60) -> None:
    """Poll ``/healthz`` until it answers; fail with the server's output if it dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.output()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not answer within {timeout_s:g} s")


class RssSampler(threading.Thread):
    """Samples a process's resident memory every ``interval_s``; keeps the peak."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        import psutil

        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.last_bytes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        """Sample until stopped or the process ends."""
        import psutil

        while not self._halt.is_set():
            try:
                self.last_bytes = self.process.memory_info().rss
            except psutil.Error:
                return
            self.peak_bytes = max(self.peak_bytes, self.last_bytes)
            self._halt.wait(self.interval_s)

    def stop(self) -> float:
        """Stop sampling; return the peak in MB."""
        self._halt.set()
        self.join(5)
        return self.peak_bytes / 2**20


def progress() -> Any:
    """A rich progress bar on stderr (stdout stays clean for ``--json``)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def session_payload(index: int, source: str = "bench") -> dict[str, Any]:
    """A realistic small support session (system, user, tool call, tool result, answer)."""
    order = f"NW-{index}"
    return {
        "source": source,
        "external_id": f"{source}-{index}",
        "messages": [
            {"role": "system", "content": "You are a support agent for an online shop."},
            {"role": "user", "content": f"Where is my order {order}? It was due on Monday."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "name": "lookup_order", "arguments": {"order_id": order}}
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "name": "lookup_order",
                "content": {"status": "shipped", "carrier": "DHL", "eta_days": index % 5},
            },
            {
                "role": "assistant",
                "content": f"Order {order} shipped with DHL and should arrive within "
                f"{index % 5 + 1} days.",
            },
        ],
        "metadata": {"channel": "chat", "locale": "en"},
    }


def print_json(summary: dict[str, Any]) -> None:
    """The summary as one JSON line (the last line of output under ``--json``)."""
    print(json.dumps(summary, default=str), flush=True)

"""Gates over HTTP on a live server: tiers, long-poll, reviewer decisions, expiry, callbacks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from judgeloop.client import AsyncJudgeloopClient, JudgeloopClient, JudgeloopError
from judgeloop.config import Settings
from judgeloop.models import AuditEvent, Gate
from judgeloop.store import db_session
from judgeloop.types import utc_now
from tests.conftest import auth

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE = {"messages": [{"role": "user", "content": "refund order 7"}], "context": {"n": 1}}


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The test settings with the demo's gate rules."""
    return Settings(
        database_url=database_url,
        max_body_bytes=200_000,
        worker=False,
        gates_file=REPO_ROOT / "judges" / "gates.yaml",
        gate_max_state_bytes=5_000,
    )


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def callback_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server that records the JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []
    handler = type("Recorder", (_Recorder,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    thread.join(timeout=5)


def _open(api: httpx.Client, key: str, name: str, arguments: dict[str, Any], **extra: Any) -> Any:
    body = {"action": {"name": name, "arguments": arguments}, "state": STATE, **extra}
    response = api.post("/v1/gates", json=body, headers=auth(key))
    assert response.status_code == 201, response.text
    return response.json()


def _wait_for(received: list[dict[str, Any]], count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while len(received) < count:
        assert time.monotonic() < deadline, "callback never arrived"
        time.sleep(0.05)


def test_red_action_waits_for_a_reviewer(api: httpx.Client, keys: dict[str, str]) -> None:
    gate = _open(api, keys["pipeline"], "delete_customer", {"id": 7})
    assert (gate["status"], gate["tier"], gate["rule"]) == ("pending", "red", "deletions")
    assert gate["state"] == STATE and gate["expires_at"]
    assert api.get(f"/v1/gates/{gate['id']}", headers=auth(keys["pipeline"])).json()["status"] == (
        "pending"
    )
    # The gate is a queue item like any other.
    queue = api.get("/v1/queue", headers=auth(keys["reviewer"])).json()["data"]
    assert [(item["kind"], item["priority"]) for item in queue] == [("gate", 450)]
    # Only reviewers decide; only pipelines (and engineers) open gates.
    decision = {"action": "approve"}
    path = f"/v1/gates/{gate['id']}/decision"
    assert api.post(path, json=decision, headers=auth(keys["pipeline"])).status_code == 403
    assert api.post("/v1/gates", json={}, headers=auth(keys["reviewer"])).status_code == 403
    # Long-poll returns as soon as the reviewer decides.
    answers: list[Any] = []
    started = time.monotonic()
    poll = threading.Thread(
        target=lambda: answers.append(
            api.get(f"/v1/gates/{gate['id']}?wait=20", headers=auth(keys["pipeline"])).json()
        )
    )
    poll.start()
    time.sleep(0.6)
    decided = api.post(path, json=decision, headers=auth(keys["reviewer"]))
    assert decided.status_code == 200, decided.text
    poll.join(timeout=10)
    assert answers[0]["status"] == "approved" and time.monotonic() - started < 10
    again = api.post(path, json=decision, headers=auth(keys["reviewer"]))
    assert again.status_code == 409 and "already approved" in again.json()["detail"]


def test_rejection_reason_reaches_the_agent_by_get_and_callback(
    api: httpx.Client, keys: dict[str, str], callback_server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = callback_server
    gate = _open(api, keys["pipeline"], "send_email", {"to": "x@gmail.com"}, callback_url=url)
    path = f"/v1/gates/{gate['id']}/decision"
    no_reason = api.post(path, json={"action": "reject"}, headers=auth(keys["reviewer"]))
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    rejected = api.post(
        path,
        json={"action": "reject", "reason": "never email customers' card numbers"},
        headers=auth(keys["reviewer"]),
    )
    assert rejected.status_code == 200
    seen = api.get(f"/v1/gates/{gate['id']}", headers=auth(keys["pipeline"])).json()
    assert (seen["status"], seen["reason"]) == ("rejected", "never email customers' card numbers")
    _wait_for(received)
    assert received[0]["id"] == gate["id"] and received[0]["status"] == "rejected"
    assert received[0]["reason"] == "never email customers' card numbers"


def test_modify_returns_new_arguments(api: httpx.Client, keys: dict[str, str]) -> None:
    gate = _open(api, keys["pipeline"], "refund", {"amount": 400})
    decided = api.post(
        f"/v1/gates/{gate['id']}/decision",
        json={"action": "modify", "modified_arguments": {"amount": 100}},
        headers=auth(keys["reviewer"]),
    ).json()
    assert decided["status"] == "modified" and decided["modified_arguments"] == {"amount": 100}


def test_yellow_under_limit_is_approved_over_is_queued_unmatched_is_red(
    api: httpx.Client, keys: dict[str, str]
) -> None:
    small = _open(api, keys["pipeline"], "refund", {"amount": 60})
    assert (small["status"], small["tier"], small["queue_item_id"]) == ("approved", "yellow", None)
    large = _open(api, keys["pipeline"], "refund", {"amount": 600})
    assert (large["status"], large["tier"]) == ("pending", "yellow")
    [queued] = api.get("/v1/queue", headers=auth(keys["reviewer"])).json()["data"]
    assert queued["reasons"] == ["gate:yellow", "gate:rule:refunds"]
    unknown = _open(api, keys["pipeline"], "launch_rocket", {})
    assert (unknown["status"], unknown["tier"], unknown["rule"]) == ("pending", "red", "unmatched")
    queue = api.get("/v1/queue", headers=auth(keys["reviewer"])).json()["data"]
    assert [item["priority"] for item in queue] == [450, 250]
    too_big = {"action": {"name": "get_order"}, "state": {"blob": "x" * 6_000}}
    assert api.post("/v1/gates", json=too_big, headers=auth(keys["pipeline"])).status_code == 413


def test_hard_timeout_rejects_and_tells_the_agent(
    api: httpx.Client,
    keys: dict[str, str],
    engine: Engine,
    callback_server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = callback_server
    gate = _open(api, keys["pipeline"], "wire_transfer", {"amount": 9}, callback_url=url)
    with db_session(engine) as db:
        past = utc_now() - timedelta(seconds=1)
        db.exec(sa.update(Gate).where(Gate.id == gate["id"]).values(expires_at=past))  # type: ignore[call-overload]
        db.commit()
    seen = api.get(f"/v1/gates/{gate['id']}", headers=auth(keys["pipeline"])).json()
    assert seen["status"] == "expired"
    assert seen["reason"].startswith("expired: no reviewer decided within")
    assert api.get("/v1/queue", headers=auth(keys["reviewer"])).json()["data"] == []
    late = api.post(
        f"/v1/gates/{gate['id']}/decision",
        json={"action": "approve"},
        headers=auth(keys["reviewer"]),
    )
    assert late.status_code == 409
    _wait_for(received)
    assert received[0]["status"] == "expired"
    # An agent already long-polling learns of the expiry within a poll.
    waiting = _open(api, keys["pipeline"], "wire_transfer", {"amount": 10})
    with db_session(engine) as db:
        soon = utc_now() + timedelta(seconds=1)
        db.exec(sa.update(Gate).where(Gate.id == waiting["id"]).values(expires_at=soon))  # type: ignore[call-overload]
        db.commit()
    started = time.monotonic()
    polled = api.get(f"/v1/gates/{waiting['id']}?wait=20", headers=auth(keys["pipeline"]))
    assert polled.json()["status"] == "expired" and time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while True:
        with db_session(engine) as db:
            events = db.exec(
                sa.select(AuditEvent.detail).where(AuditEvent.action == "gate.callback")
            ).all()
        if events or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert events and events[0][0]["delivered"] is True


def test_clients_open_and_wait(api: httpx.Client, server_url: str, keys: dict[str, str]) -> None:
    with JudgeloopClient(server_url, keys["pipeline"]) as client:
        assert client.open_gate("get_order", {"id": 1})["status"] == "approved"
        gate = client.open_gate("refund", {"amount": 500}, state=STATE)
        reviewer = threading.Timer(
            0.5,
            lambda: api.post(
                f"/v1/gates/{gate['id']}/decision",
                json={"action": "reject", "reason": "too much"},
                headers=auth(keys["reviewer"]),
            ),
        )
        reviewer.start()
        decided = client.wait_for_gate(gate["id"], timeout=15)
        reviewer.join(timeout=10)
        assert (decided["status"], decided["reason"]) == ("rejected", "too much")
        with pytest.raises(JudgeloopError) as caught:
            client.get_gate(999_999)
        assert caught.value.status_code == 404 and "999999" in str(caught.value)

    async def run() -> dict[str, Any]:
        async with AsyncJudgeloopClient(server_url, keys["pipeline"]) as client:
            gate = await client.open_gate("delete_order", {"id": 3})
            reviewer = threading.Timer(
                0.5,
                lambda: api.post(
                    f"/v1/gates/{gate['id']}/decision",
                    json={"action": "approve"},
                    headers=auth(keys["reviewer"]),
                ),
            )
            reviewer.start()
            decided = await client.wait_for_gate(gate["id"], timeout=15)
            reviewer.join(timeout=10)
            return decided

    assert asyncio.run(run())["status"] == "approved"


def test_docs_example_runs(api: httpx.Client, server_url: str, keys: dict[str, str]) -> None:
    env = {
        **os.environ,
        "JUDGELOOP_URL": server_url,
        "JUDGELOOP_API_KEY": keys["pipeline"],
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    agent = subprocess.Popen(
        [sys.executable, "-u", str(REPO_ROOT / "docs" / "examples" / "agent_gate.py"), "180", "30"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert agent.stdout is not None
    first = agent.stdout.readline()
    assert first.startswith("gate ") and "red" not in first and "pending" in first, first
    gate_id = int(first.split()[1].rstrip(":"))
    time.sleep(0.3)
    approved = api.post(
        f"/v1/gates/{gate_id}/decision", json={"action": "approve"}, headers=auth(keys["reviewer"])
    )
    assert approved.status_code == 200, approved.text
    rest, _ = agent.communicate(timeout=30)
    assert agent.returncode == 0, rest
    assert "refunded 180.00 on order A-1042" in rest


def test_two_reviewers_deciding_at_once_one_wins(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    from judgeloop.store import create_key

    with db_session(engine) as db:
        _row, second = create_key(db, role="reviewer", name="second-reviewer", actor="test")
    gate = _open(api, keys["pipeline"], "purge_backups", {})
    path = f"/v1/gates/{gate['id']}/decision"
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def decide(key: str, body: dict[str, Any]) -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as client:
            barrier.wait()
            codes.append(client.post(path, json=body, headers=auth(key)).status_code)

    threads = [
        threading.Thread(target=decide, args=(keys["reviewer"], {"action": "approve"})),
        threading.Thread(target=decide, args=(second, {"action": "reject", "reason": "no"})),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(codes) == [200, 409]
    final = api.get(f"/v1/gates/{gate['id']}", headers=auth(keys["pipeline"])).json()
    assert final["status"] in ("approved", "rejected")

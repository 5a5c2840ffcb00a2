"""Approval gates in the web UI: a reviewer decides an agent's action in Chromium; the dashboard.

The browser tests drive Debian's Chromium through Playwright as tests/test_web_ui.py does; the
rest speak plain HTTP to the same live server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import col

from judgeloop.config import Settings
from judgeloop.models import Gate, QueueItem
from judgeloop.store import claim_item, create_key, db_session, decide_gate
from judgeloop.types import utc_now
from judgeloop.web.auth import csrf_token
from tests import test_web_ui
from tests.web_factories import DELETE_STATE, queued_gate, ui_key

# The Chromium fixtures of the reviewer UI tests, shared rather than written twice.
chromium = test_web_ui.chromium
page = test_web_ui.page
sign_in = test_web_ui.sign_in
sync_api = test_web_ui.sync_api

TARGET = 2
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The conftest settings, the repository's gate rules, a daily target a test can pass."""
    return Settings(
        database_url=database_url,
        max_batch_size=50,
        max_body_bytes=200_000,
        worker=False,
        judges_dir=REPO_ROOT / "judges",
        gate_daily_target=TARGET,
    )


class Agent:
    """A test agent: asks the API before acting, then blocks on the outcome in a thread."""

    def __init__(self, server_url: str, key: str) -> None:
        self.client = httpx.Client(
            base_url=server_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        self.outcome: dict[str, Any] | None = None
        self._waiting: threading.Thread | None = None

    def ask(self, name: str, arguments: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        """Open a gate for the action and start waiting for its outcome (long-poll)."""
        response = self.client.post(
            "/v1/gates", json={"action": {"name": name, "arguments": arguments}, "state": state}
        )
        assert response.status_code == 201, response.text
        gate: dict[str, Any] = response.json()
        self._waiting = threading.Thread(target=self._wait, args=(gate["id"],), daemon=True)
        self._waiting.start()
        return gate

    def _wait(self, gate_id: int) -> None:
        response = self.client.get(f"/v1/gates/{gate_id}", params={"wait": 30})
        self.outcome = response.json()

    def blocked(self) -> bool:
        """Still waiting for a person."""
        return self._waiting is not None and self._waiting.is_alive()

    def resumed(self) -> dict[str, Any]:
        """The outcome the agent acts on, once the long-poll has returned."""
        assert self._waiting is not None
        self._waiting.join(timeout=35)
        assert self.outcome is not None, "the agent never heard back"
        self.client.close()
        return self.outcome


@pytest.fixture
def agent(server_url: str, keys: dict[str, str]) -> Iterator[Agent]:
    """An agent with a pipeline key on the live test server."""
    agent = Agent(server_url, keys["pipeline"])
    yield agent
    agent.client.close()


def _gate(engine: Engine, gate_id: int) -> Gate:
    with db_session(engine) as db:
        gate = db.get(Gate, gate_id)
        assert gate is not None
        db.expunge(gate)
    return gate


def _open_gate_page(page: sync_api.Page, engine: Engine, item_id: int) -> None:
    sign_in(page, ui_key(engine, "reviewer", "rita"))
    page.wait_for_url("**/ui/queue")
    row = page.locator("tr[data-kind=gate]")
    assert row.count() == 1
    assert "gate" in row.locator(".kind-gate").inner_text()
    assert row.locator(".tier-red").inner_text() == "red"
    assert row.locator(".action-name").inner_text() == "delete_customer"
    page.click(f"a.open-item[href^='/ui/items/{item_id}']")
    page.wait_for_selector("#approve-form")


# --------------------------------------------------------------------------- in Chromium


def test_a_red_action_waits_until_a_reviewer_approves_it(
    page: sync_api.Page, engine: Engine, agent: Agent
) -> None:
    asked = agent.ask("delete_customer", {"customer_id": 42}, DELETE_STATE)
    assert (asked["status"], asked["tier"], asked["rule"]) == ("pending", "red", "deletions")
    gate_id, item_id = asked["id"], asked["queue_item_id"]
    _open_gate_page(page, engine, item_id)

    # What the reviewer decides on: the action, its arguments, the state that led to it.
    assert page.locator("#gate-action").inner_text() == "delete_customer"
    assert '"customer_id": 42' in page.locator("#proposed-arguments").inner_text()
    assert page.locator("article.message").count() == 2
    assert "Close my account" in page.locator("article.role-user").inner_text()
    assert "call-7" in page.locator(".tool-call").inner_text()
    assert "T-77" in page.locator("#state-context").inner_text()
    assert page.locator("#gate-rule").inner_text() == "deletions"
    assert "left" in page.locator("#time-left").inner_text()
    assert agent.blocked()  # opening the gate decides nothing: the agent still waits
    assert _gate(engine, gate_id).status == "pending"

    page.keyboard.press("a")
    page.wait_for_selector("#gate-outcome")
    assert "Approved" in page.locator("#gate-outcome h2").inner_text()
    heard = agent.resumed()
    assert (heard["id"], heard["status"], heard["reason"]) == (gate_id, "approved", None)
    gate = _gate(engine, gate_id)
    assert (gate.status, gate.reason, gate.modified_arguments) == ("approved", None, None)
    assert gate.decided_at is not None
    with db_session(engine) as db:
        item = db.get(QueueItem, item_id)
        assert item is not None and item.status == "done"


def test_a_rejection_returns_the_reviewers_reason_to_the_agent(
    page: sync_api.Page, engine: Engine, agent: Agent
) -> None:
    asked = agent.ask("delete_customer", {"customer_id": 42}, DELETE_STATE)
    gate_id, item_id = asked["id"], asked["queue_item_id"]
    _open_gate_page(page, engine, item_id)
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reason"
    page.keyboard.type("Deleting gold accounts needs a manager; offer to suspend it instead.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#gate-outcome")
    assert "Rejected" in page.locator("#gate-outcome h2").inner_text()
    assert "offer to suspend" in page.locator("#outcome-reason").inner_text()
    assert page.url.endswith(f"/ui/items/{item_id}")  # no queue filter picked up on the way
    reason = "Deleting gold accounts needs a manager; offer to suspend it instead."
    gate = _gate(engine, gate_id)
    assert (gate.status, gate.reason) == ("rejected", reason)
    heard = agent.resumed()
    assert (heard["status"], heard["reason"]) == ("rejected", reason)


def test_modified_arguments_are_checked_then_approved(
    page: sync_api.Page, engine: Engine, agent: Agent
) -> None:
    asked = agent.ask("delete_customer", {"customer_id": 42}, DELETE_STATE)
    gate_id, item_id = asked["id"], asked["queue_item_id"]
    _open_gate_page(page, engine, item_id)
    assert '"customer_id": 42' in page.locator("#arguments").input_value()  # prefilled

    page.fill("#arguments", '{"customer_id": 42, "soft_delete": tru}')
    page.click("#modify-form button[type=submit]")
    page.wait_for_selector("#gate-error")
    error = page.locator("#gate-error").inner_text()
    assert "not valid JSON" in error and "line 1, column" in error
    assert "tru}" in page.locator("#arguments").input_value()  # the reviewer's text is kept
    assert _gate(engine, gate_id).status == "pending"

    page.keyboard.press("m")
    page.fill("#arguments", '{"customer_id": 42, "soft_delete": true}')
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#gate-outcome")
    assert "soft_delete" in page.locator("#outcome-arguments").inner_text()
    gate = _gate(engine, gate_id)
    assert gate.status == "modified"
    assert gate.modified_arguments == {"customer_id": 42, "soft_delete": True}
    assert gate.arguments == {"customer_id": 42}  # the proposal itself is kept as it was
    heard = agent.resumed()
    assert heard["status"] == "modified"
    assert heard["modified_arguments"] == {"customer_id": 42, "soft_delete": True}


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
def client(server_url: str) -> Iterator[httpx.Client]:
    """A client that keeps cookies and does not follow redirects."""
    with httpx.Client(base_url=server_url, timeout=30) as http:
        yield http


def _signed_in(client: httpx.Client, engine: Engine, role: str, name: str) -> str:
    key = ui_key(engine, role, name)
    assert client.post("/ui/login", data={"key": key}).status_code == 303
    return key


def test_deciding_needs_the_csrf_token_and_a_clear_form(
    client: httpx.Client, engine: Engine
) -> None:
    gate_id, item_id = queued_gate(engine)
    key = _signed_in(client, engine, "reviewer", "rita")
    assert client.get(f"/ui/items/{item_id}").status_code == 200  # opening claims it
    url = f"/ui/items/{item_id}/gate"
    assert client.post(url, data={"decision": "approve"}).status_code == 403
    assert client.post(url, data={"decision": "approve", "csrf": "0" * 64}).status_code == 403
    cross_site = client.post(
        url,
        data={"decision": "approve", "csrf": csrf_token(key)},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert _gate(engine, gate_id).status == "pending"

    token = {"csrf": csrf_token(key)}
    response = client.post(url, data={**token, "decision": "reject", "rejection": "  "})
    assert response.status_code == 422 and "Give a reason" in response.text
    response = client.post(url, data={**token, "decision": "modify", "arguments": "[1, 2]"})
    assert response.status_code == 422 and "must be a JSON object" in response.text
    response = client.post(url, data={**token, "decision": "modify", "arguments": ""})
    assert response.status_code == 422 and "empty" in response.text
    response = client.post(url, data={**token, "decision": "launch"})
    assert response.status_code == 422
    assert _gate(engine, gate_id).status == "pending"

    response = client.post(url, data={**token, "decision": "approve"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/ui/items/{item_id}"
    assert _gate(engine, gate_id).status == "approved"
    again = client.post(url, data={**token, "decision": "reject", "rejection": "too late"})
    assert again.status_code == 409 and "already approved" in again.text
    outcome = client.get(f"/ui/items/{item_id}")
    assert 'id="gate-outcome"' in outcome.text and 'id="approve-form"' not in outcome.text


@pytest.fixture
def callback_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP endpoint that records the JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []

    class Record(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            length = int(self.headers.get("Content-Length", 0))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/gate-done", received
    server.shutdown()
    thread.join(timeout=5)


def test_a_decision_in_the_ui_calls_the_agent_back(
    client: httpx.Client,
    engine: Engine,
    keys: dict[str, str],
    callback_url: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = callback_url
    asked = client.post(
        "/v1/gates",
        headers={"Authorization": f"Bearer {keys['pipeline']}"},
        json={"action": {"name": "launch_rocket", "arguments": {"count": 1}}, "callback_url": url},
    )
    assert asked.status_code == 201 and asked.json()["rule"] == "unmatched"
    item_id = asked.json()["queue_item_id"]
    key = _signed_in(client, engine, "reviewer", "rita")
    assert client.get(f"/ui/items/{item_id}").status_code == 200
    decided = client.post(
        f"/ui/items/{item_id}/gate",
        data={
            "csrf": csrf_token(key),
            "decision": "reject",
            "rejection": "Not from a support ticket.",
        },
    )
    assert decided.status_code == 303
    assert decided.headers["location"] == f"/ui/items/{item_id}"  # the reason is no filter
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(body["id"], body["status"], body["reason"]) for body in received] == [
        (asked.json()["id"], "rejected", "Not from a support ticket.")
    ]


def test_someone_elses_gate_cannot_be_decided(client: httpx.Client, engine: Engine) -> None:
    gate_id, item_id = queued_gate(engine)
    with db_session(engine) as db:
        holder, _plaintext = create_key(db, role="reviewer", name="sam", actor="test")
        claim_item(db, item_id, holder, lease=timedelta(minutes=15))
    key = _signed_in(client, engine, "reviewer", "rita")
    page_ = client.get(f"/ui/items/{item_id}")
    assert page_.status_code == 409 and "claimed by &#39;sam&#39;" in page_.text
    assert 'id="approve-form"' not in page_.text
    response = client.post(
        f"/ui/items/{item_id}/gate", data={"csrf": csrf_token(key), "decision": "approve"}
    )
    assert response.status_code == 409
    assert _gate(engine, gate_id).status == "pending"


def test_a_gate_waiting_past_the_soft_timeout_says_the_agent_is_blocked(
    client: httpx.Client, engine: Engine
) -> None:
    _old_gate, old_item = queued_gate(engine)
    _new_gate, new_item = queued_gate(engine, action_name="send_wire", arguments={"amount": 9})
    long_ago = utc_now() - timedelta(minutes=40)
    with db_session(engine) as db:
        db.exec(sa.update(Gate).where(col(Gate.id) == _old_gate).values(created_at=long_ago))
        db.exec(
            sa.update(QueueItem).where(col(QueueItem.id) == old_item).values(created_at=long_ago)
        )
        db.commit()
    _signed_in(client, engine, "reviewer", "rita")
    queue = client.get("/ui/queue").text
    rows = {
        item: queue.split(f'data-href="/ui/items/{item}"')[1].split("</tr>")[0]
        for item in (old_item, new_item)
    }
    assert "waiting &gt; 15 min — agent is blocked" in rows[old_item]
    assert "agent is blocked" not in rows[new_item]
    assert "send_wire" in rows[new_item]
    assert "agent is blocked" in client.get(f"/ui/items/{old_item}").text


def _decide(engine: Engine, item_id: int, gate_id: int, **decision: object) -> None:
    with db_session(engine) as db:
        reviewer, _plaintext = create_key(db, role="reviewer", name="rita", actor="test")
        claim_item(db, item_id, reviewer, lease=timedelta(minutes=15))
        decide_gate(db, gate_id, reviewer, **decision)  # type: ignore[arg-type]


def test_fatigue_page_counts_requests_and_human_decisions(
    client: httpx.Client, engine: Engine
) -> None:
    reasons = ["Suspend instead.", "Wrong customer: the ticket is about 41."]
    for index in range(4):
        gate_id, item_id = queued_gate(engine, arguments={"customer_id": index})
        if index < 2:
            _decide(engine, item_id, gate_id, action="reject", reason=reasons[index])
        elif index == 2:
            _decide(engine, item_id, gate_id, action="approve")
    _signed_in(client, engine, "engineer", "erin")
    queue_nav = client.get("/ui/gates")
    assert queue_nav.status_code == 200
    html = queue_nav.text
    assert 'href="/ui/gates"' in html  # in the nav
    today = utc_now().date().isoformat()
    row = html.split(f'data-day="{today}"')[1].split("</tr>")[0]
    cells = [cell.split(">")[-1] for cell in row.split("</td>")[:-1]]
    # day, red, yellow, green, requests, human decisions
    assert cells[1:6] == ["4", "0", "0", "4", "3"]
    assert "over by 1" in row and 'class="over-target"' in html
    assert f'id="daily-target">{TARGET}<' in html
    assert html.count("<svg") == 2 and "target 2" in html
    for reason in reasons:
        assert reason in html.split('id="rejected-gates"')[1]
    assert client.get("/ui/gates?days=0").status_code == 422


def test_reviewers_cannot_open_the_fatigue_page(client: httpx.Client, engine: Engine) -> None:
    _signed_in(client, engine, "reviewer", "rita")
    response = client.get("/ui/gates")
    assert response.status_code == 403 and "Not allowed" in response.text
    assert 'href="/ui/gates"' not in client.get("/ui/queue").text

"""A load driver for crash tests: posts sessions and human work, keeps what the server acknowledged.

It talks HTTP to a real server that may be killed at any moment. A request that meets a dead
server (refused, reset, cut short) or a 503 is re-sent after a pause until the deadline: every
write it makes is idempotent (sessions by source and external id, labels by content) or refused
the second time (a review, a gate decision), so a re-send never doubles anything. Only answers
the server actually gave are recorded as acknowledged; those are what must survive.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

RETRIED_STATUSES = {502, 503, 504}


@dataclass
class Acknowledged:
    """What the server said it stored, by kind."""

    sessions: dict[str, int] = field(default_factory=dict)  # external id -> session id
    labels: set[int] = field(default_factory=set)
    reviews: dict[int, int] = field(default_factory=dict)  # review id -> label id
    gate_decisions: dict[int, str] = field(default_factory=dict)  # gate id -> status
    resent: int = 0  # requests re-sent after a dead server or a 503
    unexpected: list[str] = field(default_factory=list)  # answers no crash can explain


class LoadDriver:
    """Drives one server's API with sessions, labels, reviews and gate decisions."""

    def __init__(self, base_url: str, keys: dict[str, str], *, deadline_seconds: float = 600):
        self.base_url = base_url
        self.keys = keys
        self.deadline = time.monotonic() + deadline_seconds
        self.acknowledged = Acknowledged()
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def _send(self, role: str, method: str, path: str, body: Any = None) -> httpx.Response | None:
        """Send until the server answers something other than a crash or a 503."""
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        pause = 0.05
        while time.monotonic() < self.deadline:
            try:
                with httpx.Client(base_url=self.base_url, timeout=60) as client:
                    response = client.request(method, path, json=body, headers=headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code not in RETRIED_STATUSES:
                return response
            with self._lock:
                self.acknowledged.resent += 1
            retry_after = response.headers.get("Retry-After") if response is not None else None
            time.sleep(float(retry_after) if retry_after else pause)
            pause = min(pause * 2, 1.0)
        return None

    def _unexpected(self, what: str, response: httpx.Response | None) -> None:
        answer = "no answer before the deadline" if response is None else response.text[:300]
        code = "-" if response is None else response.status_code
        with self._lock:
            self.acknowledged.unexpected.append(f"{what}: {code} {answer}")

    def post_sessions(
        self, templates: list[dict[str, Any]], count: int, *, batch_size: int = 100
    ) -> None:
        """Post ``count`` sessions in batches, made from ``templates`` with new external ids."""
        for start in range(0, count, batch_size):
            batch = []
            for index in range(start, min(start + batch_size, count)):
                template = templates[index % len(templates)]
                batch.append({**template, "source": "load", "external_id": f"load-{index}"})
            response = self._send("pipeline", "POST", "/v1/sessions", batch)
            if response is None or response.status_code not in (200, 201):
                self._unexpected(f"sessions {start}", response)
                continue
            with self._lock:
                for item in response.json()["data"]:
                    self.acknowledged.sessions[item["external_id"]] = item["id"]

    def post_label(self, external_id: str, value: str) -> None:
        """Append one SME label to a posted session."""
        label = {
            "session": {"source": "load", "external_id": external_id},
            "criterion": "resolved",
            "value": value,
            "annotator": "load-sme",
            "rationale": "crash test",
        }
        response = self._send("engineer", "POST", "/v1/labels", label)
        if response is None or response.status_code not in (200, 201):
            self._unexpected(f"label {external_id}", response)
            return
        with self._lock:
            self.acknowledged.labels.update(item["id"] for item in response.json()["data"])

    def review_next(self) -> bool:
        """Claim the most urgent queue item and review it; False when there is none."""
        # Gate items share the queue; they are decided through the gates API instead.
        claim = self._send("reviewer", "POST", "/v1/queue/claim?criterion=resolved")
        if claim is None or claim.status_code == 204:
            return False
        if claim.status_code != 200:
            self._unexpected("claim", claim)
            return False
        item = claim.json()
        review = {"label": "yes", "rationale": "crash test review"}
        response = self._send("reviewer", "POST", f"/v1/queue/{item['id']}/reviews", review)
        if response is not None and response.status_code == 201:
            outcome = response.json()
            with self._lock:
                self.acknowledged.reviews[outcome["review_id"]] = outcome["label_id"]
        elif response is None or response.status_code != 409:
            # 409: a re-send of a review the dead server had stored but not answered.
            self._unexpected(f"review of item {item['id']}", response)
        return True

    def open_and_decide_gate(self, number: int) -> None:
        """Ask for a red-tier action (a person must decide) and approve or reject it."""
        gate = {
            "action": {
                "name": "send_email",
                "arguments": {"to": f"customer-{number}@example.com", "body": "refund"},
            },
            "state": {"step": number},
        }
        opened = self._send("pipeline", "POST", "/v1/gates", gate)
        if opened is None or opened.status_code != 201:
            self._unexpected(f"gate {number}", opened)
            return
        gate_id = opened.json()["id"]
        decision = (
            {"action": "approve"}
            if number % 2
            else {"action": "reject", "reason": "crash test rejection"}
        )
        response = self._send("reviewer", "POST", f"/v1/gates/{gate_id}/decision", decision)
        if response is not None and response.status_code == 200:
            with self._lock:
                self.acknowledged.gate_decisions[gate_id] = response.json()["status"]
        elif response is None or response.status_code != 409:
            self._unexpected(f"decision on gate {gate_id}", response)

    def human_work(self) -> None:
        """Labels, reviews and gate decisions, round after round, until asked to stop."""
        number = 0
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            with self._lock:
                posted = list(self.acknowledged.sessions)[-5:]
            for external_id in posted:
                self.post_label(external_id, "yes" if number % 2 else "no")
            self.review_next()
            self.open_and_decide_gate(number)
            number += 1
            self.stopping.wait(0.05)


def session_templates(path: Path, limit: int = 50) -> list[dict[str, Any]]:
    """Sessions of a JSONL file to vary the load's content (their ids are replaced)."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for _, line in zip(range(limit), lines, strict=False)]


def run_in_thread(target: Callable[[], None]) -> threading.Thread:
    """Start ``target`` in a daemon thread."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread

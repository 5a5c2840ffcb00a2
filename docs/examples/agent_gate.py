"""An agent that asks judgeloop before issuing a refund, and acts on the answer.

Run against a server with a pipeline key (a reviewer approves or rejects in the web UI or via
POST /v1/gates/{id}/decision):

    JUDGELOOP_URL=http://127.0.0.1:8000 JUDGELOOP_API_KEY=jl_... python docs/examples/agent_gate.py
"""

from __future__ import annotations

import os
import sys
from typing import Any

from judgeloop.client import GateTimeoutError, JudgeloopClient


def issue_refund(order_id: str, amount: float) -> str:
    """The irreversible action (here a stand-in)."""
    return f"refunded {amount:.2f} on order {order_id}"


def main(amount: float = 180.0, wait_seconds: float = 600.0) -> int:
    """Propose a refund, wait for the gate's outcome, act on it; 0 if the refund went out."""
    state: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": "My boots arrived torn, order A-1042. Refund please."},
            {"role": "assistant", "content": "I am sorry. Let me refund the order."},
        ],
        "context": {"customer_id": "C-77", "order_id": "A-1042"},
    }
    arguments = {"order_id": "A-1042", "amount": amount}
    with JudgeloopClient(os.environ["JUDGELOOP_URL"], os.environ["JUDGELOOP_API_KEY"]) as client:
        gate = client.open_gate("issue_refund", arguments, state=state)
        print(f"gate {gate['id']}: {gate['tier']} ({gate['rule']}), {gate['status']}")  # noqa: T201
        if gate["status"] == "pending":
            try:
                gate = client.wait_for_gate(gate["id"], timeout=wait_seconds)
            except GateTimeoutError:
                print("no decision yet; not acting")  # noqa: T201
                return 2
    if gate["status"] == "approved":
        print(issue_refund(arguments["order_id"], arguments["amount"]))  # noqa: T201
        return 0
    if gate["status"] == "modified":
        changed = {**arguments, **(gate["modified_arguments"] or {})}
        print(issue_refund(changed["order_id"], changed["amount"]))  # noqa: T201
        return 0
    # rejected or expired: tell the user why instead of acting
    print(f"not refunding: {gate['status']}: {gate['reason']}")  # noqa: T201
    return 1


if __name__ == "__main__":
    sys.exit(main(*(float(arg) for arg in sys.argv[1:3])))

"""Small builders of valid sessions, labels and criteria for tests."""

from __future__ import annotations

from typing import Any

from judgeloop.models import CriterionCreate

RESOLVED = CriterionCreate(
    name="resolved",
    kind="binary",
    labels=["yes", "no"],
    description="Was the issue resolved?",
    anchors={"yes": "fixed", "no": "not fixed"},
)
TONE = CriterionCreate(name="tone", kind="ordinal", labels=["1", "2", "3", "4", "5"])


def session_payload(external_id: str = "s-1", source: str = "test-app") -> dict[str, Any]:
    """A valid multi-turn session with one tool call."""
    return {
        "source": source,
        "external_id": external_id,
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Where is order NW-1?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "name": "lookup_order", "arguments": {"order_id": "NW-1"}}
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "name": "lookup_order",
                "content": {"status": "shipped"},
            },
            {"role": "assistant", "content": "It shipped yesterday."},
        ],
        "metadata": {"channel": "chat"},
    }


def label_payload(
    external_id: str = "s-1",
    criterion: str = "resolved",
    value: Any = "yes",
    annotator: str = "sme-a",
) -> dict[str, Any]:
    """A valid label for the session made by session_payload."""
    return {
        "session": {"source": "test-app", "external_id": external_id},
        "criterion": criterion,
        "value": value,
        "annotator": annotator,
        "rationale": "Order status given.",
    }

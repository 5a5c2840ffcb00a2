"""The documented formats: committed JSON Schemas match the code; validation rules hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from judgeloop.models import CriterionCreate, HumanLabelCreate, SessionCreate
from judgeloop.sessions.schemas import FORMAT_MODELS, json_schema_text
from tests.conftest import REPO_ROOT
from tests.factories import label_payload, session_payload


@pytest.mark.parametrize("name", sorted(FORMAT_MODELS))
def test_committed_schema_matches_the_models(name: str) -> None:
    committed = (REPO_ROOT / "docs" / "schemas" / f"{name}.schema.json").read_text()
    assert committed == json_schema_text(name), (
        f"docs/schemas/{name}.schema.json is stale: run judgeloop schema --out-dir docs/schemas"
    )


def test_formats_doc_links_every_schema() -> None:
    text = Path(REPO_ROOT / "docs" / "formats.md").read_text()
    for name in FORMAT_MODELS:
        assert f"schemas/{name}.schema.json" in text


def test_valid_session_parses() -> None:
    session = SessionCreate.model_validate(session_payload())
    assert session.messages[2].tool_calls[0].arguments == {"order_id": "NW-1"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"messages": []}, "at least 1 item"),
        ({"messages": [{"role": "user", "content": ""}]}, "non-empty content"),
        ({"messages": [{"role": "assistant"}]}, "content or tool_calls"),
        (
            {"messages": [{"role": "user", "content": "x", "tool_call_id": "c"}]},
            "only allowed on tool",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "needs tool_call_id"),
        (
            {
                "messages": [
                    {"role": "user", "content": "x", "tool_calls": [{"id": "1", "name": "f"}]}
                ]
            },
            "only assistant messages",
        ),
        ({"messages": [{"role": "user", "content": {"a": 1}}]}, "must be a string"),
        ({"metdata": {}}, "Extra inputs"),
    ],
)
def test_invalid_sessions_say_why(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SessionCreate.model_validate({**session_payload(), **change})


def test_duplicate_tool_call_ids_are_refused() -> None:
    payload = session_payload()
    payload["messages"].insert(3, payload["messages"][2])
    with pytest.raises(ValidationError, match="duplicate id 'call_1'"):
        SessionCreate.model_validate(payload)


def test_label_numbers_become_strings_but_booleans_do_not() -> None:
    assert HumanLabelCreate.model_validate(label_payload(value=4)).value == "4"
    with pytest.raises(ValidationError):
        HumanLabelCreate.model_validate(label_payload(value=True))


def test_criterion_rules() -> None:
    with pytest.raises(ValidationError, match="exactly 2 labels"):
        CriterionCreate(name="x", kind="binary", labels=["a", "b", "c"])
    with pytest.raises(ValidationError, match="anchors name labels that do not exist"):
        CriterionCreate(name="x", kind="binary", labels=["a", "b"], anchors={"c": "?"})
    with pytest.raises(ValidationError, match="distinct"):
        CriterionCreate(name="x", kind="ordinal", labels=["1", "1"])
    assert CriterionCreate(name="t", kind="ordinal", labels=[1, 2, 3]).labels == ["1", "2", "3"]

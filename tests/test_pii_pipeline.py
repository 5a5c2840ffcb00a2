"""PII posted through the API reaches neither the database nor the LLM judge."""

from __future__ import annotations

import json
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import SQLModel

from judgeloop.judges.runner import register_spec
from judgeloop.judges.spec import JudgeSpec
from judgeloop.store import add_criteria, db_session
from judgeloop.store.judges import activate_judge_version
from tests.conftest import auth
from tests.factories import RESOLVED
from tests.stub_llm import StubLLM, StubReply

# What is planted, and strings none of which may be found afterwards.
PLANTED = {
    "email": "jane.doe@example.org",
    "phone": "+44 20 7946 0958",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "openai": "sk-proj-4fT9xQ2mZr8Lp0Vb7NcW",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "slack": "xoxb-1234567890-abcdefghij",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9",
    "bearer": "Bearer abc123def456ghi789jkl",
    "password": "password=hunter22",
}
NEEDLES = [
    *PLANTED.values(),
    "jane.doe",
    "7946 0958",
    "4111111111111111",
    "DE89370400440532013000",
    "abc123def456ghi789jkl",
    "hunter22",
]
PII_TEXT = " / ".join(PLANTED.values())


def _session(external_id: str) -> dict[str, Any]:
    return {
        "source": "pii-test",
        "external_id": external_id,
        "messages": [
            {"role": "user", "content": f"My details: {PII_TEXT}"},
            {
                "role": "assistant",
                "content": f"Noted {PLANTED['email']}, I will charge {PLANTED['card']}.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "name": "update_customer",
                        "arguments": {
                            "email": PLANTED["email"],
                            "card": 4111111111111111,
                            "api_key": "short-secret",
                            "note": PII_TEXT,
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "name": "update_customer",
                "content": {
                    "ok": True,
                    "customer": {"phone": PLANTED["phone"], "iban": PLANTED["iban"]},
                },
            },
            {"role": "assistant", "content": "Done, your order ORD-2024-000123 is updated."},
        ],
        "metadata": {
            "customer_email": PLANTED["email"],
            "headers": {"authorization": PLANTED["bearer"]},
        },
    }


def _activate_llm_judge(engine: Engine, stub: StubLLM) -> JudgeSpec:
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED], actor="test")
    spec = JudgeSpec(
        name="resolved-llm",
        criterion=RESOLVED,
        model="openai/stub-judge",
        api_base=f"{stub.url}/v1",
        decoding={"timeout_s": 5.0, "max_retries": 0, "max_validation_retries": 0},
    )
    register_spec(engine, spec, actor="test")
    with db_session(engine) as db:
        activate_judge_version(db, spec.version, actor="test")
    return spec


def _every_stored_text(engine: Engine) -> str:
    """Every text and JSON column of every table, as one string."""
    dumped = []
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                dumped.append(json.dumps(list(row), default=str, ensure_ascii=False))
    return "\n".join(dumped)


def test_planted_pii_reaches_neither_database_nor_llm(
    engine: Engine, server_url: str, keys: dict[str, str], stub_llm: StubLLM
) -> None:
    # A generous timeout: the first judged request imports litellm inside the server.
    with httpx.Client(base_url=server_url, timeout=180) as api:
        _post_pii_everywhere(engine, api, keys, stub_llm)

    stored = _every_stored_text(engine)
    sent = json.dumps(stub_llm.requests, ensure_ascii=False)
    assert len(stub_llm.requests) >= 2  # both sessions went to the LLM judge
    for needle in NEEDLES:
        assert needle not in stored, f"{needle!r} is in the database"
        assert needle not in sent, f"{needle!r} was sent to the LLM"
    # The judge still sees that something was there, and what kind.
    for placeholder in ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[SECRET]"):
        assert placeholder in sent and placeholder in stored
    assert "ORD-2024-000123" in sent  # an order id is not PII


def _post_pii_everywhere(
    engine: Engine, api: httpx.Client, keys: dict[str, str], stub_llm: StubLLM
) -> None:
    stub_llm.responder = lambda body: StubReply.label_first({"yes": 0.9, "no": 0.1})
    spec = _activate_llm_judge(engine, stub_llm)
    pipeline = auth(keys["pipeline"])

    posted = api.post(
        "/v1/sessions?wait=true",
        json=[_session("p-1")],
        headers=pipeline,
    )
    assert posted.status_code in (200, 201), posted.text
    judged = api.post(
        "/v1/judge", json={"judge": spec.name, "session": _session("p-3")}, headers=pipeline
    )
    assert judged.status_code == 200, judged.text
    assert judged.json()["label"] == "yes", judged.json()
    gate = api.post(
        "/v1/gates",
        json={
            "action": {"name": "get_order", "arguments": {"id": 7, "api_key": PLANTED["openai"]}},
            "state": {"messages": [{"role": "user", "content": PII_TEXT}]},
        },
        headers=pipeline,
    )
    assert gate.status_code == 201, gate.text
    # The reviewer approves the arguments as sent, less their secrets.
    assert gate.json()["arguments"] == {"id": 7, "api_key": "[SECRET]"}

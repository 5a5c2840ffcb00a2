"""The HTTP API served by uvicorn on a real port: sessions, labels, criteria, keys, errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import select

from judgeloop.models import AuditEvent, Session
from judgeloop.store import add_criteria, db_session
from tests.conftest import auth
from tests.factories import RESOLVED, TONE, label_payload, session_payload


@pytest.fixture
def criteria(engine: Engine) -> None:
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED, TONE], actor="test")


def _sessions_in_db(engine: Engine) -> int:
    with db_session(engine) as db:
        return int(db.exec(select(func.count()).select_from(Session)).one())


def test_post_session_then_same_again_returns_existing(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    first = api.post("/v1/sessions", json=session_payload(), headers=auth(keys["pipeline"]))
    second = api.post("/v1/sessions", json=session_payload(), headers=auth(keys["pipeline"]))
    assert first.status_code == 201 and first.json()["created"] is True
    assert second.status_code == 200 and second.json()["created"] is False
    assert first.json()["id"] == second.json()["id"]
    assert _sessions_in_db(engine) == 1

    stored = api.get(f"/v1/sessions/{first.json()['id']}", headers=auth(keys["pipeline"]))
    assert stored.status_code == 200
    body = stored.json()
    assert body["messages"][2]["tool_calls"][0]["name"] == "lookup_order"
    assert body["metadata"] == {"channel": "chat"}


def test_concurrent_posts_of_one_session_store_one_row(
    server_url: str, keys: dict[str, str], engine: Engine
) -> None:
    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=server_url, timeout=30) as client:
            return client.post(
                "/v1/sessions", json=session_payload("same"), headers=auth(keys["pipeline"])
            )

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(post, range(24)))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.json()["created"] for r in responses) == 1
    assert _sessions_in_db(engine) == 1


def test_batch_reports_each_session(api: httpx.Client, keys: dict[str, str]) -> None:
    batch = [session_payload("a"), session_payload("b"), session_payload("a")]
    response = api.post("/v1/sessions", json=batch, headers=auth(keys["pipeline"]))
    assert response.status_code == 201
    body = response.json()
    assert body["count"] == 3 and body["created"] == 2
    assert body["data"][0]["id"] == body["data"][2]["id"]


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda s: s.pop("messages"), "messages", "Field required"),
        (lambda s: s["messages"][1].update(role="robot"), "role", "Input should be"),
        (lambda s: s["messages"][3].update(tool_call_id="call_9"), "", "answers no earlier"),
        (lambda s: s.update(external_id=""), "external_id", "at least 1 character"),
        (lambda s: s["messages"][0].update(colour="red"), "colour", "Extra inputs"),
    ],
)
def test_malformed_session_gets_422_naming_the_field(
    api: httpx.Client, keys: dict[str, str], mutate: object, field: str, reason: str
) -> None:
    payload = session_payload()
    assert callable(mutate)
    mutate(payload)
    response = api.post("/v1/sessions", json=payload, headers=auth(keys["pipeline"]))
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(field in map(str, e["loc"]) or field == "" for e in errors), errors
    assert any(reason in e["msg"] for e in errors), errors
    assert not any("SessionCreate" in map(str, e["loc"]) for e in errors), errors


def test_malformed_session_inside_a_batch_names_its_index(
    api: httpx.Client, keys: dict[str, str]
) -> None:
    bad = session_payload("b")
    del bad["source"]
    response = api.post(
        "/v1/sessions", json=[session_payload("a"), bad], headers=auth(keys["pipeline"])
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", 1, "source"]


def test_invalid_json_gets_422(api: httpx.Client, keys: dict[str, str]) -> None:
    response = api.post(
        "/v1/sessions",
        content=b'{"source": ',
        headers={**auth(keys["pipeline"]), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"][0]["msg"]


def test_oversized_batch_and_body_get_413(api: httpx.Client, keys: dict[str, str]) -> None:
    batch = [session_payload(f"s-{i}") for i in range(51)]  # test limit: 50
    response = api.post("/v1/sessions", json=batch, headers=auth(keys["pipeline"]))
    assert response.status_code == 413
    assert "limit of 50" in response.json()["detail"]

    huge = session_payload()
    huge["messages"][1]["content"] = "x" * 300_000  # test limit: 200,000 bytes
    response = api.post("/v1/sessions", json=huge, headers=auth(keys["pipeline"]))
    assert response.status_code == 413


def test_streamed_oversized_body_gets_413(api: httpx.Client, keys: dict[str, str]) -> None:
    def chunks():  # no Content-Length: the middleware must count bytes as they arrive
        for _ in range(30):
            yield b"x" * 10_000

    response = api.post(
        "/v1/sessions",
        content=chunks(),
        headers={**auth(keys["pipeline"]), "content-type": "application/json"},
    )
    assert response.status_code == 413


def test_missing_invalid_and_wrong_role_keys(api: httpx.Client, keys: dict[str, str]) -> None:
    assert api.post("/v1/sessions", json=session_payload()).status_code == 401
    bad = api.post("/v1/sessions", json=session_payload(), headers=auth("jl_000000000000_nope"))
    assert bad.status_code == 401
    reviewer = api.post("/v1/sessions", json=session_payload(), headers=auth(keys["reviewer"]))
    assert reviewer.status_code == 403
    assert "reviewer" in reviewer.json()["detail"]
    x_api_key = api.post(
        "/v1/sessions", json=session_payload(), headers={"X-API-Key": keys["admin"]}
    )
    assert x_api_key.status_code == 201


# Which role may call which route, for every route of the app: tests/test_roles.py.


def test_labels_validate_criterion_and_value(
    api: httpx.Client, keys: dict[str, str], criteria: None
) -> None:
    api.post("/v1/sessions", json=session_payload(), headers=auth(keys["pipeline"]))
    ok = api.post("/v1/labels", json=label_payload(), headers=auth(keys["engineer"]))
    assert ok.status_code == 201 and ok.json()["created"] == 1
    again = api.post("/v1/labels", json=label_payload(), headers=auth(keys["engineer"]))
    assert again.status_code == 200 and again.json()["created"] == 0

    unknown = api.post(
        "/v1/labels", json=label_payload(criterion="helpfulness"), headers=auth(keys["engineer"])
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", 0, "criterion"]
    assert "allowed: resolved, tone" in unknown.json()["detail"][0]["msg"]

    bad_value = api.post(
        "/v1/labels", json=label_payload(criterion="tone", value=7), headers=auth(keys["engineer"])
    )
    assert bad_value.status_code == 422
    assert "allowed: '1', '2', '3', '4', '5'" in bad_value.json()["detail"][0]["msg"]


def test_criteria_listing(api: httpx.Client, keys: dict[str, str], criteria: None) -> None:
    response = api.get("/v1/criteria", headers=auth(keys["reviewer"]))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [c["name"] for c in body["data"]] == ["resolved", "tone"]
    assert body["data"][0]["anchors"]["yes"] == "fixed"


def test_unknown_session_is_404(api: httpx.Client, keys: dict[str, str]) -> None:
    response = api.get("/v1/sessions/999", headers=auth(keys["pipeline"]))
    assert response.status_code == 404
    assert "999" in response.json()["detail"]


def test_health_and_docs(api: httpx.Client, keys: dict[str, str], database_url: str) -> None:
    health = api.get("/v1/healthz", headers=auth(keys["pipeline"])).json()
    assert health["status"] == "ok"
    assert health["database"] == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert api.get("/healthz").status_code == 200
    assert api.get("/docs").status_code == 200
    assert "/v1/sessions" in api.get("/openapi.json").json()["paths"]


def test_api_writes_are_audited_with_the_key(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    api.post("/v1/sessions", json=session_payload(), headers=auth(keys["pipeline"]))
    created = api.post(
        "/v1/keys", json={"name": "new", "role": "reviewer"}, headers=auth(keys["admin"])
    )
    assert created.status_code == 201 and created.json()["key"].startswith("jl_")
    new_key_id = created.json()["id"]
    revoked = api.delete(f"/v1/keys/{new_key_id}", headers=auth(keys["admin"]))
    assert revoked.status_code == 200
    assert api.get("/v1/criteria", headers=auth(created.json()["key"])).status_code == 401
    with db_session(engine) as db:
        events = db.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    actions = [(e.actor.split(":")[-1], e.action) for e in events if e.actor.startswith("key:")]
    assert actions == [
        ("test-pipeline", "sessions.create"),
        ("test-admin", "key.create"),
        ("test-admin", "key.revoke"),
    ]
